//! Compliance watch: spots sensitive and risk phrases (abuse, threats, self-harm, complaints
//! to regulators, fraud tell-tales such as a "safe account", police impersonation, a caller
//! asked for a one-time code) in the caller's recognised text, as it arrives.
//!
//! The phrases live in `grammars/compliance.yaml` (schema documented in that file), grouped
//! in categories with a [`Severity`] and a [`Reaction`]. [`ComplianceMatcher`] is the
//! compiled grammar (pure: text in, hits out). [`ComplianceWatch`] is the per-call state the
//! call task keeps: it records each new flag once (for the call record), counts it in
//! `voicenav_compliance_flags_total{category}`, and tells the dialog runtime what to do with
//! a [`ComplianceAlert`] (play the category's warning prompt, transfer to the complaint queue
//! or urgently to a person).
//!
//! Normalisation here is deliberately simple and self-contained (the NLU normaliser is
//! tuned for classification): traditional → simplified (zhconv), full-width → half-width,
//! lower case, whitespace and punctuation removed.

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::observe::records::{ComplianceFlag, Severity};
use crate::routing::Queue;
use crate::yaml::{self, Diagnostic};

/// Characters a `…` gap in a phrase may span when the category sets none.
const DEFAULT_GAP: usize = 8;

/// What the dialog may do when a category is hit; ordered from mildest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reaction {
    /// Record and count only.
    None,
    /// Play the category's prompt and go on.
    Warn,
    /// Transfer to the complaint queue.
    Complaint,
    /// Transfer to a person at once.
    Urgent,
}

/// What the dialog runtime is told when a call hits a category for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceAlert {
    pub category: String,
    pub severity: Severity,
    pub reaction: Reaction,
    /// Where to transfer for `complaint` / `urgent` reactions.
    pub queue: Option<Queue>,
    /// The category's prompt, if it has one.
    pub prompt: Option<String>,
}

/// One phrase found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the category in the grammar.
    category: usize,
    /// The phrase as written in the grammar.
    pub phrase: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    #[error(transparent)]
    Yaml(#[from] Diagnostic),
    #[error("{0}")]
    Invalid(Diagnostic),
}

// ---- the grammar file ---------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrammar {
    categories: Vec<RawCategory>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: Spanned<String>,
    #[serde(default)]
    name: Option<String>,
    severity: Severity,
    reaction: Reaction,
    #[serde(default)]
    queue: Option<Queue>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    gap: Option<usize>,
    phrases: Vec<Spanned<String>>,
    #[serde(default)]
    except: Vec<Spanned<String>>,
}

/// A compiled category.
#[derive(Debug)]
struct Category {
    id: String,
    name: String,
    severity: Severity,
    reaction: Reaction,
    queue: Option<Queue>,
    prompt: Option<String>,
    phrases: Vec<(String, Regex)>,
    except: Vec<Regex>,
}

/// The compiled compliance grammar.
#[derive(Debug)]
pub struct ComplianceMatcher {
    categories: Vec<Category>,
}

impl ComplianceMatcher {
    /// Loads `grammars/compliance.yaml`; every problem is a `file:line:col` diagnostic.
    pub fn load(file: &Path) -> Result<ComplianceMatcher, ComplianceError> {
        let raw: RawGrammar = yaml::load(file)?;
        Self::compile(file, raw)
    }

    /// Parses grammar text (as if read from `file`).
    pub fn parse(file: &Path, text: &str) -> Result<ComplianceMatcher, ComplianceError> {
        let raw: RawGrammar = yaml::parse(file, text)?;
        Self::compile(file, raw)
    }

    /// The grammar of a configuration: `<paths.grammars>/compliance.yaml`.
    pub fn from_config(cfg: &crate::config::Config) -> Result<ComplianceMatcher, ComplianceError> {
        Self::load(&cfg.raw.paths.grammars.join("compliance.yaml"))
    }

