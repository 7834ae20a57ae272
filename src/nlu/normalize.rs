//! Text normalisation before classification.
//!
//! In order: full-width → half-width and ASCII lower-case; traditional → simplified
//! (`zhconv`, MediaWiki/OpenCC tables); code-mixed English terms → Chinese
//! (`grammars/codemix.yaml`, whole words only); dialect words → Mandarin
//! (`grammars/dialect_lexicon.yaml`: Cantonese, Sichuanese, Northeastern, Shanghainese,
//! Minnan); negation and correction ("不是信用卡，是借记卡丢了" keeps "借记卡丢了");
//! Chinese numerals → Arabic digits; punctuation and spaces removed; fillers removed
//! (`grammars/fillers.txt`: 嗯, 那个, 就是, 我想问一下 …).
//!
//! Word replacement uses leftmost-longest Aho-Corasick matching, so a lexicon can protect
//! a word by mapping it to itself (`联系: 联系` keeps Cantonese `系 → 是` out of 联系).

use std::collections::BTreeMap;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::yaml::{self, Diagnostic};

/// Leftmost-longest word replacement.
#[derive(Debug, Clone)]
struct Lexicon {
    ac: Option<AhoCorasick>,
    to: Vec<String>,
    /// Patterns made of ASCII letters only match whole words.
    ascii_word: Vec<bool>,
}

impl Lexicon {
    fn new(pairs: Vec<(String, String)>) -> Lexicon {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(f, _)| !f.is_empty()).collect();
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        let ac = if pairs.is_empty() {
            None
        } else {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostLongest)
                .build(pairs.iter().map(|(f, _)| f.as_str()))
                .ok()
        };
        let ascii_word = pairs
            .iter()
            .map(|(f, _)| f.bytes().any(|b| b.is_ascii_alphabetic()))
            .collect();
        Lexicon {
            ac,
            to: pairs.into_iter().map(|(_, t)| t).collect(),
            ascii_word,
        }
    }

    fn apply(&self, text: &str) -> String {
        let Some(ac) = &self.ac else {
            return text.to_string();
        };
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for m in ac.find_iter(text) {
            let i = m.pattern().as_usize();
            if self.ascii_word[i] {
                let before = m.start().checked_sub(1).map(|j| bytes[j]);
                let after = bytes.get(m.end()).copied();
                if before.is_some_and(|b| b.is_ascii_alphanumeric())
                    || after.is_some_and(|b| b.is_ascii_alphanumeric())
                {
                    continue;
                }
            }
            out.push_str(&text[last..m.start()]);
            out.push_str(&self.to[i]);
            last = m.end();
        }
        out.push_str(&text[last..]);
        out
    }
}

/// The normaliser, built from the grammars folder.
#[derive(Debug, Clone)]
pub struct Normalizer {
    codemix: Lexicon,
    dialect: Lexicon,
    fillers: Lexicon,
}

/// Clause separators (after width folding).
fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.'
            | '!'
            | '?'
            | ';'
            | ':'
            | '，'
            | '。'
            | '！'
            | '？'
            | '；'
            | '：'
            | '、'
            | '…'
            | '~'
            | '\n'
            | '\t'
    )
}

/// Markers of a clause the caller takes back ("不是…", "不对", "说错了").
const NEGATION_MARKERS: [&str; 10] = [
    "不是",
    "不要",
    "不用",
    "不想",
    "并不是",
    "不对",
    "说错",
    "搞错",
    "弄错",
    "错了",
];

