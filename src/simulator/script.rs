//! The scripted-call file of the caller simulator: the `tests/calls/*.yaml` format fixed in
//! ARCHITECTURE.md ("Scripted call format"), read with positions in errors, plus two
//! optional turn fields the simulator understands:
//!
//! - `wav: path/to/sentence.wav` — send this recording instead of synthesising the `say`
//!   text (natural voices are recognised far better than espeak-ng's Mandarin); a path
//!   relative to the script's folder. `say` may stay beside it as the label.
//! - `barge_in: true` — speak as soon as the bot's prompt has started, not after it ends.
//!
//! A bare string turn is a `say`. Unknown keys are reported on stderr and ignored, so a
//! script written for a newer format still runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::yaml::{self, Diagnostic};

/// A YAML scalar written as a number or a string (`dtmf: 1`, `ani: 0208…`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Str(s) => s.trim().to_string(),
        }
    }

    fn seconds(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Bool(_) => None,
            Scalar::Str(s) => {
                let s = s.trim();
                match s.strip_suffix("ms") {
                    Some(ms) => ms.trim().parse::<f64>().ok().map(|v| v / 1000.0),
                    None => s.trim_end_matches('s').trim().parse().ok(),
                }
            }
        }
    }
}

/// One scripted call as written.
#[derive(Debug, Clone, Deserialize)]
pub struct RawCall {
    pub id: Scalar,
    #[serde(default)]
    pub caller: Option<RawCaller>,
    #[serde(default)]
    pub turns: Vec<RawTurn>,
    #[serde(default)]
    pub expect: Option<Expect>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawCaller {
    #[serde(default)]
    pub ani: Option<Scalar>,
    #[serde(default)]
    pub age: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawTurn {
    Text(String),
    Full(RawTurnSpec),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RawTurnSpec {
    #[serde(default)]
    pub say: Option<Scalar>,
    #[serde(default)]
    pub wav: Option<String>,
    #[serde(default)]
    pub dtmf: Option<Scalar>,
    #[serde(default)]
    pub silence: Option<Scalar>,
    #[serde(default, alias = "bargein", alias = "barge-in")]
    pub barge_in: Option<bool>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

/// What the call must end in.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Expect {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    #[serde(default)]
    pub max_turns: Option<u32>,
    /// `transferred` or `hangup`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// `X-Voicenav-Dialect` of the transfer.
    #[serde(default)]
    pub dialect: Option<String>,
    /// `X-Voicenav-Lane` of the transfer.
    #[serde(default)]
    pub lane: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

/// A resolved call, ready to place.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub ani: Option<String>,
    pub age: Option<u32>,
    pub turns: Vec<Turn>,
    pub expect: Option<Expect>,
}

/// A resolved caller input.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    /// Speech: synthesised from `text`, or the recording `wav` when given.
    Say {
        text: String,
        wav: Option<PathBuf>,
        barge_in: bool,
    },
    /// Keys sent as RFC 4733 events.
    Dtmf(String),
    /// Silent RTP for this long.
    Silence(Duration),
}

fn resolve_turn(t: &RawTurn, dir: &Path) -> Result<Turn, String> {
    let t = match t {
        RawTurn::Text(s) => {
            return Ok(Turn::Say {
                text: s.trim().to_string(),
                wav: None,
                barge_in: false,
            })
        }
        RawTurn::Full(t) => t,
    };
    let barge_in = t.barge_in.unwrap_or(false);
    let wav = t.wav.as_ref().map(|w| dir.join(w.trim()));
    match (&t.say, &wav, &t.dtmf, &t.silence) {
        (say, Some(w), None, None) => {
            if !w.is_file() {
                return Err(format!("wav `{}` is not a readable file", w.display()));
            }
            Ok(Turn::Say {
                text: say.as_ref().map(Scalar::text).unwrap_or_default(),
                wav,
                barge_in,
            })
        }
        (Some(s), None, None, None) => Ok(Turn::Say {
            text: s.text(),
            wav: None,
            barge_in,
        }),
        (None, None, Some(d), None) => {
            let keys: String = d.text().chars().filter(|c| !c.is_whitespace()).collect();
            match keys
                .chars()
                .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
            {
                Some(bad) => Err(format!("dtmf `{keys}`: `{bad}` is not a key (0-9, *, #)")),
                None if keys.is_empty() => Err("dtmf: no keys".into()),
                None => Ok(Turn::Dtmf(keys)),
            }
        }
        (None, None, None, Some(s)) => match s.seconds() {
            Some(v) if v.is_finite() && v >= 0.0 => {
                Ok(Turn::Silence(Duration::from_secs_f64(v.min(3600.0))))
            }
            _ => Err(format!("silence `{}` is not a number of seconds", s.text())),
        },
        _ => Err("a turn is exactly one of say (optionally with wav), wav, dtmf, silence".into()),
    }
}

/// Reads a scripted-call file; every problem as `file:line:col: message`.
pub fn load(file: &Path) -> Result<Vec<Call>, Diagnostic> {
    let raw: Vec<RawCall> = yaml::load(file)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    raw.iter().map(|c| resolve(file, dir, c)).collect()
}

/// Parses scripted calls from text (`file` names it in errors; `wav` paths are relative
/// to its folder).
pub fn parse(file: &Path, text: &str) -> Result<Vec<Call>, Diagnostic> {
    let raw: Vec<RawCall> = yaml::parse(file, text)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    raw.iter().map(|c| resolve(file, dir, c)).collect()
}

fn resolve(file: &Path, dir: &Path, c: &RawCall) -> Result<Call, Diagnostic> {
    let id = c.id.text();
    let warn = |what: &str, keys: &BTreeMap<String, IgnoredAny>| {
        for k in keys.keys() {
            eprintln!(
                "{}: call `{id}`: ignoring unknown {what} key `{k}`",
                file.display()
            );
        }
    };
    warn("call", &c.unknown);
    let caller = c.caller.clone().unwrap_or_default();
    warn("caller", &caller.unknown);
    if let Some(e) = &c.expect {
        warn("expect", &e.unknown);
    }
    let mut turns = Vec::new();
    for (i, t) in c.turns.iter().enumerate() {
        if let RawTurn::Full(ts) = t {
            warn("turn", &ts.unknown);
        }
        let turn = resolve_turn(t, dir).map_err(|m| {
            Diagnostic::new(file, 1, 1, format!("call `{id}`, turn {}: {m}", i + 1))
        })?;
        turns.push(turn);
    }
    let age = match &caller.age {
        None => None,
        Some(a) => Some(
            a.text()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0 && *v < 200.0)
                .map(|v| v as u32)
                .ok_or_else(|| {
                    Diagnostic::new(
                        file,
                        1,
                        1,
                        format!("call `{id}`: age `{}` is not a number", a.text()),
                    )
                })?,
        ),
    };
    Ok(Call {
        id,
        ani: caller.ani.as_ref().map(Scalar::text),
        age,
        turns,
        expect: c.expect.clone(),
    })
}

/// A prediction under a core id counts for that core id (ARCHITECTURE.md).
pub fn scenario_matches(actual: Option<&str>, expected: &str) -> bool {
    let Some(a) = actual else { return false };
    a == expected || a.strip_prefix(expected).is_some_and(|r| r.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_architecture_example_and_simulator_fields() {
        let text = r#"
- id: credit-card-direct
  caller: {ani: "02088886666", age: 72}
  turns:
    - say: 我想查一下信用卡账单
    - dtmf: 1
    - silence: 6
    - "车险报案"
    - {say: 我要转人工, barge_in: true}
  expect: {queue: credit_card, scenario: credit_card.bill_query, max_turns: 2}
"#;
        let calls = parse(Path::new("calls.yaml"), text).unwrap();
        assert_eq!(calls.len(), 1);
        let c = &calls[0];
        assert_eq!(c.id, "credit-card-direct");
        assert_eq!(c.ani.as_deref(), Some("02088886666"));
        assert_eq!(c.age, Some(72));
        assert_eq!(c.turns[1], Turn::Dtmf("1".into()));
        assert_eq!(c.turns[2], Turn::Silence(Duration::from_secs(6)));
        assert!(matches!(&c.turns[3], Turn::Say { text, .. } if text == "车险报案"));
        assert!(matches!(&c.turns[4], Turn::Say { barge_in: true, .. }));
        assert_eq!(c.expect.as_ref().unwrap().max_turns, Some(2));
    }

    #[test]
    fn bad_turns_are_errors_with_the_call_named() {
        for bad in [
            "[{id: a, turns: [{dtmf: x}]}]",
            "[{id: a, turns: [{silence: soon}]}]",
            "[{id: a, turns: [{say: x, dtmf: 1}]}]",
        ] {
            let e = parse(Path::new("c.yaml"), bad).unwrap_err().to_string();
            assert!(e.contains("call `a`, turn 1"), "{e}");
        }
        let e = parse(
            Path::new("c.yaml"),
            "[{id: a, turns: [{wav: /nonexistent.wav}]}]",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not a readable file"), "{e}");
        assert!(parse(Path::new("c.yaml"), "{not: a list}").is_err());
    }

    #[test]
    fn core_id_prefix_matches() {
        assert!(scenario_matches(
            Some("credit_card.bill_query.statement_resend"),
            "credit_card.bill_query"
        ));
        assert!(scenario_matches(
            Some("credit_card.bill_query"),
            "credit_card.bill_query"
        ));
        assert!(!scenario_matches(
            Some("credit_card.bill_queryx"),
            "credit_card.bill_query"
        ));
        assert!(!scenario_matches(None, "credit_card.bill_query"));
    }
}
