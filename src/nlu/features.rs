//! Sparse features of a normalised utterance: character 1–3-grams, toneless-pinyin
//! syllable 1–2-grams (so an ASR homophone such as 心用卡 shares features with 信用卡;
//! readings from the `pinyin` crate) and catalogue keyword hits, matched both on the
//! characters and on the pinyin (心用卡 → `xin yong ka` hits the keyword 信用卡).
//!
//! Features are 64-bit FNV-1a hashes of a kind tag and the gram; a vector is L2-normalised.
//! Arabic digit runs are folded to one `0` so numbers do not split features.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use pinyin::ToPinyin;

/// A hashed feature and its value.
pub type Feature = (u64, f32);

/// Hasher for keys that already are hashes.
#[derive(Default, Clone, Copy)]
pub struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by feature hashes.
pub type FeatureMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(tag: u8, parts: &[&str]) -> u64 {
    let mut h = FNV_OFFSET ^ u64::from(tag);
    h = h.wrapping_mul(FNV_PRIME);
    for p in parts {
        for &b in p.as_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV_PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Weights of the feature kinds (before L2 normalisation).
const W_CHAR1: f32 = 0.5;
const W_CHAR2: f32 = 1.0;
const W_CHAR3: f32 = 0.7;
const W_SKIP2: f32 = 0.4;
const W_PY1: f32 = 0.35;
const W_PY2: f32 = 0.7;
const W_KEYWORD: f32 = 1.2;

/// Turns normalised text into features.
#[derive(Debug, Clone)]
pub struct Featurizer {
    kw_chars: Option<AhoCorasick>,
    kw_pinyin: Option<AhoCorasick>,
    /// Feature of each pattern (chars patterns first, then pinyin patterns).
    kw_char_feature: Vec<u64>,
    kw_pinyin_feature: Vec<u64>,
}

/// Toneless pinyin of one character, or the character itself.
fn syllable(c: char, buf: &mut [u8; 4]) -> &str {
    match c.to_pinyin() {
        Some(p) => p.plain(),
        None => c.encode_utf8(buf),
    }
}

/// " xin yong ka " for 信用卡 (space-delimited, with outer spaces).
pub fn pinyin_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3 + 2);
    out.push(' ');
    let mut buf = [0u8; 4];
    for c in text.chars() {
        out.push_str(syllable(c, &mut buf));
        out.push(' ');
    }
    out
}