    /// The grammar shipped in the repository (for tests and tools).
    pub fn shipped() -> Result<ComplianceMatcher, ComplianceError> {
        Self::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/grammars/compliance.yaml"
        )))
    }

    fn compile(file: &Path, raw: RawGrammar) -> Result<ComplianceMatcher, ComplianceError> {
        let err = |s: &Spanned<String>, msg: String| {
            let pos = yaml::pos_of(file, s);
            ComplianceError::Invalid(Diagnostic { pos, message: msg })
        };
        let mut seen = BTreeSet::new();
        let mut categories = Vec::new();
        for c in raw.categories {
            let id = c.id.value.trim().to_string();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
            {
                return Err(err(
                    &c.id,
                    format!("category id `{id}` must be snake_case ASCII"),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(err(&c.id, format!("category `{id}` is defined twice")));
            }
            if c.phrases.is_empty() {
                return Err(err(&c.id, format!("category `{id}` has no phrases")));
            }
            let gap = c.gap.unwrap_or(DEFAULT_GAP);
            let mut phrases = Vec::new();
            for p in &c.phrases {
                let re = phrase_regex(&p.value, gap).ok_or_else(|| {
                    err(
                        p,
                        format!("phrase `{}` is empty after normalisation", p.value),
                    )
                })?;
                phrases.push((p.value.trim().to_string(), re));
            }
            let mut except = Vec::new();
            for p in &c.except {
                except.push(phrase_regex(&p.value, gap).ok_or_else(|| {
                    err(
                        p,
                        format!("exception `{}` is empty after normalisation", p.value),
                    )
                })?);
            }
            categories.push(Category {
                name: c.name.unwrap_or_else(|| id.clone()),
                id,
                severity: c.severity,
                reaction: c.reaction,
                queue: c.queue,
                prompt: c.prompt,
                phrases,
                except,
            });
        }
        Ok(ComplianceMatcher { categories })
    }

    /// Every phrase found in `text` (at most one hit per phrase).
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let norm = normalise(text);
        if norm.is_empty() {
            return Vec::new();
        }
        let mut hits = Vec::new();
        for (ci, cat) in self.categories.iter().enumerate() {
            let excepted: Vec<(usize, usize)> = cat
                .except
                .iter()
                .flat_map(|re| re.find_iter(&norm).map(|m| (m.start(), m.end())))
                .collect();
            for (phrase, re) in &cat.phrases {
                let found = re
                    .find_iter(&norm)
                    .any(|m| !excepted.iter().any(|&(s, e)| s < m.end() && m.start() < e));
                if found {
                    hits.push(Hit {
                        category: ci,
                        phrase: phrase.clone(),
                    });
                }
            }
        }
        hits
    }

    /// The category ids hit by `text` (deduplicated, grammar order).
    pub fn categories_in(&self, text: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for h in self.scan(text) {
            let id = self.categories[h.category].id.as_str();
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// The category ids of the grammar.
    pub fn category_ids(&self) -> impl Iterator<Item = &str> {
        self.categories.iter().map(|c| c.id.as_str())
    }

    /// The human name of a category.
    pub fn category_name(&self, id: &str) -> Option<&str> {
        self.categories
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.as_str())
    }

    fn alert(&self, ci: usize) -> ComplianceAlert {
        let c = &self.categories[ci];
        let queue = c.queue.or(match c.reaction {
            Reaction::Complaint => Some(Queue::Complaint),
            Reaction::Urgent => Some(Queue::HumanAgent),
            Reaction::None | Reaction::Warn => None,
        });
        ComplianceAlert {
            category: c.id.clone(),
            severity: c.severity,
            reaction: c.reaction,
            queue,
            prompt: c.prompt.clone(),
        }
    }
}

/// Per-call compliance state: the flags so far and the categories already reacted to.
#[derive(Debug)]
pub struct ComplianceWatch<'m> {
    matcher: &'m ComplianceMatcher,
    flags: Vec<ComplianceFlag>,
    alerted: BTreeSet<usize>,
}

impl<'m> ComplianceWatch<'m> {
    pub fn new(matcher: &'m ComplianceMatcher) -> Self {
        ComplianceWatch {
            matcher,
            flags: Vec::new(),
            alerted: BTreeSet::new(),
        }
    }

