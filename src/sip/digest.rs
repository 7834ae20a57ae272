//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616 with `qop=auth`, algorithms
//! MD5 and SHA-256, and their `-sess` variants): the client side answers a registrar's
//! `WWW-Authenticate`/`Proxy-Authenticate` challenge, the server side challenges inbound
//! INVITEs from outside a trunk's networks and checks the answer.
//!
//! Server nonces are stateless: `hex(random) . hex(H(secret:random))[..16]`, so a nonce we
//! did not issue is refused without a table. Passwords only pass through `HA1`; nothing
//! here logs or formats them.

use md5::Md5;
use sha2::{Digest as _, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest challenge")]
    NotDigest,
    #[error("challenge without {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0}")]
    Algorithm(String),
    #[error("challenge offers no qop we support (auth)")]
    Qop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    pub fn parse(s: &str) -> Option<Algorithm> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }
    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex::encode(Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => {
                hex::encode(Sha256::digest(data.as_bytes()))
            }
        }
    }
    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

/// `name="value", name=value` pairs of a Digest header, lower-cased names, unquoted values.
pub fn parse_auth_params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim();
    let rest = rest
        .strip_prefix("Digest")
        .or_else(|| rest.strip_prefix("digest"))?;
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    let mut parts = Vec::new();
    for (i, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ',' && !quoted {
            parts.push(&rest[start..i]);
            start = i + 1;
        }
    }
    parts.push(&rest[start..]);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (k, v) = p.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v)
            .replace("\\\"", "\"");
        out.push((k.trim().to_ascii_lowercase(), v));
    }
    Some(out)
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the challenge asked for `qop=auth` (else RFC 2069 compatibility).
    pub qop_auth: bool,
    pub stale: bool,
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let params = parse_auth_params(value).ok_or(DigestError::NotDigest)?;
        let realm = get(&params, "realm")
            .ok_or(DigestError::Missing("realm"))?
            .to_string();
        let nonce = get(&params, "nonce")
            .ok_or(DigestError::Missing("nonce"))?
            .to_string();
        let algorithm = match get(&params, "algorithm") {
            Some(a) => Algorithm::parse(a).ok_or_else(|| DigestError::Algorithm(a.to_string()))?,
            None => Algorithm::Md5,
        };
        let qop_auth = match get(&params, "qop") {
            Some(q) => {
                if !q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::Qop);
                }
                true
            }
            None => false,
        };
        Ok(Challenge {
            realm,
            nonce,
            opaque: get(&params, "opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale: get(&params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` value answering this challenge.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        cnonce: &str,
        nc: u32,
    ) -> String {
        let nc_s = format!("{nc:08x}");
        let response = response(
            self.algorithm,
            &ha1(
                self.algorithm,
                username,
                &self.realm,
                password,
                &self.nonce,
                cnonce,
            ),
            &self.nonce,
            self.qop_auth.then_some((nc_s.as_str(), cnonce)),
            method,
            uri,
        );
        let mut s = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            self.realm,
            self.nonce,
            self.algorithm.as_str()
        );
        if self.qop_auth {
            s.push_str(&format!(", qop=auth, nc={nc_s}, cnonce=\"{cnonce}\""));
        }
        if let Some(o) = &self.opaque {
            s.push_str(&format!(", opaque=\"{o}\""));
        }
        s
    }
}

fn ha1(
    alg: Algorithm,
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
) -> String {
    let h = alg.hash(&format!("{user}:{realm}:{password}"));
    if alg.is_sess() {
        alg.hash(&format!("{h}:{nonce}:{cnonce}"))
    } else {
        h
    }
}

fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str)>,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hash(&format!("{method}:{uri}"));
    match qop {
        Some((nc, cnonce)) => alg.hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")),
        None => alg.hash(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// The server side: issues challenges and checks answers.
#[derive(Debug, Clone)]
pub struct Challenger {
    pub realm: String,
    secret: String,
    /// Algorithms offered, in order of preference (one `WWW-Authenticate` each).
    algorithms: Vec<Algorithm>,
}

impl Challenger {
    pub fn new(realm: impl Into<String>, secret: impl Into<String>) -> Challenger {
        Challenger {
            realm: realm.into(),
            secret: secret.into(),
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }

    /// Offers these algorithms, in this order (an empty list keeps the default).
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Challenger {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// A fresh nonce from caller-supplied randomness (the core has no RNG of its own).
    pub fn nonce(&self, random: u64) -> String {
        let r = format!("{random:016x}");
        let sig = Algorithm::Sha256.hash(&format!("{}:{r}", self.secret));
        format!("{r}{}", &sig[..16])
    }

    fn nonce_is_ours(&self, nonce: &str) -> bool {
        if nonce.len() != 32 || !nonce.is_char_boundary(16) {
            return false;
        }
        let (r, sig) = nonce.split_at(16);
        let want = Algorithm::Sha256.hash(&format!("{}:{r}", self.secret));
        want[..16] == *sig
    }

    /// `WWW-Authenticate` values in order of preference (RFC 7616 §3.7; by default SHA-256,
    /// then MD5).
    pub fn challenges(&self, random: u64) -> Vec<String> {
        let nonce = self.nonce(random);
        self.algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}",
                    self.realm,
                    a.as_str()
                )
            })
            .collect()
    }

    /// Checks an `Authorization` value; `password` looks a username up. Returns the user.
    pub fn verify(
        &self,
        authorization: &str,
        method: &str,
        password: impl Fn(&str) -> Option<String>,
    ) -> Option<String> {
        let params = parse_auth_params(authorization)?;
        let user = get(&params, "username")?;
        let realm = get(&params, "realm")?;
        let nonce = get(&params, "nonce")?;
        let uri = get(&params, "uri")?;
        let given = get(&params, "response")?;
        if realm != self.realm || !self.nonce_is_ours(nonce) {
            return None;
        }
        let alg = Algorithm::parse(get(&params, "algorithm").unwrap_or("MD5"))?;
        let cnonce = get(&params, "cnonce").unwrap_or("");
        let qop = match get(&params, "qop") {
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((get(&params, "nc")?, cnonce)),
            Some(_) => return None,
            None => None,
        };
        let pw = password(user)?;
        let want = response(
            alg,
            &ha1(alg, user, realm, &pw, nonce, cnonce),
            nonce,
            qop,
            method,
            uri,
        );
        (want.eq_ignore_ascii_case(given)).then(|| user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7616_section_3_9_1_vectors() {
        // RFC 7616 §3.9.1 (HTTP, "Mufasa"/"Circle of Life").
        let md5 = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=MD5, \
nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let a = md5.answer(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert!(
            a.contains("response=\"8ca523f5e9506fed4657c9700eebdbec\""),
            "{a}"
        );
        let sha = Challenge::parse(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm=SHA-256, \
nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
        )
        .unwrap();
        let a = sha.answer(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            1,
        );
        assert!(
            a.contains(
                "response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\""
            ),
            "{a}"
        );
    }

    #[test]
    fn challenger_round_trip_and_refusals() {
        let c = Challenger::new("voicenav", "k3y");
        for ch in c.challenges(42) {
            let parsed = Challenge::parse(&ch).unwrap();
            let auth = parsed.answer("INVITE", "sip:bot@127.0.0.1", "pbx", "pw", "abc", 1);
            let pw = |u: &str| (u == "pbx").then(|| "pw".to_string());
            assert_eq!(c.verify(&auth, "INVITE", pw).as_deref(), Some("pbx"));
            let wrong = |_: &str| Some("nope".to_string());
            assert_eq!(c.verify(&auth, "INVITE", wrong), None);
            let forged = auth.replace(&c.nonce(42), &c.nonce(43).replace('0', "1"));
            assert_eq!(c.verify(&forged, "INVITE", pw), None);
        }
        assert_eq!(c.verify("Basic Zm9v", "INVITE", |_| None), None);
        assert_eq!(
            Challenge::parse("Digest nonce=\"x\"").unwrap_err(),
            DigestError::Missing("realm")
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=FOO"),
            Err(DigestError::Algorithm(_))
        ));
    }
}
