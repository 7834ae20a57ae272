//! YAML loading with `file:line:col: message` diagnostics.
//!
//! Every YAML file voicenav reads (configuration, flows, the scenario catalogue, grammars)
//! goes through [`load`] / [`parse`], so a flow designer or telephony admin always gets the
//! same error shape: the file, the line and column of the offending node, and what is wrong
//! (unknown keys are errors because every schema uses `#[serde(deny_unknown_fields)]`).
//! Built on `serde-saphyr` (maintained, location-aware); `serde_yaml` is deprecated.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// A position in a source file, 1-based, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePos {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One diagnostic: `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct Diagnostic {
    pub pos: SourcePos,
    pub message: String,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            pos: SourcePos {
                file: file.into(),
                line,
                column,
            },
            message: message.into(),
        }
    }
}

/// Parses `text` (the contents of `file`) into `T`, mapping any error to a [`Diagnostic`].
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Diagnostic> {
    serde_saphyr::from_str::<T>(text).map_err(|e| to_diagnostic(file, text, &e))
}

/// Reads and parses `file`; an unreadable file is a diagnostic at 1:1.
pub fn load<T: DeserializeOwned>(file: &Path) -> Result<T, Diagnostic> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::new(file, 1, 1, format!("cannot read: {e}")))?;
    parse(file, &text)
}

fn to_diagnostic(file: &Path, text: &str, e: &serde_saphyr::Error) -> Diagnostic {
    let known = e
        .location()
        .map(|l| (l.line(), l.column()))
        .filter(|&(l, _)| l > 0);
    // serde reports unknown keys without a position; find the key in the text ourselves.
    let message = first_line(&e.to_string());
    let key_pos = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .and_then(|(field, _)| find_key(text, field, known.map_or(1, |(l, _)| l)));
    let (line, column) = key_pos.or(known).unwrap_or((1, 1));
    Diagnostic::new(file, line.max(1), column.max(1), message)
}

/// The 1-based line and column of the first mapping key `key` at or after `from_line`.
fn find_key(text: &str, key: &str, from_line: u64) -> Option<(u64, u64)> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1) as usize)
        .find_map(|(i, line)| {
            let trimmed = line.trim_start();
            let (indent, rest) = match trimmed.strip_prefix("- ") {
                Some(r) => (line.len() - r.trim_start().len(), r.trim_start()),
                None => (line.len() - trimmed.len(), trimmed),
            };
            let rest = rest.trim_start_matches(['{', ' ']);
            let unquoted = rest
                .strip_prefix('"')
                .or_else(|| rest.strip_prefix('\''))
                .unwrap_or(rest);
            let after = unquoted.strip_prefix(key)?;
            let after = after.trim_start_matches(['"', '\'']).trim_start();
            after
                .starts_with(':')
                .then(|| (i as u64 + 1, line[..indent].chars().count() as u64 + 1))
        })
}

/// serde-saphyr's Display may append a source snippet; keep the message line only, without
/// a repeated location prefix.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s).trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // Drop a leading "line N column M:" style prefix if the library adds one.
    line.to_string()
}

/// The position of a spanned value, for diagnostics raised after parsing (validation).
pub fn pos_of<T>(file: &Path, spanned: &serde_saphyr::Spanned<T>) -> SourcePos {
    SourcePos {
        file: file.to_path_buf(),
        line: spanned.referenced.line().max(1),
        column: spanned.referenced.column().max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
        #[allow(dead_code)]
        port: u16,
    }

    #[test]
    fn unknown_key_reports_line_and_column() {
        let err = parse::<Sample>(Path::new("x.yaml"), "name: a\nport: 1\nprot: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 3, "{err}");
        assert!(err.to_string().starts_with("x.yaml:3:"), "{err}");
        assert!(err.message.contains("prot"), "{err}");
    }

    #[test]
    fn wrong_type_reports_line() {
        let err = parse::<Sample>(Path::new("x.yaml"), "name: a\nport: lots\n").unwrap_err();
        assert_eq!(err.pos.line, 2, "{err}");
    }
}
