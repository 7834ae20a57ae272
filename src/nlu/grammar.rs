//! Small phrase grammars shared with the dialog and ASR sides: `grammars/yes_no.txt`
//! (`# yes`, `# no` and `# other` sections, one phrase per line), `grammars/digits.txt`
//! and `grammars/human_agent.txt` (one phrase per line). Lines starting with `#` are
//! comments everywhere, so a recogniser can bias on every line of a file as it is.

use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use super::normalize::{fold_width, phrase_lines};
use crate::yaml::Diagnostic;

/// Phrases of a one-phrase-per-line grammar file.
pub fn load_phrases(path: &Path) -> Result<Vec<String>, Diagnostic> {
    std::fs::read_to_string(path)
        .map(|t| phrase_lines(&t))
        .map_err(|e| Diagnostic::new(path, 1, 1, format!("cannot read: {e}")))
}

/// Yes/no confirmation words.
#[derive(Debug, Clone)]
pub struct YesNo {
    pub yes: Vec<String>,
    pub no: Vec<String>,
    ac: Option<AhoCorasick>,
}

impl YesNo {
    /// Reads `yes_no.txt`: phrases after a `# yes` line are yes, after `# no` are no.
    pub fn load(path: &Path) -> Result<YesNo, Diagnostic> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Diagnostic::new(path, 1, 1, format!("cannot read: {e}")))?;
        YesNo::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<YesNo, Diagnostic> {
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        // None: before any section; Some(None): a section that is neither yes nor no.
        let mut section: Option<Option<bool>> = None;
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if let Some(c) = l.strip_prefix('#') {
                match c.trim() {
                    "yes" => section = Some(Some(true)),
                    "no" => section = Some(Some(false)),
                    "other" => section = Some(None),
                    _ => {}
                }
                continue;
            }
            if l.is_empty() {
                continue;
            }
            match section {
                Some(Some(true)) => yes.push(l.to_string()),
                Some(Some(false)) => no.push(l.to_string()),
                Some(None) => {}
                None => {
                    return Err(Diagnostic::new(
                        path,
                        n as u64 + 1,
                        1,
                        "phrase before any `# yes` / `# no` section",
                    ))
                }
            }
        }
        Ok(YesNo::new(yes, no))
    }

    pub fn new(yes: Vec<String>, no: Vec<String>) -> YesNo {
        let all: Vec<&String> = yes.iter().chain(no.iter()).collect();
        let ac = (!all.is_empty())
            .then(|| {
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(all)
                    .ok()
            })
            .flatten();
        YesNo { yes, no, ac }
    }

    /// `Some(true)` for yes, `Some(false)` for no (a no phrase anywhere wins: 不是, 不对),
    /// `None` when neither is heard.
    pub fn answer(&self, text: &str) -> Option<bool> {
        let ac = self.ac.as_ref()?;
        let t: String = fold_width(&zhconv::zhconv(text, zhconv::Variant::ZhHans))
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        let mut heard = None;
        for m in ac.find_iter(&t) {
            let is_yes = m.pattern().as_usize() < self.yes.len();
            if !is_yes {
                return Some(false);
            }
            heard = Some(true);
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wins_over_the_yes_inside_it() {
        let g = YesNo::parse(
            Path::new("y.txt"),
            "# yes\n是\n是的\n对\n好的\n# no\n不是\n不对\n不用\n# other\n转人工\n",
        )
        .unwrap();
        assert_eq!(g.answer("是的，没错"), Some(true));
        assert_eq!(g.answer("不是"), Some(false));
        assert_eq!(g.answer("對"), Some(true));
        assert_eq!(g.answer("不对不对"), Some(false));
        assert_eq!(g.answer("天气"), None);
        assert_eq!(g.answer("转人工"), None);
        let err = YesNo::parse(Path::new("y.txt"), "是\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "y.txt:1:1: phrase before any `# yes` / `# no` section"
        );
    }
}
