//! SIP messages (RFC 3261 §7, §20, §25): a tolerant parser and a plain serialiser.
//!
//! The parser is our own (see the README's SIP section for why not `rsip`/`ezk-sip-types`).
//! It follows RFC 3261 §25 and the robustness advice of RFC 4475: header line folding,
//! LWS around `:`, case-insensitive names, compact forms, leading CRLFs, LF-only line ends,
//! bodies cut at `Content-Length`. Parsing is split in two steps:
//! [`parse`] only needs a start line and well-formed header lines (else the message is
//! *unparseable* and gets dropped), and [`Message::check_request`] finds what is wrong with
//! a parseable request (answered with 400/416/420/483/505 and a reason).
//! Nothing here panics on network input.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

/// Longest message we accept (UDP datagrams and TCP frames alike).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Why bytes are not a SIP message at all (they get dropped and counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message")]
    Empty,
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("no blank line ends the headers")]
    NoHeaderEnd,
    #[error("bad start line: {0}")]
    StartLine(String),
    #[error("bad header line: {0}")]
    HeaderLine(String),
}

/// A SIP method. Unknown methods keep their token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Refer,
    Notify,
    Subscribe,
    Update,
    Prack,
    Message,
    Other(String),
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request {
        method: Method,
        uri: String,
        version: String,
    },
    Response {
        version: String,
        code: u16,
        reason: String,
    },
}

/// One header field as received: canonical name (compact forms expanded) and raw value
/// (folding replaced by single spaces, outer whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// What is wrong with a parseable request, and the response code that says so.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}")]
pub struct Rejection {
    pub code: u16,
    pub reason: String,
}

impl Rejection {
    fn new(code: u16, reason: impl Into<String>) -> Rejection {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}

/// Expands a compact header name (RFC 3261 §7.3.3 and later RFCs) and fixes the case of
/// well-known names so lookups and output are uniform.
pub fn canonical_name(name: &str) -> String {
    let known: &[(&str, &str)] = &[
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("f", "From"),
        ("s", "Subject"),
        ("k", "Supported"),
        ("t", "To"),
        ("v", "Via"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("u", "Allow-Events"),
        ("x", "Session-Expires"),
    ];
    for (short, long) in known {
        if name.eq_ignore_ascii_case(short) {
            return (*long).to_string();
        }
    }
    let well_known = [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Length",
        "Content-Type",
        "Route",
        "Record-Route",
        "Require",
        "Proxy-Require",
        "Supported",
        "Allow",
        "Accept",
        "Expires",
        "Authorization",
        "WWW-Authenticate",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Event",
        "Subscription-State",
        "Refer-To",
        "Referred-By",
        "Retry-After",
        "User-Agent",
        "Server",
        "Subject",
        "Content-Encoding",
        "Session-Expires",
        "Allow-Events",
        "User-to-User",
    ];
    for w in well_known {
        if name.eq_ignore_ascii_case(w) {
            return w.to_string();
        }
    }
    name.to_string()
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Parses one message from `bytes` (a whole datagram or one TCP frame).
///
/// Leading CRLFs (keep-alives) are skipped. The body is cut to `Content-Length` when the
/// header is present and smaller than what follows; a larger `Content-Length` is left for
/// [`Message::check_request`] to reject (it needs the headers to answer).
pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    let start = bytes
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(ParseError::Empty)?;
    let bytes = &bytes[start..];
    let (head_len, body_start) = find_head_end(bytes).ok_or(ParseError::NoHeaderEnd)?;
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(ParseError::Empty)?;
    let start = parse_start_line(first)?;

    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folded continuation of the previous header's value.
            let last = headers.last_mut().ok_or_else(|| {
                ParseError::HeaderLine(format!("continuation before any header: {line:?}"))
            })?;
            let cont = line.trim();
            if !cont.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(cont);
            }
            continue;
        }
        let colon = line.find(':').ok_or_else(|| {
            ParseError::HeaderLine(format!("no colon in {:?}", truncate(line, 60)))
        })?;
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(ParseError::HeaderLine(format!(
                "bad header name {:?}",
                truncate(name, 60)
            )));
        }
        headers.push(Header {
            name: canonical_name(name),
            value: line[colon + 1..].trim().to_string(),
        });
    }
    let mut body = bytes[body_start..].to_vec();
    let mut msg = Message {
        start,
        headers,
        body: Vec::new(),
    };
    if let Some(Ok(len)) = msg
        .header("Content-Length")
        .map(|v| v.trim().parse::<usize>())
    {
        if len < body.len() {
            body.truncate(len);
        }
    }
    msg.body = body;
    Ok(msg)
}

