//! Scripted-call replay (`voicenav replay --script CALLS.yaml`): each call of the file
//! (format of `tests/calls/*.yaml`, fixed in ARCHITECTURE.md) runs through the real
//! dialog runtime on a fake clock, far faster than real time.
//!
//! Time model: prompts take no simulated time (each `Play` is reported finished at once,
//! so the no-input timer starts when the bot stops talking); `silence: N` advances the
//! clock N seconds, firing every timeout that falls inside (a 6-second silence is one
//! no-input at a 5-second node; 12 seconds are two). A `say` turn is turned into a
//! [`Classification`] by the caller of [`run_call`] — the text path classifies the text
//! with `nlu` like a final ASR result; the audio path (`--audio`) synthesises and
//! recognises it first. `barge_in` marks a turn spoken over the prompt. When the script
//! runs out before the call ends, the caller hangs up. `turns` counts the caller inputs
//! used before the outcome.
//!
//! Unknown keys in a call, turn or `expect` are reported on stderr and ignored, so a
//! script written for a newer format still runs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::dialog::{Action, CallerDirectory, Event, FlowSet, Outcome, Session};
use crate::nlu::Classification;
use crate::yaml::{self, Diagnostic};

/// A YAML scalar that may be written as a number or a string (`dtmf: 1`, `ani: 0208…`).
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
                if let Some(ms) = s.strip_suffix("ms") {
                    ms.trim().parse::<f64>().ok().map(|v| v / 1000.0)
                } else {
                    s.trim_end_matches('s').trim().parse().ok()
                }
            }
        }
    }
}

/// One scripted call.
#[derive(Debug, Clone, Deserialize)]
pub struct ScriptedCall {
    pub id: Scalar,
    #[serde(default)]
    pub caller: Option<CallerSpec>,
    #[serde(default)]
    pub turns: Vec<Turn>,
    #[serde(default)]
    pub expect: Option<Expect>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

/// The caller: `ani`, and `age` standing in for the customer-record lookup.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallerSpec {
    #[serde(default)]
    pub ani: Option<Scalar>,
    #[serde(default)]
    pub age: Option<Scalar>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

/// A caller input after a prompt: `say`, `dtmf`, `silence` (seconds); `barge_in: true`
/// (or `barge_in: <text>`) speaks over the prompt. A bare string is a `say`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Turn {
    Text(String),
    Full(TurnSpec),
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TurnSpec {
    #[serde(default)]
    pub say: Option<Scalar>,
    #[serde(default)]
    pub dtmf: Option<Scalar>,
    #[serde(default)]
    pub silence: Option<Scalar>,
    #[serde(default, alias = "bargein", alias = "barge-in")]
    pub barge_in: Option<Scalar>,
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
    #[serde(default)]
    pub dialect: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, IgnoredAny>,
}

/// The caller input of a turn, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Say { text: String, barge_in: bool },
    Dtmf(String),
    Silence(Duration),
}

impl Turn {
    pub fn input(&self) -> Result<Input, String> {
        let t = match self {
            Turn::Text(s) => {
                return Ok(Input::Say {
                    text: s.trim().to_string(),
                    barge_in: false,
                })
            }
            Turn::Full(t) => t,
        };
        let barge = t.barge_in.as_ref();
        let barge_flag = matches!(barge, Some(Scalar::Bool(true)));
        let barge_text = match barge {
            Some(Scalar::Str(s)) => Some(s.trim().to_string()),
            _ => None,
        };
        match (&t.say, &t.dtmf, &t.silence, barge_text) {
            (Some(s), None, None, None) => Ok(Input::Say {
                text: s.text(),
                barge_in: barge_flag,
            }),
            (None, None, None, Some(text)) => Ok(Input::Say {
                text,
                barge_in: true,
            }),
            (None, Some(d), None, None) => {
                let keys: String = d.text().chars().filter(|c| !c.is_whitespace()).collect();
                match keys
                    .chars()
                    .find(|c| !(c.is_ascii_digit() || *c == '*' || *c == '#'))
                {
                    Some(bad) => Err(format!("dtmf `{keys}`: `{bad}` is not a key (0-9, *, #)")),
                    None if keys.is_empty() => Err("dtmf: no keys".into()),
                    None => Ok(Input::Dtmf(keys)),
                }
            }
            (None, None, Some(s), None) => match s.seconds() {
                Some(v) if v.is_finite() && v >= 0.0 => {
                    Ok(Input::Silence(Duration::from_secs_f64(v.min(3600.0))))
                }
                _ => Err(format!("silence `{}` is not a number of seconds", s.text())),
            },
            _ => {
                Err("a turn is exactly one of say, dtmf, silence (barge_in may go with say)".into())
            }
        }
    }
}