impl Normalizer {
    /// Reads `dialect_lexicon.yaml`, `codemix.yaml` and `fillers.txt` from `grammars`.
    pub fn load(grammars: &Path) -> Result<Normalizer, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let dialect_file = grammars.join("dialect_lexicon.yaml");
        let dialect: BTreeMap<String, BTreeMap<String, String>> = yaml::load(&dialect_file)
            .unwrap_or_else(|d| {
                diags.push(d);
                BTreeMap::new()
            });
        let codemix_file = grammars.join("codemix.yaml");
        let codemix: BTreeMap<String, String> = yaml::load(&codemix_file).unwrap_or_else(|d| {
            diags.push(d);
            BTreeMap::new()
        });
        let fillers_file = grammars.join("fillers.txt");
        let fillers = match std::fs::read_to_string(&fillers_file) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::new(
                    &fillers_file,
                    1,
                    1,
                    format!("cannot read: {e}"),
                ));
                String::new()
            }
        };
        if !diags.is_empty() {
            return Err(diags);
        }
        Ok(Normalizer::from_parts(
            dialect.into_values().flatten().collect(),
            codemix.into_iter().collect(),
            phrase_lines(&fillers),
        ))
    }

    /// Builds from word lists: dialect word → Mandarin, English term → Chinese, fillers
    /// (a filler written `word=word` is protected instead of removed).
    pub fn from_parts(
        dialect: Vec<(String, String)>,
        codemix: Vec<(String, String)>,
        fillers: Vec<String>,
    ) -> Normalizer {
        let codemix = codemix
            .into_iter()
            .map(|(k, v)| (fold_width(&k), v))
            .collect();
        let fillers = fillers
            .into_iter()
            .map(|f| match f.split_once('=') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (f, String::new()),
            })
            .collect();
        Normalizer {
            codemix: Lexicon::new(codemix),
            dialect: Lexicon::new(dialect),
            fillers: Lexicon::new(fillers),
        }
    }

    /// The normalised form used for features.
    pub fn normalize(&self, text: &str) -> String {
        let folded = fold_width(text);
        let simplified = zhconv::zhconv(&folded, zhconv::Variant::ZhHans);
        let english = self.codemix.apply(&simplified);
        let mandarin = self.dialect.apply(&english);
        let corrected = apply_correction(&mandarin);
        let numerals = chinese_numerals_to_digits(&corrected);
        let compact: String = numerals
            .chars()
            .filter(|c| c.is_alphanumeric() && !c.is_whitespace())
            .collect();
        self.fillers.apply(&compact)
    }
}

/// Non-empty, non-comment lines of a phrase file.
pub fn phrase_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Full-width ASCII → half-width, ideographic space → space, ASCII lower-case.
pub fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Keeps what the caller meant when they take something back: drops clauses with a
/// negation/correction marker that are followed by another clause, and rewrites
/// "不是X(而)是Y" inside one clause to "Y".
pub fn apply_correction(text: &str) -> String {
    let clauses: Vec<&str> = text
        .split(is_clause_break)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let mut kept: Vec<&str> = Vec::with_capacity(clauses.len());
    for (i, c) in clauses.iter().enumerate() {
        let negated = NEGATION_MARKERS.iter().any(|m| contains_marker(c, m));
        let followed = clauses[i + 1..]
            .iter()
            .any(|n| !NEGATION_MARKERS.iter().any(|m| contains_marker(n, m)));
        if negated && followed {
            continue;
        }
        kept.push(c);
    }
    let joined = kept
        .iter()
        .map(|c| rewrite_bushi(c))
        .collect::<Vec<_>>()
        .join("，");
    if joined.is_empty() {
        text.to_string()
    } else {
        joined
    }
}

/// `m` occurs in `c` not as part of "是不是".
fn contains_marker(c: &str, m: &str) -> bool {
    c.match_indices(m)
        .any(|(i, _)| !(m.starts_with("不是") && c[..i].ends_with('是')))
}

/// "不是X是Y" / "不是X而是Y" (X short) → "Y".
fn rewrite_bushi(c: &str) -> String {
    for (i, _) in c.match_indices("不是") {
        if c[..i].ends_with('是') {
            continue;
        }
        let rest = &c[i + "不是".len()..];
        // The first 是 after at least one character of X, X at most 12 characters.
        for (n, (j, ch)) in rest.char_indices().enumerate() {
            if n > 12 {
                break;
            }
            if ch == '是' && j > 0 {
                let y = rest[j + '是'.len_utf8()..].trim();
                if !y.is_empty() {
                    return y.to_string();
                }
            }
        }
    }
    c.to_string()
}