impl Featurizer {
    /// `keywords`: canonical keyword → surface forms (the canonical one included).
    pub fn new(keywords: &[(String, Vec<String>)]) -> Featurizer {
        let mut char_patterns = Vec::new();
        let mut char_features = Vec::new();
        let mut py_patterns = Vec::new();
        let mut py_features = Vec::new();
        for (canonical, surfaces) in keywords {
            let f = fnv(b'k', &[canonical]);
            for s in surfaces {
                let s = s.trim().to_lowercase();
                if s.is_empty() {
                    continue;
                }
                // Single-character keywords are too weak for pinyin matching.
                if s.chars().count() >= 2 && s.chars().all(|c| c.to_pinyin().is_some()) {
                    py_patterns.push(pinyin_line(&s));
                    py_features.push(f);
                }
                char_patterns.push(s);
                char_features.push(f);
            }
        }
        let build = |p: &[String]| {
            (!p.is_empty())
                .then(|| {
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::Standard)
                        .build(p)
                        .ok()
                })
                .flatten()
        };
        Featurizer {
            kw_chars: build(&char_patterns),
            kw_pinyin: build(&py_patterns),
            kw_char_feature: char_features,
            kw_pinyin_feature: py_features,
        }
    }

    /// Features of a normalised utterance, deduplicated and L2-normalised.
    pub fn extract(&self, norm: &str) -> Vec<Feature> {
        let mut chars: Vec<char> = Vec::with_capacity(norm.len());
        for c in norm.chars() {
            let c = if c.is_ascii_digit() { '0' } else { c };
            if c == '0' && chars.last() == Some(&'0') {
                continue;
            }
            chars.push(c);
        }
        let n = chars.len();
        let mut feats: Vec<Feature> = Vec::with_capacity(n * 6 + 8);
        let ch: Vec<u64> = chars.iter().map(|&c| u64::from(c)).collect();
        for i in 0..n {
            feats.push((mix(b'1', &[ch[i]]), W_CHAR1));
            if i + 1 < n {
                feats.push((mix(b'2', &[ch[i], ch[i + 1]]), W_CHAR2));
                if i + 2 < n {
                    feats.push((mix(b'3', &[ch[i], ch[i + 1], ch[i + 2]]), W_CHAR3));
                    // Skip-bigram: 车的保险 → (车, 保), 卡丢了 ~ 卡被偷.
                    feats.push((mix(b'k', &[ch[i], ch[i + 2]]), W_SKIP2));
                }
            }
        }
        // Edges: the first and last characters often carry the request (…挂失, 转人工).
        if let (Some(&first), Some(&last)) = (ch.first(), ch.last()) {
            feats.push((mix(b'^', &[first]), W_CHAR1));
            feats.push((mix(b'$', &[last]), W_CHAR1));
        }
        // Syllables: hash of the toneless pinyin (or of the character itself).
        let mut line = String::with_capacity(n * 5 + 2);
        line.push(' ');
        let mut buf = [0u8; 4];
        let syl: Vec<u64> = chars
            .iter()
            .map(|&c| {
                let s = syllable(c, &mut buf);
                line.push_str(s);
                line.push(' ');
                fnv(b's', &[s])
            })
            .collect();
        for i in 0..n {
            feats.push((mix(b'p', &[syl[i]]), W_PY1));
            if i + 1 < n {
                feats.push((mix(b'q', &[syl[i], syl[i + 1]]), W_PY2));
            }
        }
        if let Some(ac) = &self.kw_chars {
            for m in ac.find_overlapping_iter(norm) {
                feats.push((self.kw_char_feature[m.pattern().as_usize()], W_KEYWORD));
            }
        }
        if let Some(ac) = &self.kw_pinyin {
            for m in ac.find_overlapping_iter(&line) {
                feats.push((self.kw_pinyin_feature[m.pattern().as_usize()], W_KEYWORD));
            }
        }
        normalise(feats)
    }
}

/// Hash of a kind tag and a few 64-bit parts (FNV-1a over their bytes, then a finaliser).
fn mix(tag: u8, parts: &[u64]) -> u64 {
    let mut h = FNV_OFFSET ^ u64::from(tag);
    h = h.wrapping_mul(FNV_PRIME);
    for &p in parts {
        h ^= p;
        h = h.wrapping_mul(FNV_PRIME);
        h ^= h >> 29;
    }
    h ^ (h >> 32)
}

/// Sums duplicates (capped), then L2-normalises.
fn normalise(mut feats: Vec<Feature>) -> Vec<Feature> {
    feats.sort_unstable_by_key(|f| f.0);
    let mut out: Vec<Feature> = Vec::with_capacity(feats.len());
    for (h, v) in feats {
        match out.last_mut() {
            Some(last) if last.0 == h => last.1 = (last.1 + v * 0.5).min(v * 2.0),
            _ => out.push((h, v)),
        }
    }
    let norm = out.iter().map(|f| f.1 * f.1).sum::<f32>().sqrt();
    if norm > 0.0 {
        for f in &mut out {
            f.1 /= norm;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn homophone_hits_keyword_through_pinyin() {
        let f = Featurizer::new(&[("信用卡".into(), vec!["信用卡".into()])]);
        let kw = fnv(b'k', &["信用卡"]);
        assert!(f.extract("我的心用卡丢了").iter().any(|x| x.0 == kw));
        assert!(f.extract("信用卡丢了").iter().any(|x| x.0 == kw));
        assert!(!f.extract("借记卡丢了").iter().any(|x| x.0 == kw));
    }

    #[test]
    fn vector_is_unit_length_and_digits_fold() {
        let f = Featurizer::new(&[]);
        let v = f.extract("尾号1234的卡");
        let n: f32 = v.iter().map(|x| x.1 * x.1).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert_eq!(f.extract("尾号1234的卡"), f.extract("尾号99的卡"));
        assert!(f.extract("").is_empty());
    }
}