/// One JSON line of output: exactly `{"id","outcome","queue","scenario","turns","passed"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallResult {
    pub id: String,
    /// `transferred` or `hangup`.
    pub outcome: String,
    pub queue: Option<String>,
    pub scenario: Option<String>,
    pub turns: u32,
    /// Only when the call has `expect`.
    pub passed: Option<bool>,
    #[serde(skip)]
    pub failures: Vec<String>,
    /// What happened, for a failing call's report.
    #[serde(skip)]
    pub trace: Vec<String>,
    /// Simulated call time (silences; prompts and speech take none).
    #[serde(skip)]
    pub simulated: Duration,
}

/// Parses a scripted-call file (a list of calls); problems as `file:line:col`.
pub fn load_calls(file: &Path) -> Result<Vec<ScriptedCall>, Diagnostic> {
    let calls: Vec<ScriptedCall> = yaml::load(file)?;
    for c in &calls {
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
        if let Some(cs) = &c.caller {
            warn("caller", &cs.unknown);
        }
        if let Some(e) = &c.expect {
            warn("expect", &e.unknown);
        }
        for (i, t) in c.turns.iter().enumerate() {
            if let Turn::Full(ts) = t {
                warn("turn", &ts.unknown);
            }
            t.input().map_err(|m| {
                Diagnostic::new(file, 1, 1, format!("call `{id}`, turn {}: {m}", i + 1))
            })?;
        }
    }
    Ok(calls)
}

/// Runs one scripted call on `flows`; `hear` turns a `say` text into a classification
/// (text replay: the NLU; audio replay: TTS → media → ASR → NLU).
pub fn run_call(
    call: &ScriptedCall,
    flows: Arc<FlowSet>,
    directory: &CallerDirectory,
    hear: &mut dyn FnMut(&str) -> Classification,
) -> CallResult {
    let id = call.id.text();
    let spec = call.caller.clone().unwrap_or_default();
    let ani = spec.ani.as_ref().map(Scalar::text);
    let age = spec
        .age
        .as_ref()
        .and_then(|a| a.text().parse::<f64>().ok())
        .map(|a| a.max(0.0) as u32);
    let caller = directory.caller(ani.as_deref(), age, &id);
    let dialect = caller.dialect.clone();
    let start = Instant::now();
    let mut now = start;
    let mut session = Session::new(flows, caller, now);
    let mut driver = Driver::default();
    driver.drain(&mut session, now);
    let mut turns = 0u32;
    for turn in &call.turns {
        if session.is_finished() {
            break;
        }
        let Ok(input) = turn.input() else { continue };
        turns += 1;
        match input {
            Input::Say { text, barge_in } => {
                driver.trace.push(format!(
                    "caller: {text}{}",
                    if barge_in { " (barge-in)" } else { "" }
                ));
                if barge_in {
                    driver.ack_disclosures(&mut session, now);
                    session.handle_event(now, Event::BargeIn);
                } else {
                    driver.ack_all(&mut session, now);
                    session.handle_event(now, Event::SpeechStarted);
                }
                let c = hear(&text);
                driver.trace.push(format!(
                    "  nlu: {:?} {} {:.2}",
                    c.decision,
                    c.scenario
                        .as_deref()
                        .or(c.queue.map(|q| q.as_str()))
                        .unwrap_or("-"),
                    c.confidence
                ));
                session.handle_event(now, Event::Utterance(c));
                driver.drain(&mut session, now);
            }
            Input::Dtmf(keys) => {
                driver.trace.push(format!("caller presses {keys}"));
                for k in keys.chars() {
                    if session.is_finished() {
                        break;
                    }
                    driver.ack_all(&mut session, now);
                    session.handle_event(now, Event::Dtmf(k));
                    driver.drain(&mut session, now);
                }
            }
            Input::Silence(d) => {
                driver
                    .trace
                    .push(format!("caller silent {:.1}s", d.as_secs_f64()));
                let end = now + d;
                driver.ack_all(&mut session, now);
                while let Some(t) = session.poll_timeout() {
                    if t > end || session.is_finished() {
                        break;
                    }
                    now = now.max(t);
                    session.handle_timeout(now);
                    driver.drain(&mut session, now);
                    driver.ack_all(&mut session, now);
                }
                now = end;
            }
        }
    }
    if !session.is_finished() {
        driver.trace.push("caller hangs up (script ended)".into());
        session.handle_event(now, Event::CallerHangup);
    }
    let (outcome, queue, scenario) = match session.outcome() {
        Some(Outcome::Transferred {
            queue, scenario, ..
        }) => (
            "transferred".to_string(),
            Some(queue.to_string()),
            scenario.clone(),
        ),
        _ => ("hangup".to_string(), None, None),
    };
    let mut result = CallResult {
        id,
        outcome,
        queue,
        scenario,
        turns,
        passed: None,
        failures: Vec::new(),
        trace: std::mem::take(&mut driver.trace),
        simulated: now - start,
    };
    if let Some(e) = &call.expect {
        result.failures = check(e, &result, driver.dialect.as_deref().or(dialect.as_deref()));
        result.passed = Some(result.failures.is_empty());
    }
    result
}