    /// Looks at one recognised utterance heard `at_ms` into the call. Records each new
    /// (category, phrase) flag and counts it; returns the strongest alert for a category
    /// this call has not been alerted about yet (severity first, then reaction).
    pub fn observe(&mut self, at_ms: u64, text: &str) -> Option<ComplianceAlert> {
        let mut best: Option<usize> = None;
        for hit in self.matcher.scan(text) {
            let cat = &self.matcher.categories[hit.category];
            let known = self
                .flags
                .iter()
                .any(|f| f.category == cat.id && f.phrase == hit.phrase);
            if !known {
                metrics::counter!("voicenav_compliance_flags_total", "category" => cat.id.clone())
                    .increment(1);
                self.flags.push(ComplianceFlag {
                    at_ms,
                    category: cat.id.clone(),
                    severity: cat.severity,
                    phrase: hit.phrase.clone(),
                });
            }
            if self.alerted.contains(&hit.category) {
                continue;
            }
            let rank = |ci: usize| {
                let c = &self.matcher.categories[ci];
                (c.severity, c.reaction)
            };
            if best.is_none_or(|b| rank(hit.category) > rank(b)) {
                best = Some(hit.category);
            }
        }
        let ci = best?;
        self.alerted.insert(ci);
        Some(self.matcher.alert(ci))
    }

    /// The flags so far, in the order found (for the call record).
    pub fn flags(&self) -> &[ComplianceFlag] {
        &self.flags
    }

    pub fn into_flags(self) -> Vec<ComplianceFlag> {
        self.flags
    }
}

/// Simple normalisation for phrase spotting (see the module doc).
pub fn normalise(text: &str) -> String {
    let simplified = zhconv::zhconv(text, zhconv::Variant::ZhHans);
    simplified
        .chars()
        .filter_map(|c| {
            let c = match c {
                '\u{3000}' => ' ',
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
                _ => c,
            };
            if c.is_whitespace() || c.is_ascii_punctuation() || is_cjk_punctuation(c) || c == '…'
            {
                None
            } else {
                Some(c.to_ascii_lowercase())
            }
        })
        .collect()
}

fn is_cjk_punctuation(c: char) -> bool {
    matches!(c, '\u{3001}'..='\u{303F}' | '\u{2010}'..='\u{2027}' | '\u{FE10}'..='\u{FE6F}' | '·')
}

