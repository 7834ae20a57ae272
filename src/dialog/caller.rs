//! Who is calling: the senior list (`sip-config/seniors.txt`, one ANI per line) and the
//! dialect areas by ANI prefix (`sip-config/dialect_areas.yaml`), resolved into the
//! [`CallerInfo`] a [`super::Session`] starts with.
//!
//! A caller is a senior when the customer record says age ≥ 65 (scripted calls give
//! `age`) or the ANI is on the list; a caller is from a dialect area when the ANI (in
//! national form, `0` + area code) starts with a listed prefix.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::yaml::{self, Diagnostic};

/// Age from which a caller is served in the elderly lane.
pub const SENIOR_AGE: u32 = 65;

/// What the session knows about the caller when the call starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallerInfo {
    /// Calling number as received.
    pub ani: Option<String>,
    /// Age from the customer record, when known.
    pub age: Option<u32>,
    /// Elderly lane: age ≥ 65 or ANI on the senior list.
    pub senior: bool,
    /// Dialect code of the caller's area (yue, sichuan, wu, minnan…).
    pub dialect: Option<String>,
    /// The call's id (SIP Call-ID or scripted id), carried into the transfer context.
    pub call_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AreasFile {
    areas: Vec<Area>,
}

/// One dialect area.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub prefix: String,
    pub dialect: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// The senior list and dialect areas.
#[derive(Debug, Clone, Default)]
pub struct CallerDirectory {
    seniors: HashSet<String>,
    areas: Vec<Area>,
}

impl CallerDirectory {
    pub fn new(seniors: impl IntoIterator<Item = String>, mut areas: Vec<Area>) -> Self {
        // Longest prefix first, so 0755 wins over a hypothetical 075.
        areas.sort_by_key(|a| std::cmp::Reverse(a.prefix.len()));
        CallerDirectory {
            seniors: seniors.into_iter().map(|s| national(&s)).collect(),
            areas,
        }
    }

    /// Loads both files; errors as `file:line:col`.
    pub fn load(seniors: &Path, dialect_areas: &Path) -> Result<Self, Diagnostic> {
        let text = std::fs::read_to_string(seniors).map_err(|e| {
            Diagnostic::new(seniors, 1, 1, format!("cannot read the senior list: {e}"))
        })?;
        let mut list = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.split('#').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            if !l
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == ' ')
            {
                return Err(Diagnostic::new(
                    seniors,
                    i as u64 + 1,
                    1,
                    format!("not a phone number: `{l}`"),
                ));
            }
            list.push(l.to_string());
        }
        let file: AreasFile = yaml::load(dialect_areas)?;
        for a in &file.areas {
            if a.prefix.is_empty() || !a.prefix.chars().all(|c| c.is_ascii_digit()) {
                return Err(Diagnostic::new(
                    dialect_areas,
                    1,
                    1,
                    format!("area prefix `{}` must be digits", a.prefix),
                ));
            }
        }
        Ok(CallerDirectory::new(list, file.areas))
    }

    /// Resolves a caller: senior flag and dialect.
    pub fn caller(&self, ani: Option<&str>, age: Option<u32>, call_id: &str) -> CallerInfo {
        let nat = ani.map(national);
        let senior = age.is_some_and(|a| a >= SENIOR_AGE)
            || nat.as_ref().is_some_and(|n| self.seniors.contains(n));
        let dialect = nat.as_ref().and_then(|n| {
            self.areas
                .iter()
                .find(|a| n.starts_with(&a.prefix))
                .map(|a| a.dialect.clone())
        });
        CallerInfo {
            ani: ani.map(str::to_string),
            age,
            senior,
            dialect,
            call_id: call_id.to_string(),
        }
    }
}

/// A number in national form: digits only, country code 86 dropped, a fixed-line number
/// given without its trunk `0` gets it back (`+86 20 8888 6666` → `02088886666`).
pub fn national(ani: &str) -> String {
    let d: String = ani.chars().filter(char::is_ascii_digit).collect();
    let d = if let Some(r) = d.strip_prefix("0086") {
        r.to_string()
    } else if ani.trim_start().starts_with('+') {
        d.strip_prefix("86").map(str::to_string).unwrap_or(d)
    } else if d.len() > 11 && d.starts_with("86") {
        d[2..].to_string()
    } else {
        d
    };
    let mobile = d.len() == 11 && d.starts_with('1');
    if !d.is_empty() && !d.starts_with('0') && !mobile {
        format!("0{d}")
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> CallerDirectory {
        CallerDirectory::new(
            ["13800000065".to_string(), "02066668888".to_string()],
            vec![
                Area {
                    prefix: "020".into(),
                    dialect: "yue".into(),
                    name: None,
                },
                Area {
                    prefix: "0755".into(),
                    dialect: "yue".into(),
                    name: None,
                },
                Area {
                    prefix: "028".into(),
                    dialect: "sichuan".into(),
                    name: None,
                },
            ],
        )
    }

    #[test]
    fn national_forms() {
        assert_eq!(national("+86 20 8888 6666"), "02088886666");
        assert_eq!(national("008602088886666"), "02088886666");
        assert_eq!(national("13800000065"), "13800000065");
        assert_eq!(national("+8613800000065"), "13800000065");
        assert_eq!(national("2088886666"), "02088886666");
    }

    #[test]
    fn seniors_by_age_or_list() {
        let d = dir();
        assert!(d.caller(None, Some(72), "c").senior);
        assert!(!d.caller(None, Some(64), "c").senior);
        assert!(d.caller(Some("+8613800000065"), None, "c").senior);
        assert!(!d.caller(Some("13800000066"), Some(30), "c").senior);
    }

    #[test]
    fn dialect_by_prefix() {
        let d = dir();
        assert_eq!(
            d.caller(Some("02088886666"), None, "c").dialect.as_deref(),
            Some("yue")
        );
        assert_eq!(
            d.caller(Some("075512345678"), None, "c").dialect.as_deref(),
            Some("yue")
        );
        assert_eq!(
            d.caller(Some("02812345678"), None, "c").dialect.as_deref(),
            Some("sichuan")
        );
        assert_eq!(d.caller(Some("01012345678"), None, "c").dialect, None);
        assert_eq!(d.caller(Some("13912345678"), None, "c").dialect, None);
    }

    #[test]
    fn shipped_files_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let d = CallerDirectory::load(
            &root.join("sip-config/seniors.txt"),
            &root.join("sip-config/dialect_areas.yaml"),
        )
        .unwrap();
        assert!(d.caller(Some("02066668888"), None, "c").senior);
        assert_eq!(
            d.caller(Some("05921234567"), None, "c").dialect.as_deref(),
            Some("minnan")
        );
        assert_eq!(
            d.caller(Some("02112345678"), None, "c").dialect.as_deref(),
            Some("wu")
        );
    }
}