fn numeral_value(c: char) -> Option<u64> {
    Some(match c {
        '零' | '〇' => 0,
        '一' | '幺' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn unit_value(c: char) -> Option<u64> {
    Some(match c {
        '十' => 10,
        '百' => 100,
        '千' => 1000,
        '万' => 10_000,
        '亿' => 100_000_000,
        _ => return None,
    })
}

/// Measure words after which a single numeral is a number ("三个月", "五号").
fn is_measure(c: char) -> bool {
    "块元号天岁个次张年月日期笔点分秒位周".contains(c)
}

/// Parses a run of Chinese numerals ("一千二" → 1200, "一二三四" → 1234).
fn parse_numeral(run: &[char]) -> Option<String> {
    if run.iter().all(|&c| numeral_value(c).is_some()) {
        return Some(
            run.iter()
                .filter_map(|&c| numeral_value(c))
                .map(|d| char::from(b'0' + d as u8))
                .collect(),
        );
    }
    let (mut total, mut section, mut digit): (u64, u64, Option<u64>) = (0, 0, None);
    let mut last_unit = 1u64;
    for &c in run {
        if let Some(d) = numeral_value(c) {
            digit = Some(d);
        } else if let Some(u) = unit_value(c) {
            let d = digit.take().unwrap_or(if u == 10 { 1 } else { 0 });
            if u >= 10_000 {
                total = (total + section + d).checked_mul(u)?;
                section = 0;
            } else {
                section += d * u;
            }
            last_unit = u;
        }
    }
    // "一千二" = 1200, "三万五" = 35000: a trailing digit counts one unit lower.
    let tail = match digit {
        Some(d) if last_unit >= 100 => d * (last_unit / 10),
        Some(d) => d,
        None => 0,
    };
    Some((total + section + tail).to_string())
}

/// Chinese numeral runs → Arabic digits: runs of two or more numerals that start with a
/// digit (not 万/千, which start words like 万能险, 千万), or one digit before a measure word.
pub fn chinese_numerals_to_digits(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let starts = numeral_value(c).is_some() || c == '十';
        if !starts {
            out.push(c);
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len()
            && (numeral_value(chars[j]).is_some() || unit_value(chars[j]).is_some())
        {
            j += 1;
        }
        let run = &chars[i..j];
        let next = chars.get(j).copied();
        let convert = run.len() >= 2 || next.is_some_and(is_measure);
        // Keep words like 一下, 一点, 一些 … untouched (single numeral, no measure word).
        match convert.then(|| parse_numeral(run)).flatten() {
            Some(n) => out.push_str(&n),
            None => out.extend(run.iter()),
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Normalizer {
        Normalizer::from_parts(
            vec![
                ("点样".into(), "怎么".into()),
                ("啥子".into(), "什么".into()),
                ("咋整".into(), "怎么办".into()),
                ("唔该".into(), "谢谢".into()),
                ("侬".into(), "你".into()),
                ("系".into(), "是".into()),
                ("联系".into(), "联系".into()),
            ],
            vec![
                ("credit card".into(), "信用卡".into()),
                ("app".into(), "手机app".into()),
            ],
            vec![
                "嗯".into(),
                "那个".into(),
                "我想问一下".into(),
                "这个月=这个月".into(),
                "这个".into(),
            ],
        )
    }

    #[test]
    fn width_traditional_punctuation_fillers() {
        let n = sample();
        assert_eq!(
            n.normalize("嗯，那个，我想問一下信用卡賬單！"),
            "信用卡账单"
        );
        assert_eq!(n.normalize("ＡＰＰ登录不了"), "手机app登录不了");
        assert_eq!(n.normalize("这个月的账单"), "这个月的账单");
        assert_eq!(n.normalize("这个卡"), "卡");
    }

    #[test]
    fn dialect_and_codemix() {
        let n = sample();
        assert_eq!(n.normalize("我张credit card点样还款"), "我张信用卡怎么还款");
        assert_eq!(n.normalize("happy"), "happy");
        assert_eq!(n.normalize("联系客服"), "联系客服");
        assert_eq!(n.normalize("我系想问"), "我是想问");
    }

    #[test]
    fn correction_keeps_the_corrected_part() {
        let n = sample();
        assert_eq!(n.normalize("不是信用卡，是借记卡丢了"), "是借记卡丢了");
        assert_eq!(n.normalize("不是信用卡是借记卡丢了"), "借记卡丢了");
        assert_eq!(n.normalize("是不是扣款失败了"), "是不是扣款失败了");
        assert_eq!(n.normalize("别让机器跟我说"), "别让机器跟我说");
        assert_eq!(
            n.normalize("有一笔消费，不是我本人刷的"),
            "有1笔消费不是我本人刷的"
        );
    }

    #[test]
    fn numerals() {
        assert_eq!(chinese_numerals_to_digits("借了三万五"), "借了35000");
        assert_eq!(chinese_numerals_to_digits("一千二百块"), "1200块");
        assert_eq!(chinese_numerals_to_digits("尾号一二三四"), "尾号1234");
        assert_eq!(chinese_numerals_to_digits("三个月"), "3个月");
        assert_eq!(chinese_numerals_to_digits("查一下万能险"), "查一下万能险");
        assert_eq!(chinese_numerals_to_digits("十二期"), "12期");
        assert_eq!(chinese_numerals_to_digits("一千二"), "1200");
    }
}
