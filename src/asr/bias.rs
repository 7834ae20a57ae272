//! Per-listen-node biasing: what the current node expects to hear (its grammar file
//! `grammars/*.txt`, catalogue scenario names and keywords, yes/no words, digits,
//! 转人工 …) steers recognition without closing it:
//! - Vosk: grammar mode — the phrases plus `[unk]` become the decoding graph.
//! - Whisper: a short domain prompt (`<|startofprev|>` text) and, after decoding, the
//!   n-best list re-ranked against the phrases by *pinyin*: a hypothesis that contains an
//!   expected phrase's syllables written with other characters (心用卡 for 信用卡) gets the
//!   phrase's characters and a boost, so a homophone confusion does not cost the route,
//!   while open speech stays as recognised.
//!
//! Grammar file format: UTF-8, one phrase per line, `#` starts a comment, blank lines ignored.

use std::path::Path;

use pinyin::ToPinyin;

use super::Hypothesis;

/// Default Whisper prompt: tells the model it hears Mandarin written in Simplified
/// characters with punctuation, which steers it away from Traditional output.
pub const BASE_PROMPT: &str = "以下是普通话的句子。";

/// Longest domain prompt (characters) built from phrases.
const MAX_PROMPT_CHARS: usize = 80;

/// What a listen node expects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bias {
    /// Expected phrases (Simplified Chinese, or any language for Vosk).
    pub phrases: Vec<String>,
    /// Vosk: restrict the graph to `phrases` + `[unk]`.
    pub grammar: bool,
    /// Whisper: an explicit prompt; `None` builds one from [`BASE_PROMPT`] and phrases.
    pub prompt: Option<String>,
    /// Whisper: use a prompt at all (benchmarks turn it off).
    pub use_prompt: bool,
    /// Whisper: re-rank n-best against `phrases`.
    pub rerank: bool,
}

impl Bias {
    /// Open speech, no phrases. No prompt: measured on the shared clips, the base prompt
    /// costs 1–2 CER points (docs/BENCHMARKS.md `## speech`); Simplified output comes
    /// from zhconv instead.
    pub fn open() -> Bias {
        Bias {
            use_prompt: false,
            rerank: true,
            ..Bias::default()
        }
    }

    /// Open speech biased towards `phrases` (grammar mode for Vosk).
    pub fn phrases<I, S>(phrases: I) -> Bias
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let phrases = phrases
            .into_iter()
            .map(Into::into)
            .filter(|p: &String| !p.trim().is_empty())
            .collect();
        Bias {
            phrases,
            grammar: true,
            ..Bias::open()
        }
    }

    /// Reads a grammar file (one phrase per line, `#` comments).
    pub fn load(path: &Path) -> std::io::Result<Bias> {
        let text = std::fs::read_to_string(path)?;
        Ok(Bias::phrases(parse_grammar(&text)))
    }

    /// The bias of a listen node's `grammar: NAME` (`<grammars>/NAME.txt`); `open` or a
    /// node without a grammar file keeps the recogniser open (Vosk without a grammar,
    /// Whisper with the base prompt), biased by the file when there is one.
    pub fn for_node(grammars: &Path, name: Option<&str>) -> std::io::Result<Bias> {
        let Some(name) = name else {
            return Ok(Bias::open());
        };
        let file = grammars.join(format!("{name}.txt"));
        if !file.is_file() {
            return Ok(Bias::open());
        }
        let mut b = Bias::load(&file)?;
        // `open` listens re-rank on its keywords but never restrict Vosk to them.
        b.grammar = name != "open";
        Ok(b)
    }

    /// The Whisper prompt text, if any.
    pub fn whisper_prompt(&self) -> Option<String> {
        if !self.use_prompt {
            return None;
        }
        if let Some(p) = &self.prompt {
            return Some(p.clone());
        }
        let mut out = BASE_PROMPT.to_string();
        let mut n = out.chars().count();
        let mut first = true;
        for p in &self.phrases {
            let len = p.chars().count() + 1;
            if n + len > MAX_PROMPT_CHARS {
                break;
            }
            if !first {
                out.push('，');
            }
            out.push_str(p);
            n += len;
            first = false;
        }
        if !first {
            out.push('。');
        }
        Some(out)
    }

    /// Re-ranks a Whisper n-best list against the phrases (no-op without phrases or when
    /// `rerank` is off). Corrected spellings are inserted before the hypothesis they came from.
    pub fn rerank(&self, alts: Vec<Hypothesis>) -> Vec<Hypothesis> {
        if !self.rerank || self.phrases.is_empty() || alts.is_empty() {
            return alts;
        }
        let phrases: Vec<(Vec<char>, Vec<String>)> = self
            .phrases
            .iter()
            .map(|p| (p.chars().collect(), syllables(p)))
            .collect();
        let mut scored: Vec<(f32, usize, Hypothesis)> = Vec::new();
        for (rank, h) in alts.into_iter().enumerate() {
            let (fixed, covered) = correct(&h.text, &phrases);
            let len = h
                .text
                .chars()
                .filter(|c| c.is_alphanumeric())
                .count()
                .max(1);
            let boost = 0.3 * covered as f32 / len as f32;
            if fixed != h.text {
                scored.push((
                    h.confidence + boost,
                    rank,
                    Hypothesis {
                        text: fixed.clone(),
                        confidence: h.confidence,
                    },
                ));
            }
            let own = if fixed == h.text { boost } else { 0.0 };
            scored.push((h.confidence + own, rank, h));
        }
        // stable: by boosted score, then original rank
        scored.sort_by(|a, b| {
            b.0.partial_cmp(&a.0)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(a.1.cmp(&b.1))
        });
        let mut out: Vec<Hypothesis> = Vec::new();
        for (_, _, h) in scored {
            if !out.iter().any(|o| o.text == h.text) {
                out.push(h);
            }
        }
        out
    }
}