/// Plays the runtime's actions on the fake clock.
#[derive(Default)]
struct Driver {
    /// Unacknowledged prompts: is each a disclosure?
    playing: Vec<bool>,
    trace: Vec<String>,
    dialect: Option<String>,
}

impl Driver {
    fn drain(&mut self, s: &mut Session, now: Instant) {
        while let Some(a) = s.poll_action() {
            match a {
                Action::Play(p) => {
                    self.trace.push(format!("bot: {}", p.text));
                    self.playing.push(!p.barge_in);
                }
                Action::Listen(l) => self.trace.push(format!("  listen at {}", l.node)),
                Action::Transfer { queue, context } => {
                    self.trace.push(format!(
                        "transfer to {queue} (scenario {}, lane {}, dialect {})",
                        context.scenario.as_deref().unwrap_or("-"),
                        context.lane.as_str(),
                        context.dialect.as_deref().unwrap_or("-")
                    ));
                    self.dialect = context.dialect.clone();
                    self.ack_all(s, now);
                    s.handle_event(now, Event::TransferResult { ok: true });
                }
                Action::Hangup => self.trace.push("bot hangs up".into()),
            }
        }
    }

    fn ack_all(&mut self, s: &mut Session, now: Instant) {
        for _ in self.playing.drain(..) {
            s.handle_event(
                now,
                Event::PromptFinished {
                    heard: Duration::ZERO,
                },
            );
        }
    }

    /// Before a barge-in: prompts that cannot be interrupted play out first.
    fn ack_disclosures(&mut self, s: &mut Session, now: Instant) {
        while self.playing.first() == Some(&true) {
            self.playing.remove(0);
            s.handle_event(
                now,
                Event::PromptFinished {
                    heard: Duration::ZERO,
                },
            );
        }
        self.playing.clear();
    }
}

fn check(e: &Expect, r: &CallResult, dialect: Option<&str>) -> Vec<String> {
    let mut f = Vec::new();
    if let Some(o) = &e.outcome {
        if *o != r.outcome {
            f.push(format!("outcome {} (expected {o})", r.outcome));
        }
    }
    if let Some(q) = &e.queue {
        if r.queue.as_deref() != Some(q.as_str()) {
            f.push(format!(
                "queue {} (expected {q})",
                r.queue.as_deref().unwrap_or("none")
            ));
        }
    }
    if let Some(s) = e.scenario.as_deref().filter(|s| !s.is_empty() && *s != "-") {
        if !scenario_matches(r.scenario.as_deref(), s) {
            f.push(format!(
                "scenario {} (expected {s})",
                r.scenario.as_deref().unwrap_or("none")
            ));
        }
    }
    if let Some(m) = e.max_turns {
        if r.turns > m {
            f.push(format!("{} turns (at most {m} expected)", r.turns));
        }
    }
    if let Some(d) = &e.dialect {
        if dialect != Some(d.as_str()) {
            f.push(format!(
                "dialect {} (expected {d})",
                dialect.unwrap_or("none")
            ));
        }
    }
    f
}

/// A prediction under a core id counts for that core id (ARCHITECTURE.md).
pub fn scenario_matches(actual: Option<&str>, expected: &str) -> bool {
    let Some(a) = actual else { return false };
    a == expected || a.strip_prefix(expected).is_some_and(|r| r.starts_with('.'))
}