/// A phrase as a regex over normalised text: parts separated by `…` (or `...`) may have up
/// to `gap` characters between them; a leading/trailing digit must not touch another digit.
fn phrase_regex(phrase: &str, gap: usize) -> Option<Regex> {
    let parts: Vec<String> = phrase
        .replace("...", "…")
        .split('…')
        .map(normalise)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mut pattern = String::new();
    let first = parts.first().and_then(|p| p.chars().next());
    let last = parts.last().and_then(|p| p.chars().last());
    if first.is_some_and(|c| c.is_ascii_digit()) {
        pattern.push_str("(?:^|[^0-9])");
    }
    let body: Vec<String> = parts.iter().map(|p| regex::escape(p)).collect();
    pattern.push_str(&body.join(&format!(".{{0,{gap}}}?")));
    if last.is_some_and(|c| c.is_ascii_digit()) {
        pattern.push_str("(?:$|[^0-9])");
    }
    Regex::new(&pattern).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> ComplianceMatcher {
        ComplianceMatcher::shipped().expect("the shipped grammar loads")
    }

    #[test]
    fn positive_sentences_are_flagged_in_the_right_category() {
        let m = matcher();
        let cases = [
            ("我真的不想活了", "self_harm"),
            ("我活不下去了，欠了太多钱", "self_harm"),
            ("你们再不处理我就去跳楼", "self_harm"),
            ("再这样我就炸了你们银行", "threat"),
            ("信不信我弄死你", "threat"),
            ("你们这帮傻逼", "abuse"),
            ("他妈的怎么又是机器人", "abuse"),
            ("我要投诉到银保监会", "regulator_complaint"),
            ("我去金融监管总局投诉你们", "regulator_complaint"),
            ("我要打12378投诉", "regulator_complaint"),
            ("不解决我就找记者曝光你们", "regulator_complaint"),
            ("对方说我的钱不安全，让我转到安全账户", "fraud_safe_account"),
            ("有个警察说要做资金清查", "fraud_safe_account"),
            ("对方让我转五万块钱过去", "fraud_safe_account"),
            ("他让我下载一个会议软件然后共享屏幕", "fraud_safe_account"),
            ("有人打电话说我涉嫌洗钱", "impersonation"),
            ("自称公安的人说我的账户涉案", "impersonation"),
            ("有人冒充你们客服给我打电话", "impersonation"),
            ("我把验证码已经告诉他了", "otp_sharing"),
            ("客服问我要验证码，我给了", "otp_sharing"),
            ("我刚才把短信验证码发给对方了", "otp_sharing"),
        ];
        for (text, cat) in cases {
            let got = m.categories_in(text);
            assert!(got.contains(&cat), "{text}: expected {cat}, got {got:?}");
        }
    }

    #[test]
    fn negative_sentences_are_not_flagged() {
        let m = matcher();
        for text in [
            "我想查一下信用卡账单",
            "我的车刚被撞了，要报案",
            "我收不到验证码",
            "验证码一直不来怎么办",
            "我要投诉你们的服务态度",
            "我想把钱转到我自己的另一张卡",
            "帮我查一下保单",
            "想死你了宝贝",
            "我妈妈的保单想改受益人",
            "你妈妈的医保卡能不能用",
            "卡号6222123156789012",
            "请问炸鸡店能用信用卡积分吗",
            "我要转账给我儿子，但是转不过去",
            "",
        ] {
            assert!(
                m.categories_in(text).is_empty(),
                "{text}: {:?}",
                m.categories_in(text)
            );
        }
    }

    #[test]
    fn traditional_and_spaced_text_is_normalised() {
        let m = matcher();
        assert_eq!(
            m.categories_in("對方讓我轉到 安全賬戶"),
            vec!["fraud_safe_account"]
        );
        assert_eq!(
            m.categories_in("我 要 投 诉 到 银 保 监 会！"),
            vec!["regulator_complaint"]
        );
    }

    #[test]
    fn watch_flags_once_and_alerts_the_strongest_new_category() {
        let m = matcher();
        let mut w = ComplianceWatch::new(&m);
        let a = w.observe(1000, "你们这帮傻逼").unwrap();
        assert_eq!((a.category.as_str(), a.reaction), ("abuse", Reaction::Warn));
        assert!(a.prompt.is_some());
        assert_eq!(a.queue, None);
        // Same category again: flagged phrase already known, no new alert.
        assert_eq!(w.observe(2000, "傻逼"), None);
        assert_eq!(w.flags().len(), 1);
        // Abuse plus fraud in one utterance: the critical fraud category wins.
        let b = w.observe(3000, "傻逼，对方让我转到安全账户").unwrap();
        assert_eq!(b.category, "fraud_safe_account");
        assert_eq!(b.reaction, Reaction::Urgent);
        assert_eq!(b.queue, Some(Queue::HumanAgent));
        let c = w.observe(4000, "我要投诉到银保监会").unwrap();
        assert_eq!(
            (c.reaction, c.queue),
            (Reaction::Complaint, Some(Queue::Complaint))
        );
        let flags = w.into_flags();
        assert!(flags
            .iter()
            .any(|f| f.category == "fraud_safe_account" && f.at_ms == 3000));
        assert!(
            flags.iter().all(|f| f.phrase != "我要投诉到银保监会"),
            "phrases come from the grammar"
        );
    }

    #[test]
    fn bad_grammar_is_a_positioned_error() {
        let text = "categories:\n  - id: a\n    severity: low\n    reaction: warn\n    phrases: [x]\n  - id: a\n    severity: low\n    reaction: warn\n    phrases: [y]\n";
        let e = ComplianceMatcher::parse(Path::new("c.yaml"), text).unwrap_err();
        assert!(e.to_string().starts_with("c.yaml:6:"), "{e}");
        let text =
            "categories:\n  - id: a\n    severity: huge\n    reaction: warn\n    phrases: [x]\n";
        let e = ComplianceMatcher::parse(Path::new("c.yaml"), text).unwrap_err();
        assert!(e.to_string().contains("huge"), "{e}");
        let text = "categories:\n  - id: a\n    severity: low\n    reaction: warn\n    phrases: ['  ', '…']\n";
        assert!(ComplianceMatcher::parse(Path::new("c.yaml"), text).is_err());
    }

    #[test]
    fn gap_phrases_respect_the_gap() {
        let text = "categories:\n  - id: a\n    severity: low\n    reaction: none\n    gap: 2\n    phrases: ['甲…乙']\n";
        let m = ComplianceMatcher::parse(Path::new("c.yaml"), text).unwrap();
        assert_eq!(m.categories_in("甲一二乙"), vec!["a"]);
        assert!(m.categories_in("甲一二三乙").is_empty());
    }
}