/// Phrases of a grammar file.
pub fn parse_grammar(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Toneless pinyin per character (non-Han characters stand for themselves).
fn syllables(text: &str) -> Vec<String> {
    text.chars()
        .map(|c| match c.to_pinyin() {
            Some(p) => p.plain().to_string(),
            None => c.to_string(),
        })
        .collect()
}

/// Replaces spans of `text` whose pinyin equals a phrase's pinyin with the phrase's
/// characters (longest phrases first). Returns the corrected text and how many
/// characters of it are covered by phrases.
fn correct(text: &str, phrases: &[(Vec<char>, Vec<String>)]) -> (String, usize) {
    let mut chars: Vec<char> = text.chars().collect();
    let syl = syllables(text);
    let mut covered = vec![false; chars.len()];
    let mut order: Vec<&(Vec<char>, Vec<String>)> =
        phrases.iter().filter(|p| p.1.len() >= 2).collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.1.len()));
    for (pchars, psyl) in order {
        if pchars.len() != psyl.len() {
            continue;
        }
        let n = psyl.len();
        let mut i = 0;
        while i + n <= syl.len() {
            if covered[i..i + n].iter().all(|c| !c) && syl[i..i + n] == psyl[..] {
                chars[i..i + n].copy_from_slice(pchars);
                for c in &mut covered[i..i + n] {
                    *c = true;
                }
                i += n;
            } else {
                i += 1;
            }
        }
    }
    (
        chars.into_iter().collect(),
        covered.iter().filter(|c| **c).count(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(text: &str, confidence: f32) -> Hypothesis {
        Hypothesis {
            text: text.into(),
            confidence,
        }
    }

    #[test]
    fn a_homophone_confusion_is_spelt_as_the_expected_phrase() {
        let bias = Bias::phrases(["信用卡", "账单"]);
        let out = bias.rerank(vec![h("我想查心用卡帐单", 0.6)]);
        assert_eq!(out[0].text, "我想查信用卡账单");
        assert!(
            out.iter().any(|x| x.text == "我想查心用卡帐单"),
            "the original stays in the n-best"
        );
    }

    #[test]
    fn a_hypothesis_matching_the_grammar_outranks_a_slightly_likelier_one() {
        let bias = Bias::phrases(["转人工"]);
        let out = bias.rerank(vec![h("转人攻", 0.55), h("转人工", 0.5)]);
        assert_eq!(out[0].text, "转人工");
    }

    #[test]
    fn open_speech_is_kept_when_nothing_matches() {
        let bias = Bias::phrases(["信用卡"]);
        let out = bias.rerank(vec![h("我的车被撞了", 0.7), h("我的车被装了", 0.3)]);
        assert_eq!(out[0].text, "我的车被撞了");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn shipped_grammar_files_load_and_open_stays_open() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars");
        let yn = Bias::for_node(&dir, Some("yes_no")).expect("yes_no.txt");
        assert!(yn.grammar && yn.phrases.iter().any(|p| p == "不是"));
        let open = Bias::for_node(&dir, Some("open")).expect("open.txt");
        assert!(!open.grammar && open.phrases.iter().any(|p| p == "信用卡"));
        assert_eq!(
            Bias::for_node(&dir, Some("no_such_grammar")).expect("missing"),
            Bias::open()
        );
        assert_eq!(Bias::for_node(&dir, None).expect("none"), Bias::open());
    }

    #[test]
    fn grammar_files_skip_comments_and_blanks() {
        assert_eq!(
            parse_grammar("# yes words\n是的\n\n对 # agree\n"),
            vec!["是的", "对"]
        );
    }

    #[test]
    fn the_prompt_names_expected_phrases_within_a_bound() {
        assert_eq!(
            Bias::phrases(["信用卡"]).whisper_prompt(),
            None,
            "the prompt is opt-in"
        );
        let on = |b: Bias| Bias {
            use_prompt: true,
            ..b
        };
        let p = on(Bias::phrases(["信用卡", "车险"]))
            .whisper_prompt()
            .expect("prompt");
        assert_eq!(p, "以下是普通话的句子。信用卡，车险。");
        let many: Vec<String> = (0..100).map(|i| format!("短语{i}")).collect();
        let p = on(Bias::phrases(many)).whisper_prompt().expect("prompt");
        assert!(p.chars().count() <= MAX_PROMPT_CHARS + 1);
        assert_eq!(
            on(Bias::open()).whisper_prompt().as_deref(),
            Some(BASE_PROMPT)
        );
    }
}