/// (length of the header block without the blank line, offset of the body).
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            // "\n\n" or "\n\r\n"
            if bytes.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let bad = || ParseError::StartLine(truncate(line, 80).to_string());
    if line.starts_with("SIP/")
        || line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().ok_or_else(bad)?.to_string();
        let code_s = parts.next().ok_or_else(bad)?;
        let code: u16 = code_s.parse().map_err(|_| bad())?;
        if !(100..=699).contains(&code) || code_s.len() != 3 {
            return Err(bad());
        }
        let reason = parts.next().unwrap_or("").to_string();
        return Ok(StartLine::Response {
            version,
            code,
            reason,
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §7.1). Extra spaces
    // inside keep the line parseable (the URI then holds whitespace and gets a 400).
    let (method, rest) = line.split_once(' ').ok_or_else(bad)?;
    let (uri, version) = rest.rsplit_once(' ').ok_or_else(bad)?;
    if !is_token(method)
        || !version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        || uri.trim().is_empty()
    {
        return Err(bad());
    }
    Ok(StartLine::Request {
        method: Method::parse(method),
        uri: uri.to_string(),
        version: version.to_string(),
    })
}

impl Message {
    /// A new request with no headers.
    pub fn request(method: Method, uri: impl Into<String>) -> Message {
        Message {
            start: StartLine::Request {
                method,
                uri: uri.into(),
                version: "SIP/2.0".into(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// First value of a header (name compared case-insensitively; compact forms expanded).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every header line of that name, in order.
    pub fn header_lines<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Every comma-separated value of a list header (Via, Route, Contact…), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.header_lines(name).flat_map(split_list).collect()
    }

    pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push(Header {
            name: name.to_string(),
            value: value.into(),
        });
    }

    /// Replaces every header of that name with one value (or appends it).
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        self.push_header(name, value);
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, Method)> {
        parse_cseq(self.header("CSeq")?)
    }

    /// The top Via (the first value of the first Via header).
    pub fn top_via(&self) -> Option<Via> {
        self.header_values("Via")
            .first()
            .and_then(|v| Via::parse(v))
    }

    pub fn from_tag(&self) -> Option<String> {
        NameAddr::parse(self.header("From")?).and_then(|n| n.param("tag").map(str::to_string))
    }

    pub fn to_tag(&self) -> Option<String> {
        NameAddr::parse(self.header("To")?).and_then(|n| n.param("tag").map(str::to_string))
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("Content-Type")
    }

    /// The RFC 3261 §8.2 / §16.3 checks a UAS makes before acting on a request. A message
    /// failing one is answered with the returned code and reason (never acted upon).
    pub fn check_request(&self) -> Result<(), Rejection> {
        let StartLine::Request {
            method,
            uri,
            version,
        } = &self.start
        else {
            return Ok(());
        };
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(Rejection::new(505, "Version Not Supported"));
        }
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Err(Rejection::new(400, format!("Missing {name} header")));
            }
        }
        if self.top_via().is_none_or(|v| v.version != "2.0") {
            return Err(Rejection::new(400, "Malformed Via header"));
        }
        for v in self.header_values("Via") {
            let params = v.find(';').map(|i| &v[i + 1..]).unwrap_or("");
            if Via::parse(v).is_none() || !params_well_formed(params) {
                return Err(Rejection::new(400, "Malformed Via header"));
            }
        }
        if uri.contains(char::is_whitespace) {
            return Err(Rejection::new(400, "Malformed Request-URI (whitespace)"));
        }
        for c in self.header_values("Contact") {
            let params = c.rfind('>').map(|i| &c[i + 1..]).unwrap_or("").trim();
            let params_ok =
                params.is_empty() || params.strip_prefix(';').is_some_and(params_well_formed);
            if c != "*" && (NameAddr::parse(c).is_none() || !params_ok) {
                return Err(Rejection::new(400, "Malformed Contact header"));
            }
        }
        let count = |name: &str| self.header_lines(name).count();
        for name in [
            "From",
            "To",
            "Call-ID",
            "CSeq",
            "Max-Forwards",
            "Content-Length",
            "Content-Type",
        ] {
            if count(name) > 1 {
                return Err(Rejection::new(400, format!("Multiple {name} headers")));
            }
        }
        let Some((_, cseq_method)) = self.cseq() else {
            return Err(Rejection::new(400, "Malformed CSeq header"));
        };
        if &cseq_method != method {
            return Err(Rejection::new(
                400,
                "CSeq method does not match the request method",
            ));
        }
        let from = self.header("From").and_then(NameAddr::parse);
        let to = self.header("To").and_then(NameAddr::parse);
        if from.is_none() {
            return Err(Rejection::new(400, "Malformed From header"));
        }
        if to.is_none() {
            return Err(Rejection::new(400, "Malformed To header"));
        }
        if self
            .call_id()
            .is_none_or(|c| c.is_empty() || c.contains(char::is_whitespace))
        {
            return Err(Rejection::new(400, "Malformed Call-ID header"));
        }
        if let Some(cl) = self.header("Content-Length") {
            match cl.trim().parse::<usize>() {
                Ok(n) if n > self.body.len() => {
                    return Err(Rejection::new(400, "Content-Length larger than the body"));
                }
                Ok(_) => {}
                Err(_) => return Err(Rejection::new(400, "Malformed Content-Length header")),
            }
        }
        if let Some(mf) = self.header("Max-Forwards") {
            match mf.trim().parse::<u32>() {
                Ok(0) if !matches!(method, Method::Options | Method::Invite | Method::Ack) => {
                    return Err(Rejection::new(483, "Too Many Hops"));
                }
                Ok(n) if n > 255 => return Err(Rejection::new(400, "Max-Forwards out of range")),
                Ok(_) => {}
                Err(_) => return Err(Rejection::new(400, "Malformed Max-Forwards header")),
            }
        }
        if uri.contains(['<', '>', '"']) {
            return Err(Rejection::new(400, "Malformed Request-URI"));
        }
        match uri.split_once(':') {
            Some((scheme, _))
                if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") =>
            {
                if SipUri::parse(uri).is_none() {
                    return Err(Rejection::new(400, "Malformed Request-URI"));
                }
            }
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("tel") => {}
            Some(_) => return Err(Rejection::new(416, "Unsupported URI Scheme")),
            None => return Err(Rejection::new(400, "Malformed Request-URI")),
        }
        if matches!(method, Method::Invite) && !self.body.is_empty() {
            if let Some(ct) = self.content_type() {
                if !ct.contains('/') {
                    return Err(Rejection::new(400, "Malformed Content-Type header"));
                }
            }
        }
        if let Some(req) = self.header("Require") {
            let unsupported: Vec<&str> = split_list(req)
                .into_iter()
                .filter(|o| !SUPPORTED.contains(o))
                .collect();
            if !unsupported.is_empty() && !matches!(method, Method::Cancel | Method::Ack) {
                return Err(Rejection {
                    code: 420,
                    reason: format!("Bad Extension: {}", unsupported.join(", ")),
                });
            }
        }
        Ok(())
    }

    /// A response to `req` with the headers RFC 3261 §8.2.6.2 copies (Via, From, To,
    /// Call-ID, CSeq); `to_tag` is added to To when it has none (not for 100).
    pub fn response_to(req: &Message, code: u16, reason: &str, to_tag: Option<&str>) -> Message {
        let mut m = Message {
            start: StartLine::Response {
                version: "SIP/2.0".into(),
                code,
                reason: reason.to_string(),
            },
            headers: Vec::new(),
            body: Vec::new(),
        };
        for h in &req.headers {
            let keep = ["Via", "From", "Call-ID", "CSeq"]
                .iter()
                .any(|n| h.name.eq_ignore_ascii_case(n))
                || (h.name.eq_ignore_ascii_case("Record-Route") && (101..300).contains(&code));
            if keep {
                m.headers.push(h.clone());
            } else if h.name.eq_ignore_ascii_case("To") {
                let mut value = h.value.clone();
                if let (Some(tag), true) = (to_tag, code > 100) {
                    if NameAddr::parse(&value).is_some_and(|n| n.param("tag").is_none()) {
                        value.push_str(";tag=");
                        value.push_str(tag);
                    }
                }
                m.headers.push(Header {
                    name: "To".into(),
                    value,
                });
            }
        }
        m
    }

    /// Serialises the message; `Content-Length` is always written from the body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        match &self.start {
            StartLine::Request {
                method,
                uri,
                version,
            } => {
                let _ = write!(s, "{method} {uri} {version}\r\n");
            }
            StartLine::Response {
                version,
                code,
                reason,
            } => {
                let _ = write!(s, "{version} {code} {reason}\r\n");
            }
        }
        for h in &self.headers {
            if h.name.eq_ignore_ascii_case("Content-Length") {
                continue;
            }
            let _ = write!(s, "{}: {}\r\n", h.name, h.value);
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Option tags we implement (Require/Supported).
pub const SUPPORTED: [&str; 2] = ["replaces", "norefersub"];

/// Splits a header value at top-level commas (not inside quotes or `<>`), trimming each.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut escaped, mut start) = (false, false, false, 0);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                let part = value[start..i].trim();
                if !part.is_empty() {
                    out.push(part);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let part = value[start..].trim();
    if !part.is_empty() {
        out.push(part);
    }
    out
}

/// `CSeq: 0009 INVITE` → (9, INVITE).
pub fn parse_cseq(value: &str) -> Option<(u32, Method)> {
    let mut it = value.split_whitespace();
    let num: u32 = it.next()?.parse().ok()?;
    let method = it.next()?;
    if it.next().is_some() || !is_token(method) {
        return None;
    }
    Some((num, Method::parse(method)))
}

/// Splits `;name=value;flag` parameters (values may be quoted).
pub fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for part in split_outside_quotes(s, ';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_ascii_lowercase(), Some(v.trim().to_string()))),
            None => out.push((part.to_ascii_lowercase(), None)),
        }
    }
    out
}

/// Whether a `;`-separated parameter list has no empty parameter (`;;` is malformed).
fn params_well_formed(s: &str) -> bool {
    s.trim().is_empty()
        || split_outside_quotes(s, ';')
            .iter()
            .all(|p| !p.trim().is_empty())
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

/// A Via value: `SIP/2.0/UDP host:port;branch=…;rport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Protocol version (`2.0`); other versions parse so they can be answered 505.
    pub version: String,
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn parse(value: &str) -> Option<Via> {
        let (proto, params) = match value.find(';') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, ""),
        };
        let mut parts = proto.splitn(3, '/');
        let name = parts.next()?.trim();
        let version = parts.next()?.trim();
        let rest = parts.next()?.trim();
        if !name.eq_ignore_ascii_case("SIP") || version.is_empty() {
            return None;
        }
        let mut words = rest.split_whitespace();
        let transport = words.next()?.to_ascii_uppercase();
        let sent_by: String = words.collect::<Vec<_>>().join("");
        let (host, port) = split_host_port(&sent_by)?;
        Some(Via {
            version: version.to_string(),
            transport,
            host,
            port,
            params: parse_params(params),
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.params.iter().any(|(k, _)| k == name)
    }

    pub fn branch(&self) -> Option<&str> {
        self.param("branch")
    }

    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = format!("[{}]", &rest[..end]);
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => {
            if h.is_empty() || h.contains(':') {
                return None;
            }
            Some((h.to_string(), Some(p.parse().ok()?)))
        }
        None => Some((s.to_string(), None)),
    }
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Refer-To, Route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: String,
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    pub fn parse(value: &str) -> Option<NameAddr> {
        let value = value.trim();
        // Find a `<` outside quotes.
        let (mut quoted, mut escaped) = (false, false);
        let mut lt = None;
        for (i, c) in value.char_indices() {
            if escaped {
                escaped = false;
                continue;
            }
            match c {
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '<' if !quoted => {
                    lt = Some(i);
                    break;
                }
                _ => {}
            }
        }
        if quoted {
            return None;
        }
        if let Some(lt) = lt {
            let gt = lt + value[lt..].find('>')?;
            let uri = value[lt + 1..gt].to_string();
            if uri.is_empty() || uri.contains(char::is_whitespace) {
                return None;
            }
            let display = value[..lt].trim();
            // An unquoted display name is tokens separated by whitespace (RFC 3261 §25.1).
            if !display.starts_with('"') && !display.split_whitespace().all(is_token) {
                return None;
            }
            let display = (!display.is_empty()).then(|| display.trim_matches('"').to_string());
            let rest = value[gt + 1..].trim();
            let params = match rest.strip_prefix(';') {
                Some(p) => parse_params(p),
                None if rest.is_empty() => Vec::new(),
                None => return None,
            };
            return Some(NameAddr {
                display,
                uri,
                params,
            });
        }
        // addr-spec: parameters after the URI belong to the header, not the URI.
        let (uri, params) = match value.find(';') {
            Some(i) => (value[..i].trim(), parse_params(&value[i + 1..])),
            None => (value, Vec::new()),
        };
        if uri.is_empty() || uri.contains(char::is_whitespace) || !uri.contains(':') {
            return None;
        }
        Some(NameAddr {
            display: None,
            uri: uri.to_string(),
            params,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// A `sip:`/`sips:` URI, enough of it to route and to compare users and hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub scheme: String,
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
}

impl SipUri {
    pub fn parse(s: &str) -> Option<SipUri> {
        let (scheme, rest) = s.split_once(':')?;
        if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
            return None;
        }
        let rest = rest.split('?').next().unwrap_or("");
        let (userinfo, hostpart) = match rest.rfind('@') {
            Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (&hostpart[..i], parse_params(&hostpart[i + 1..])),
            None => (hostpart, Vec::new()),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return None;
        }
        let user = userinfo.map(|u| u.split(':').next().unwrap_or("").to_string());
        Some(SipUri {
            scheme: scheme.to_ascii_lowercase(),
            user,
            host,
            port,
            params,
        })
    }

    /// The address this URI points at when its host is an IP literal.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port.unwrap_or(5060)))
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bot@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n\
From: \"Caller\" <sip:02088886666@127.0.0.1>;tag=abc\r\n\
To: <sip:bot@127.0.0.1>\r\n\
Call-ID: 1@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:caller@127.0.0.1:5061>\r\n\
Max-Forwards: 70\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\r\nEXTRA";

    #[test]
    fn parses_a_plain_invite_and_cuts_the_body() {
        let m = parse(INVITE.as_bytes()).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.body, b"v=0\r");
        assert_eq!(m.from_tag().as_deref(), Some("abc"));
        assert_eq!(m.to_tag(), None);
        let via = m.top_via().unwrap();
        assert_eq!(via.branch(), Some("z9hG4bK-1"));
        assert!(via.has_param("rport"));
        assert_eq!(via.port, Some(5061));
        assert_eq!(m.cseq(), Some((1, Method::Invite)));
        m.check_request().unwrap();
    }

    #[test]
    fn folding_compact_forms_and_odd_spacing() {
        let text = "OPTIONS sip:x@example.com SIP/2.0\r\nv : SIP / 2.0\r\n /UDP\r\n   192.0.2.2;branch=z9hG4bK1\r\n\
i: abc\r\nf: <sip:a@b>;tag=1\r\nt: sip:x@example.com\r\ncseq: 0009\r\n  OPTIONS\r\nl: 0\r\n\r\n";
        let m = parse(text.as_bytes()).unwrap();
        assert_eq!(m.call_id(), Some("abc"));
        assert_eq!(m.cseq(), Some((9, Method::Options)));
        assert_eq!(m.top_via().unwrap().host, "192.0.2.2");
        m.check_request().unwrap();
    }

    #[test]
    fn garbage_is_unparseable() {
        assert!(parse(b"").is_err());
        assert!(parse(b"hello world").is_err());
        assert!(parse(b"INVITE sip:a@b\r\n\r\n").is_err());
        assert!(parse(b"INVITE sip:a@b SIP/2.0\r\nno colon here\r\n\r\n").is_err());
        assert!(parse(&[0xff; 100]).is_err());
    }

    #[test]
    fn parseable_but_bad_gets_a_reason() {
        let no_callid = INVITE.replace("Call-ID: 1@127.0.0.1\r\n", "");
        let r = parse(no_callid.as_bytes())
            .unwrap()
            .check_request()
            .unwrap_err();
        assert_eq!((r.code, r.reason.as_str()), (400, "Missing Call-ID header"));
        let mismatch = INVITE.replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
        assert_eq!(
            parse(mismatch.as_bytes())
                .unwrap()
                .check_request()
                .unwrap_err()
                .code,
            400
        );
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 999");
        assert_eq!(
            parse(short.as_bytes())
                .unwrap()
                .check_request()
                .unwrap_err()
                .code,
            400
        );
        let v = INVITE.replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
        assert_eq!(
            parse(v.as_bytes())
                .unwrap()
                .check_request()
                .unwrap_err()
                .code,
            505
        );
        let scheme = INVITE.replacen("sip:bot@127.0.0.1:5060", "mailto:bot@example.com", 1);
        assert_eq!(
            parse(scheme.as_bytes())
                .unwrap()
                .check_request()
                .unwrap_err()
                .code,
            416
        );
        let req = INVITE.replacen("Max-Forwards: 70", "Require: nothingweknow", 1);
        assert_eq!(
            parse(req.as_bytes())
                .unwrap()
                .check_request()
                .unwrap_err()
                .code,
            420
        );
    }

    #[test]
    fn response_copies_headers_and_adds_the_tag() {
        let req = parse(INVITE.as_bytes()).unwrap();
        let resp = Message::response_to(&req, 200, "OK", Some("srv"));
        let bytes = resp.to_bytes();
        let back = parse(&bytes).unwrap();
        assert_eq!(back.code(), Some(200));
        assert_eq!(back.to_tag().as_deref(), Some("srv"));
        assert_eq!(back.call_id(), Some("1@127.0.0.1"));
        assert_eq!(back.header("Content-Length"), Some("0"));
    }

    #[test]
    fn name_addr_and_uri() {
        let n = NameAddr::parse("\"J \\\"R\\\"\" <sip:jdrosen@example.com;transport=tcp>;tag=98")
            .unwrap();
        assert_eq!(n.uri, "sip:jdrosen@example.com;transport=tcp");
        assert_eq!(n.param("tag"), Some("98"));
        let u = SipUri::parse("sip:user:pw@[::1]:5070;transport=tcp").unwrap();
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.socket_addr(), Some("[::1]:5070".parse().unwrap()));
        assert!(NameAddr::parse("\"unbalanced <sip:a@b>").is_none());
        assert_eq!(
            split_list("<sip:a,b@x>, \"x,y\" <sip:c@d>"),
            vec!["<sip:a,b@x>", "\"x,y\" <sip:c@d>"]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn parse_and_check_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024)) {
            if let Ok(m) = parse(&bytes) {
                let _ = m.check_request();
                let _ = m.top_via();
                let _ = m.cseq();
                let _ = m.from_tag();
                let _ = parse(&m.to_bytes());
            }
        }

        #[test]
        fn header_text_never_panics(s in "\\PC{0,200}") {
            let _ = NameAddr::parse(&s);
            let _ = Via::parse(&s);
            let _ = SipUri::parse(&s);
            let _ = split_list(&s);
            let _ = parse_cseq(&s);
        }
    }
}
