//! The per-call dialog runtime: a sans-IO state machine over a compiled [`FlowSet`].
//!
//! A [`Session`] takes caller-side [`Event`]s and timeouts with the current `Instant`
//! and queues [`Action`]s; no clock, no IO, no tokio. See the module doc of
//! [`crate::dialog`] for the drive loop.
//!
//! Timing model: a node's prompts are queued as `Play` actions followed by one `Listen`;
//! the no-input timer starts when the driver reports the last prompt finished
//! (`PromptFinished`) or the caller barges in. Speech (`SpeechStarted`) stops the
//! no-input timer and starts the max-speech timer. Counters of no-input, no-match and
//! invalid entries belong to the node and reset when the call moves to another node.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::caller::CallerInfo;
use super::load::{CTransition, Cond, EventMatch, FlowSet, NodeIdx, PromptTpl, Step, Target};
use super::schema::DigitCheck;
use crate::nlu::{Classification, Decision};
use crate::routing::{core_of, Lane, Queue, TransferContext};

/// How long a transfer may take before it counts as failed.
pub const TRANSFER_GUARD: Duration = Duration::from_secs(30);
/// Steps taken without caller input before the session gives up (a validated flow set
/// never gets near it).
const MAX_HOPS: u32 = 64;
/// The rest of a "no, …" answer must classify at least this sure to count as a correction.
const CORRECTION_MIN_CONFIDENCE: f32 = 0.3;
/// Yes words that are also fillers: a yes only alone or followed by another yes word.
const FILLER_YES: [&str; 2] = ["嗯", "啊"];

/// Something that happened on the caller's side of the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A final recognition result (or typed text), already classified.
    Utterance(Classification),
    /// A key: 0-9, *, #.
    Dtmf(char),
    /// The endpointer heard speech start (stops the no-input timer).
    SpeechStarted,
    /// One `Play` finished; `heard` is how much of it played.
    PromptFinished {
        heard: Duration,
    },
    /// The caller spoke or pressed during an interruptible prompt; the driver stopped it.
    BargeIn,
    /// The outcome of the last `Transfer`.
    TransferResult {
        ok: bool,
    },
    CallerHangup,
}

/// Where a prompt's text comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptSource {
    /// A node's own prompt.
    Node,
    /// A transition's `say`.
    Say,
    /// The catalogue's self-service answer of a scenario.
    Answer { scenario: String },
}

/// A prompt to play, variables filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    pub text: String,
    /// Speaking-rate multiplier (1.0 normal).
    pub rate: f32,
    /// Volume multiplier (1.0 normal).
    pub volume: f32,
    /// A recording to play instead of synthesising.
    pub wav: Option<std::path::PathBuf>,
    pub barge_in: bool,
    /// Must play to the end.
    pub disclosure: bool,
    pub source: PromptSource,
}

/// Digit collection settings of a listen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DigitCollection {
    pub min: usize,
    pub max: usize,
    pub terminator: Option<char>,
    pub luhn: bool,
}

/// What and how to listen for at the current node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenSpec {
    /// `flow.node`.
    pub node: String,
    /// Grammar / phrase list for the recogniser.
    pub grammar: Option<String>,
    pub no_input: Duration,
    pub end_silence: Duration,
    pub max_speech: Duration,
    pub barge_in: bool,
    /// Speech accepted (false: keypad only).
    pub speech: bool,
    /// Keys the node reacts to.
    pub dtmf: Vec<char>,
    pub collect: Option<DigitCollection>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Play(Prompt),
    Listen(ListenSpec),
    Transfer {
        queue: Queue,
        context: TransferContext,
    },
    Hangup,
}

/// How the call left the dialog.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    Transferred {
        queue: Queue,
        scenario: Option<String>,
        confidence: Option<f32>,
    },
    Hangup {
        by_caller: bool,
    },
}

/// A resumable picture of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `flow.node`.
    pub node: String,
    pub vars: BTreeMap<String, String>,
    /// What the caller said, in order.
    pub transcript: Vec<String>,
    pub flow_version: u64,
}

/// The runtime's named timers (earliest wins in [`Session::poll_timeout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Silence after the prompt (or between collected digits).
    NoInput = 0,
    /// Speech longer than the node allows.
    MaxSpeech = 1,
    /// A transfer not confirmed in time.
    Transfer = 2,
}

const TIMERS: [Timer; 3] = [Timer::Transfer, Timer::MaxSpeech, Timer::NoInput];

#[derive(Debug, Clone, PartialEq)]
struct Intent {
    queue: Option<Queue>,
    scenario: Option<String>,
    confidence: f32,
}

impl Intent {
    fn of(c: &Classification) -> Intent {
        Intent {
            queue: c
                .queue
                .or_else(|| c.scenario.as_deref().and_then(Queue::of_scenario)),
            scenario: c.scenario.clone(),
            confidence: c.confidence,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Prompts playing / waiting for the caller at a listening node.
    Listening,
    /// A transfer was asked for.
    Transferring,
    Done,
}

/// The caller's answer to a yes/no question.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Yes,
    No { rest: String },
    Other,
}

/// One call's dialog state.
pub struct Session {
    flows: Arc<FlowSet>,
    caller: CallerInfo,
    node: NodeIdx,
    phase: Phase,
    actions: VecDeque<Action>,
    timers: [Option<Instant>; 3],
    last_now: Instant,
    /// Prompts queued and not reported finished: may each be interrupted?
    prompts: VecDeque<bool>,
    speech_active: bool,
    no_input: u32,
    no_match: u32,
    invalid: u32,
    digits: String,
    vars: BTreeMap<String, String>,
    transcript: Vec<String>,
    intent: Option<Intent>,
    pending: Option<Intent>,
    last_queue: Option<Queue>,
    outcome: Option<Outcome>,
    hops: u32,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("node", &self.current_node())
            .field("phase", &self.phase)
            .field("outcome", &self.outcome)
            .finish()
    }
}

impl Session {
    /// Starts a call at the main flow's entry; the first actions are queued at once.
    pub fn new(flows: Arc<FlowSet>, caller: CallerInfo, now: Instant) -> Session {
        let entry = flows.entry;
        let mut s = Session::blank(flows, caller, now);
        s.enter(entry, now);
        s
    }

    /// Restores a session at the snapshot's node (its prompt plays again). A node that no
    /// longer exists in this flow version resumes at the entry.
    pub fn resume(
        flows: Arc<FlowSet>,
        caller: CallerInfo,
        snapshot: Snapshot,
        now: Instant,
    ) -> Session {
        let node = flows.node(&snapshot.node).unwrap_or(flows.entry);
        let mut s = Session::blank(flows, caller, now);
        s.vars.extend(snapshot.vars);
        s.transcript = snapshot.transcript;
        if let Some(p) = s.vars.get("pending").filter(|p| !p.is_empty()) {
            s.pending = Some(Intent {
                queue: Queue::of_scenario(p),
                scenario: Some(p.clone()),
                confidence: 1.0,
            });
        }
        s.last_queue = s.vars.get("last_queue").and_then(|q| q.parse().ok());
        s.enter(node, now);
        s
    }

    fn blank(flows: Arc<FlowSet>, caller: CallerInfo, now: Instant) -> Session {
        let mut vars = BTreeMap::new();
        vars.insert("ani".to_string(), caller.ani.clone().unwrap_or_default());
        vars.insert(
            "dialect".to_string(),
            caller.dialect.clone().unwrap_or_default(),
        );
        vars.insert("call_id".to_string(), caller.call_id.clone());
        vars.insert(
            "age".to_string(),
            caller.age.map(|a| a.to_string()).unwrap_or_default(),
        );
        let entry = flows.entry;
        Session {
            flows,
            caller,
            node: entry,
            phase: Phase::Listening,
            actions: VecDeque::new(),
            timers: [None; 3],
            last_now: now,
            prompts: VecDeque::new(),
            speech_active: false,
            no_input: 0,
            no_match: 0,
            invalid: 0,
            digits: String::new(),
            vars,
            transcript: Vec::new(),
            intent: None,
            pending: None,
            last_queue: None,
            outcome: None,
            hops: 0,
        }
    }

    /// The current node, `flow.node`.
    pub fn current_node(&self) -> &str {
        &self.flows.nodes[self.node].id
    }

    /// The flow version this call runs on (it keeps it across hot reloads).
    pub fn flow_version(&self) -> u64 {
        self.flows.version
    }

    pub fn caller(&self) -> &CallerInfo {
        &self.caller
    }

    /// How the call left the dialog, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True once the dialog is over (transferred and confirmed, hung up).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Node, variables and transcript, for resuming later.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            node: self.current_node().to_string(),
            vars: self.vars.clone(),
            transcript: self.transcript.clone(),
            flow_version: self.flows.version,
        }
    }

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Session::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.iter().flatten().min().copied()
    }

    /// The earliest timer and its reason.
    pub fn next_timer(&self) -> Option<(Instant, Timer)> {
        TIMERS
            .iter()
            .filter_map(|&t| self.timers[t as usize].map(|d| (d, t)))
            .min_by_key(|(d, _)| *d)
    }

    fn clock(&mut self, now: Instant) -> Instant {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        for t in TIMERS {
            let due = self.timers[t as usize].is_some_and(|d| d <= now);
            if !due || self.phase == Phase::Done {
                continue;
            }
            self.timers[t as usize] = None;
            self.hops = 0;
            match t {
                Timer::Transfer => self.transfer_failed(now),
                Timer::MaxSpeech => {
                    self.speech_active = false;
                    if self.phase == Phase::Listening {
                        self.no_match_event(now);
                    }
                }
                Timer::NoInput => {
                    if self.phase == Phase::Listening {
                        self.no_input_event(now);
                    }
                }
            }
        }
    }

    /// Feeds one caller-side event.
    pub fn handle_event(&mut self, now: Instant, event: Event) {
        let now = self.clock(now);
        if self.phase == Phase::Done {
            return;
        }
        self.hops = 0;
        match event {
            Event::CallerHangup => {
                if self.outcome.is_none() {
                    self.outcome = Some(Outcome::Hangup { by_caller: true });
                }
                self.finish();
            }
            Event::TransferResult { ok } => {
                if self.phase == Phase::Transferring {
                    self.timers[Timer::Transfer as usize] = None;
                    if ok {
                        self.finish();
                    } else {
                        self.transfer_failed(now);
                    }
                }
            }
            _ if self.phase != Phase::Listening => {}
            Event::PromptFinished { .. } => {
                self.prompts.pop_front();
                self.arm_no_input(now);
            }
            Event::SpeechStarted | Event::BargeIn => {
                if matches!(event, Event::BargeIn) && self.prompts.front() == Some(&false) {
                    return; // a disclosure plays to the end
                }
                self.prompts.clear();
                self.speech_active = true;
                self.timers[Timer::NoInput as usize] = None;
                if let Some(l) = &self.flows.nodes[self.node].listen {
                    self.timers[Timer::MaxSpeech as usize] = Some(now + l.max_speech);
                }
            }
            Event::Utterance(c) => {
                self.input_arrived();
                self.utterance(now, c);
            }
            Event::Dtmf(ch) => {
                self.input_arrived();
                self.dtmf(now, ch);
            }
        }
    }

    fn input_arrived(&mut self) {
        self.prompts.clear();
        self.speech_active = false;
        self.timers[Timer::NoInput as usize] = None;
        self.timers[Timer::MaxSpeech as usize] = None;
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
        self.timers = [None; 3];
    }

    fn arm_no_input(&mut self, now: Instant) {
        if self.phase == Phase::Listening && self.prompts.is_empty() && !self.speech_active {
            if let Some(l) = &self.flows.nodes[self.node].listen {
                self.timers[Timer::NoInput as usize] = Some(now + l.no_input);
            }
        }
    }

    // ---- caller input

    fn utterance(&mut self, now: Instant, c: Classification) {
        let text = c.text.trim().to_string();
        let c = self.in_context(c);
        if !text.is_empty() {
            self.transcript.push(text.clone());
        }
        self.vars.insert("last_text".into(), text.clone());
        let intent = Intent::of(&c);
        if let Some(s) = &intent.scenario {
            self.vars.insert("last_scenario".into(), s.clone());
        }
        if let Some(q) = intent.queue {
            self.last_queue = Some(q);
            self.vars.insert("last_queue".into(), q.to_string());
        }
        self.intent = Some(intent);
        let speech = self.flows.nodes[self.node]
            .listen
            .as_ref()
            .is_some_and(|l| l.speech);
        if text.is_empty() || !speech {
            self.no_match_event(now);
            return;
        }
        let flows = self.flows.clone();
        let answer = self.yes_no(&text);
        let node = &flows.nodes[self.node];
        for t in flows.globals.iter().chain(&node.on) {
            if !self.guard_holds(t) {
                continue;
            }
            let matched = match &t.event {
                EventMatch::Intent {
                    queue,
                    scenario,
                    decisions,
                    min_confidence,
                } => {
                    c.confidence >= *min_confidence
                        && intent_matches(&c, queue, scenario, decisions)
                }
                EventMatch::Keywords(words) => {
                    let norm = normalise(&text);
                    words.iter().any(|w| norm.contains(normalise(w).as_str()))
                }
                EventMatch::Yes => answer == Answer::Yes,
                EventMatch::No => matches!(answer, Answer::No { .. }),
                EventMatch::Correction => match &answer {
                    Answer::No { rest } => match self.correction(rest) {
                        Some(i) => {
                            self.intent = Some(i);
                            true
                        }
                        None => false,
                    },
                    _ => false,
                },
                _ => false,
            };
            if matched {
                self.take(t, now);
                return;
            }
        }
        self.no_match_event(now);
    }

    /// An unsure utterance classified again with the node's topic prefixed.
    fn in_context(&self, c: Classification) -> Classification {
        let topic = self.flows.nodes[self.node]
            .listen
            .as_ref()
            .and_then(|l| l.context.as_deref());
        match topic {
            Some(topic) if c.decision != Decision::Route && !c.text.trim().is_empty() => {
                let again = self
                    .flows
                    .classifier
                    .classify(&format!("{topic}{}", c.text.trim()));
                let better = again.decision == Decision::Route
                    || (c.decision == Decision::Clarify && again.decision == Decision::Confirm);
                if again.scenario.is_some() && better {
                    Classification {
                        text: c.text,
                        ..again
                    }
                } else {
                    c
                }
            }
            _ => c,
        }
    }

    /// The classified remainder of a "no, …" answer, when it names a request.
    fn correction(&self, rest: &str) -> Option<Intent> {
        let rest = strip_lead(rest);
        if rest.chars().count() < 2 {
            return None;
        }
        let c = self.flows.classifier.classify(rest);
        (c.scenario.is_some()
            && c.decision != Decision::Clarify
            && c.confidence >= CORRECTION_MIN_CONFIDENCE)
            .then(|| Intent::of(&c))
    }

    fn yes_no(&self, text: &str) -> Answer {
        let norm = normalise(text);
        for (word, yes) in &self.flows.lexicon {
            if let Some(rest) = norm.strip_prefix(word.as_str()) {
                let rest = rest.trim_start_matches(word.as_str()).to_string();
                if !*yes {
                    return Answer::No { rest };
                }
                let filler_then_more = FILLER_YES.contains(&word.as_str())
                    && !rest.is_empty()
                    && !self
                        .flows
                        .lexicon
                        .iter()
                        .any(|(w, y)| *y && rest.starts_with(w.as_str()));
                if filler_then_more {
                    return Answer::Other;
                }
                // "是车险报案" to "您是要查询人寿理赔吗？": a new request, not a yes.
                if let Some(i) = self.correction(&rest) {
                    let pending_core = self
                        .pending
                        .as_ref()
                        .and_then(|p| p.scenario.as_deref())
                        .and_then(core_of);
                    let new_core = i.scenario.as_deref().and_then(core_of);
                    if new_core.is_some() && pending_core.is_some() && new_core != pending_core {
                        return Answer::No { rest };
                    }
                }
                return Answer::Yes;
            }
        }
        Answer::Other
    }

    fn dtmf(&mut self, now: Instant, ch: char) {
        let flows = self.flows.clone();
        let node = &flows.nodes[self.node];
        if let Some(c) = node.listen.as_ref().and_then(|l| l.collect.as_ref()) {
            if ch.is_ascii_digit() {
                self.digits.push(ch);
                if self.digits.len() >= c.max {
                    self.digits_done(now);
                } else {
                    self.arm_no_input(now);
                }
                return;
            }
            if Some(ch) == c.terminator {
                self.digits_done(now);
                return;
            }
        }
        let hit = flows
            .globals
            .iter()
            .chain(&node.on)
            .find(|t| t.event == EventMatch::Dtmf(ch) && self.guard_holds(t));
        match hit {
            Some(t) => self.take(t, now),
            None => self.no_match_event(now),
        }
    }

    fn digits_done(&mut self, now: Instant) {
        let flows = self.flows.clone();
        let node = &flows.nodes[self.node];
        let Some(c) = node.listen.as_ref().and_then(|l| l.collect.as_ref()) else {
            return;
        };
        let digits = std::mem::take(&mut self.digits);
        let ok = digits.len() >= c.min
            && digits.len() <= c.max
            && match c.validate {
                Some(DigitCheck::Luhn) => luhn(&digits),
                None => true,
            };
        if ok {
            self.vars.insert(c.var.clone(), digits);
            if let Some(t) = node
                .on
                .iter()
                .find(|t| t.event == EventMatch::Collected && self.guard_holds(t))
            {
                self.take(t, now);
                return;
            }
        }
        self.invalid += 1;
        let n = self.invalid;
        match self.nth(|e| matches!(e, EventMatch::Invalid(_)), n) {
            Some(t) => self.take(&t, now),
            None => self.no_match_event(now),
        }
    }

    fn no_input_event(&mut self, now: Instant) {
        let collecting = self.flows.nodes[self.node]
            .listen
            .as_ref()
            .and_then(|l| l.collect.as_ref())
            .map(|c| c.min);
        if let Some(min) = collecting {
            if !self.digits.is_empty() && self.digits.len() >= min {
                self.digits_done(now);
                return;
            }
            if !self.digits.is_empty() {
                self.digits.clear();
                self.invalid += 1;
                let n = self.invalid;
                if let Some(t) = self.nth(|e| matches!(e, EventMatch::Invalid(_)), n) {
                    self.take(&t, now);
                    return;
                }
            }
        }
        self.no_input += 1;
        let n = self.no_input;
        match self.nth(|e| matches!(e, EventMatch::NoInput(_)), n) {
            Some(t) => self.take(&t, now),
            None => self.stay(now),
        }
    }

    fn no_match_event(&mut self, now: Instant) {
        self.no_match += 1;
        let n = self.no_match;
        match self.nth(|e| matches!(e, EventMatch::NoMatch(_)), n) {
            Some(t) => self.take(&t, now),
            None => self.stay(now),
        }
    }

    /// The counted transition of a kind whose count is the largest ≤ `n` (guards holding).
    fn nth(&self, kind: impl Fn(&EventMatch) -> bool, n: u32) -> Option<CTransition> {
        let node = &self.flows.nodes[self.node];
        let count = |e: &EventMatch| match e {
            EventMatch::NoInput(k) | EventMatch::NoMatch(k) | EventMatch::Invalid(k) => *k,
            _ => 0,
        };
        self.flows
            .globals
            .iter()
            .chain(&node.on)
            .filter(|t| kind(&t.event) && count(&t.event) <= n && self.guard_holds(t))
            .max_by_key(|t| count(&t.event))
            .cloned()
    }

    fn guard_holds(&self, t: &CTransition) -> bool {
        let Some(g) = t.guard else { return true };
        let v = match g.cond {
            Cond::Senior => self.caller.senior,
            Cond::Dialect => self.caller.dialect.is_some(),
            Cond::Pending => self.pending.is_some(),
            Cond::QueueKnown => self.last_queue.is_some(),
        };
        v != g.negate
    }

    // ---- moving through the flow

    fn take(&mut self, t: &CTransition, now: Instant) {
        self.hops += 1;
        if self.hops > MAX_HOPS {
            tracing::error!(
                node = self.current_node(),
                "dialog ran {MAX_HOPS} steps without caller input; ending the call"
            );
            self.hang_up();
            return;
        }
        for (k, v) in &t.set {
            if k == "pending" && v.trim() == "$intent" {
                self.pending = self.intent.clone();
                let p = self
                    .pending
                    .as_ref()
                    .and_then(|p| p.scenario.clone())
                    .unwrap_or_default();
                self.vars.insert(k.clone(), p);
            } else {
                let value = if v.trim() == "$intent" {
                    self.intent
                        .as_ref()
                        .and_then(|i| i.scenario.clone())
                        .unwrap_or_default()
                } else {
                    self.render(v)
                };
                if k == "pending" {
                    self.pending = (!value.is_empty()).then(|| Intent {
                        queue: Queue::of_scenario(&value),
                        scenario: Some(value.clone()),
                        confidence: 1.0,
                    });
                }
                self.vars.insert(k.clone(), value);
            }
        }
        if let Some(intent) = &self.intent {
            self.vars
                .insert("intent".into(), intent.scenario.clone().unwrap_or_default());
        }
        if let Some(say) = &t.say {
            let p = self.prompt(say, PromptSource::Say);
            self.play(p);
        }
        if t.answer {
            let scenario = t
                .scenario
                .clone()
                .or_else(|| self.intent.as_ref().and_then(|i| i.scenario.clone()))
                .or_else(|| self.pending.as_ref().and_then(|i| i.scenario.clone()));
            if let Some(s) = scenario {
                if let Some(text) = self.flows.classifier.scenario_answer(&s) {
                    self.play(Prompt {
                        text,
                        rate: 1.0,
                        volume: 1.0,
                        wav: None,
                        barge_in: true,
                        disclosure: false,
                        source: PromptSource::Answer { scenario: s },
                    });
                }
            }
        }
        match t.step {
            Step::Transfer(target) => self.transfer(target, t.scenario.clone(), now),
            Step::Goto(j) => self.enter(j, now),
            Step::Repeat => self.enter(self.node, now),
            Step::Stay => self.stay(now),
            Step::Hangup => self.hang_up(),
        }
    }

    fn enter(&mut self, j: NodeIdx, now: Instant) {
        if j != self.node {
            self.no_input = 0;
            self.no_match = 0;
            self.invalid = 0;
        }
        self.node = j;
        self.digits.clear();
        self.phase = Phase::Listening;
        self.speech_active = false;
        self.timers[Timer::NoInput as usize] = None;
        self.timers[Timer::MaxSpeech as usize] = None;
        let flows = self.flows.clone();
        let node = &flows.nodes[j];
        for p in &node.prompts {
            let p = self.prompt(p, PromptSource::Node);
            self.play(p);
        }
        if node.listen.is_some() {
            self.listen(now);
            return;
        }
        self.hops += 1;
        if self.hops > MAX_HOPS {
            tracing::error!(
                node = node.id,
                "dialog ran {MAX_HOPS} steps without caller input; ending the call"
            );
            self.hang_up();
            return;
        }
        match node.then.iter().find(|t| self.guard_holds(t)) {
            Some(t) => self.take(t, now),
            None => self.hang_up(),
        }
    }

    fn stay(&mut self, now: Instant) {
        if self.phase == Phase::Listening {
            self.listen(now);
        }
    }

    fn listen(&mut self, now: Instant) {
        let node = &self.flows.nodes[self.node];
        let Some(l) = &node.listen else { return };
        let mut dtmf: Vec<char> = node
            .on
            .iter()
            .chain(&self.flows.globals)
            .filter_map(|t| match t.event {
                EventMatch::Dtmf(c) => Some(c),
                _ => None,
            })
            .collect();
        if let Some(c) = &l.collect {
            dtmf.extend('0'..='9');
            dtmf.extend(c.terminator);
        }
        dtmf.sort_unstable();
        dtmf.dedup();
        let spec = ListenSpec {
            node: node.id.clone(),
            grammar: l.grammar.clone(),
            no_input: l.no_input,
            end_silence: l.end_silence,
            max_speech: l.max_speech,
            barge_in: l.barge_in,
            speech: l.speech,
            dtmf,
            collect: l.collect.as_ref().map(|c| DigitCollection {
                min: c.min,
                max: c.max,
                terminator: c.terminator,
                luhn: c.validate == Some(DigitCheck::Luhn),
            }),
        };
        self.actions.push_back(Action::Listen(spec));
        self.arm_no_input(now);
    }

    fn play(&mut self, p: Prompt) {
        self.prompts.push_back(p.barge_in && !p.disclosure);
        self.timers[Timer::NoInput as usize] = None;
        self.actions.push_back(Action::Play(p));
    }

    fn prompt(&self, p: &PromptTpl, source: PromptSource) -> Prompt {
        let barge = self.flows.nodes[self.node]
            .listen
            .as_ref()
            .is_none_or(|l| l.barge_in);
        Prompt {
            text: self.render(&p.text),
            rate: p.rate,
            volume: p.volume,
            wav: p.wav.clone(),
            barge_in: p.barge_in && barge,
            disclosure: p.disclosure,
            source,
        }
    }

    fn transfer(&mut self, target: Target, scenario: Option<String>, now: Instant) {
        let fallback = |s: &Session| Intent {
            queue: Some(s.last_queue.unwrap_or(Queue::HumanAgent)),
            scenario: None,
            confidence: 0.0,
        };
        let (queue, scen, conf) = match target {
            Target::Queue(q) => {
                let from_intent = self
                    .intent
                    .as_ref()
                    .filter(|i| i.queue == Some(q))
                    .and_then(|i| i.scenario.clone().map(|s| (s, i.confidence)));
                match (scenario, from_intent) {
                    (Some(s), _) => (q, Some(s), None),
                    (None, Some((s, c))) => (q, Some(s), Some(c)),
                    (None, None) => (q, None, None),
                }
            }
            Target::Intent | Target::Pending => {
                let chosen = if target == Target::Pending {
                    self.pending.clone()
                } else {
                    None
                };
                let i = chosen
                    .or_else(|| self.intent.clone().filter(|i| i.queue.is_some()))
                    .unwrap_or_else(|| fallback(self));
                let q = i.queue.unwrap_or(Queue::HumanAgent);
                (
                    q,
                    scenario.or(i.scenario),
                    (i.confidence > 0.0).then_some(i.confidence),
                )
            }
        };
        let lane = if self.caller.senior || queue == Queue::ElderlyPriority {
            Lane::Elderly
        } else {
            Lane::Standard
        };
        let context = TransferContext {
            queue: Some(queue),
            scenario: scen.clone(),
            confidence: conf,
            transcript: self.transcript.join(" / "),
            call_id: self.caller.call_id.clone(),
            lane,
            dialect: self.caller.dialect.clone(),
        };
        self.outcome = Some(Outcome::Transferred {
            queue,
            scenario: scen,
            confidence: conf,
        });
        self.phase = Phase::Transferring;
        self.timers = [None; 3];
        self.timers[Timer::Transfer as usize] = Some(now + TRANSFER_GUARD);
        self.actions.push_back(Action::Transfer { queue, context });
    }

    fn transfer_failed(&mut self, now: Instant) {
        self.timers[Timer::Transfer as usize] = None;
        self.outcome = None;
        match self.flows.transfer_failed {
            Some(j) if self.phase == Phase::Transferring => {
                self.phase = Phase::Listening;
                self.enter(j, now);
            }
            _ => self.hang_up(),
        }
    }

    fn hang_up(&mut self) {
        self.outcome = Some(Outcome::Hangup { by_caller: false });
        self.actions.push_back(Action::Hangup);
        self.finish();
    }

    /// Fills `{var}` and `{var.name}` (catalogue name of the scenario held in `var`).
    fn render(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = &after[..end];
            let value = match inner.strip_suffix(".name") {
                Some(var) => {
                    let id = self.vars.get(var).cloned().unwrap_or_default();
                    self.flows.classifier.scenario_name(&id).unwrap_or(id)
                }
                None => self.vars.get(inner).cloned().unwrap_or_default(),
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

fn intent_matches(
    c: &Classification,
    queue: &Option<Queue>,
    scenario: &Option<String>,
    decisions: &[Decision],
) -> bool {
    if !decisions.is_empty() && !decisions.contains(&c.decision) {
        return false;
    }
    if matches!(c.decision, Decision::Route | Decision::Confirm) && c.scenario.is_none() {
        return false;
    }
    let cq = c
        .queue
        .or_else(|| c.scenario.as_deref().and_then(Queue::of_scenario));
    if let Some(q) = queue {
        if cq != Some(*q) {
            return false;
        }
    }
    if let Some(s) = scenario {
        let ok = c.scenario.as_deref().is_some_and(|cs| {
            cs == s
                || cs
                    .strip_prefix(s.as_str())
                    .is_some_and(|r| r.starts_with('.'))
        });
        if !ok {
            return false;
        }
    }
    true
}

/// Text for word matching: no whitespace or punctuation.
fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Drops a leading "是", "我要", "我想"… of a correction ("不是，是车险报案").
fn strip_lead(rest: &str) -> &str {
    let mut r = rest;
    for lead in ["是要", "是", "我是要", "我要", "我想", "要"] {
        if let Some(x) = r.strip_prefix(lead) {
            r = x;
            break;
        }
    }
    if r.chars().count() < 2 {
        rest
    } else {
        r
    }
}

/// The Luhn checksum (ISO/IEC 7812) of a card number.
pub fn luhn(digits: &str) -> bool {
    if digits.len() < 2 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialog::testing::FakeClassifier;
    use crate::nlu::IntentClassifier;
    use std::path::Path;

    fn flows() -> Arc<FlowSet> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
        let set = FlowSet::load(&dir, Arc::new(FakeClassifier::default()));
        match set {
            Ok(s) => Arc::new(s),
            Err(d) => panic!(
                "shipped flows invalid:\n{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    fn caller() -> CallerInfo {
        CallerInfo {
            call_id: "t1".into(),
            ..Default::default()
        }
    }

    /// Drains actions, answering every Play as finished; returns them.
    fn drain(s: &mut Session, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = s.poll_action() {
            if matches!(a, Action::Play(_)) {
                s.handle_event(
                    now,
                    Event::PromptFinished {
                        heard: Duration::from_secs(1),
                    },
                );
            }
            out.push(a);
        }
        out
    }

    fn say(s: &mut Session, now: Instant, text: &str) -> Vec<Action> {
        let c = FakeClassifier::default().classify(text);
        s.handle_event(now, Event::Utterance(c));
        drain(s, now)
    }

    fn transfer(actions: &[Action]) -> Option<(Queue, TransferContext)> {
        actions.iter().find_map(|a| match a {
            Action::Transfer { queue, context } => Some((*queue, context.clone())),
            _ => None,
        })
    }

    fn played(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Play(p) => Some(p.text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn greeting_plays_then_listens_and_routes_a_clear_request() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        let first = drain(&mut s, t0);
        assert!(matches!(&first[0], Action::Play(p) if p.disclosure && !p.barge_in));
        assert!(matches!(&first[1], Action::Play(p) if p.barge_in && p.text.contains("请按9")));
        assert!(
            matches!(&first[2], Action::Listen(l) if l.node == "main.greeting" && l.dtmf.contains(&'9'))
        );
        assert_eq!(s.current_node(), "main.greeting");
        let acts = say(&mut s, t0 + Duration::from_secs(2), "我想查一下信用卡账单");
        let (q, ctx) = transfer(&acts).expect("transfer");
        assert_eq!(q, Queue::CreditCard);
        assert_eq!(ctx.scenario.as_deref(), Some("credit_card.bill_query"));
        assert_eq!(ctx.transcript, "我想查一下信用卡账单");
        assert_eq!(ctx.call_id, "t1");
        assert_eq!(ctx.lane, Lane::Standard);
        assert!(!s.is_finished(), "waits for the transfer result");
        s.handle_event(
            t0 + Duration::from_secs(3),
            Event::TransferResult { ok: true },
        );
        assert!(s.is_finished());
        assert!(matches!(
            s.outcome(),
            Some(Outcome::Transferred {
                queue: Queue::CreditCard,
                ..
            })
        ));
    }

    #[test]
    fn no_input_timer_starts_after_the_prompts() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        let mut plays = 0;
        while let Some(a) = s.poll_action() {
            plays += usize::from(matches!(a, Action::Play(_)));
        }
        assert_eq!(plays, 2);
        assert_eq!(s.poll_timeout(), None, "no timer while prompts play");
        let t1 = t0 + Duration::from_secs(4);
        s.handle_event(
            t1,
            Event::PromptFinished {
                heard: Duration::from_secs(4),
            },
        );
        assert_eq!(s.poll_timeout(), None);
        let t2 = t0 + Duration::from_secs(9);
        s.handle_event(
            t2,
            Event::PromptFinished {
                heard: Duration::from_secs(5),
            },
        );
        assert_eq!(
            s.next_timer(),
            Some((t2 + Duration::from_secs(5), Timer::NoInput))
        );
        // Speech stops the no-input timer and starts the max-speech one.
        s.handle_event(t2 + Duration::from_secs(1), Event::SpeechStarted);
        assert_eq!(s.next_timer().map(|t| t.1), Some(Timer::MaxSpeech));
    }

    #[test]
    fn two_silences_lead_to_the_keypad_menu() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        let t1 = s.poll_timeout().expect("no-input armed");
        s.handle_timeout(t1);
        let a = drain(&mut s, t1);
        assert!(played(&a)[0].contains("请问有什么可以帮您"));
        assert_eq!(s.current_node(), "main.greeting");
        let t2 = s.poll_timeout().expect("armed again");
        assert_eq!(t2, t1 + Duration::from_secs(5));
        s.handle_timeout(t2);
        let a = drain(&mut s, t2);
        assert_eq!(s.current_node(), "main.menu");
        assert!(played(&a)[0].contains("信用卡请按1"));
        s.handle_event(t2, Event::Dtmf('4'));
        let (q, _) = transfer(&drain(&mut s, t2)).expect("transfer");
        assert_eq!(q, Queue::AutoClaim);
    }

    #[test]
    fn confirmation_yes_transfers_the_pending_scenario() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        let a = say(&mut s, t0, "那个账单的事");
        assert_eq!(s.current_node(), "main.confirm");
        assert_eq!(
            played(&a),
            vec!["请问您是要办理信用卡账单查询吗？".to_string()]
        );
        let a = say(&mut s, t0, "对的");
        let (q, ctx) = transfer(&a).expect("transfer");
        assert_eq!(
            (q, ctx.scenario.as_deref()),
            (Queue::CreditCard, Some("credit_card.bill_query"))
        );
        assert_eq!(ctx.transcript, "那个账单的事 / 对的");
    }

    #[test]
    fn correction_reclassifies_the_rest_of_the_answer() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "我要理赔");
        assert_eq!(s.current_node(), "main.confirm");
        let (q, ctx) = transfer(&say(&mut s, t0, "不是，是车险报案")).expect("transfer");
        assert_eq!(
            (q, ctx.scenario.as_deref()),
            (Queue::AutoClaim, Some("auto_claim.accident_report"))
        );
    }

    #[test]
    fn plain_no_asks_a_narrower_question() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "我要理赔");
        let a = say(&mut s, t0, "不是");
        assert_eq!(s.current_node(), "main.clarify");
        assert!(transfer(&a).is_none());
    }

    #[test]
    fn vague_request_naming_a_line_goes_to_its_subflow_with_context() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "信用卡那块儿想问问");
        assert_eq!(s.current_node(), "bank.credit_card");
        // "账单" alone is only a confirm; with the line's context it is a clear route.
        let (q, ctx) = transfer(&say(&mut s, t0, "账单")).expect("transfer");
        assert_eq!(
            (q, ctx.scenario.as_deref()),
            (Queue::CreditCard, Some("credit_card.bill_query"))
        );
    }

    #[test]
    fn vague_twice_then_keypad() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "我想咨询一下");
        assert_eq!(s.current_node(), "main.clarify");
        say(&mut s, t0, "我也说不好");
        assert_eq!(s.current_node(), "main.menu");
        s.handle_event(t0, Event::Dtmf('0'));
        let (q, ctx) = transfer(&drain(&mut s, t0)).expect("transfer");
        assert_eq!(
            (q, ctx.scenario.as_deref()),
            (Queue::HumanAgent, Some("human_agent.request"))
        );
    }

    #[test]
    fn senior_goes_to_the_elderly_lane_at_once_with_a_slow_prompt() {
        let t0 = Instant::now();
        let mut s = Session::new(
            flows(),
            CallerInfo {
                senior: true,
                ..caller()
            },
            t0,
        );
        let a = drain(&mut s, t0);
        assert!(matches!(&a[0], Action::Play(p) if p.rate < 1.0));
        let (q, ctx) = transfer(&a).expect("transfer");
        assert_eq!((q, ctx.lane), (Queue::ElderlyPriority, Lane::Elderly));
    }

    #[test]
    fn nine_at_the_greeting_is_the_elderly_lane() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        s.handle_event(t0, Event::Dtmf('9'));
        let (q, ctx) = transfer(&drain(&mut s, t0)).expect("transfer");
        assert_eq!((q, ctx.lane), (Queue::ElderlyPriority, Lane::Elderly));
    }

    #[test]
    fn dialect_caller_not_understood_goes_to_dialect_agents() {
        let t0 = Instant::now();
        let mut s = Session::new(
            flows(),
            CallerInfo {
                dialect: Some("yue".into()),
                ..caller()
            },
            t0,
        );
        drain(&mut s, t0);
        let (q, ctx) = transfer(&say(&mut s, t0, "唔该我想问下嗰样嘢")).expect("transfer");
        assert_eq!(
            (q, ctx.dialect.as_deref()),
            (Queue::DialectAgents, Some("yue"))
        );
    }

    #[test]
    fn dialect_caller_understood_is_routed_normally() {
        let t0 = Instant::now();
        let mut s = Session::new(
            flows(),
            CallerInfo {
                dialect: Some("yue".into()),
                ..caller()
            },
            t0,
        );
        drain(&mut s, t0);
        let (q, ctx) = transfer(&say(&mut s, t0, "我想睇下信用卡账单")).expect("transfer");
        assert_eq!(
            (q, ctx.dialect.as_deref()),
            (Queue::CreditCard, Some("yue"))
        );
    }

    #[test]
    fn human_agent_request_works_mid_call() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "我要理赔");
        assert_eq!(s.current_node(), "main.confirm");
        let (q, _) = transfer(&say(&mut s, t0, "不是，给我转人工")).expect("transfer");
        assert_eq!(q, Queue::HumanAgent);
    }

    #[test]
    fn disclosure_cannot_be_barged_into_but_the_greeting_can() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        while s.poll_action().is_some() {}
        s.handle_event(t0, Event::BargeIn);
        assert_eq!(s.prompts.len(), 2, "disclosure keeps playing");
        s.handle_event(
            t0,
            Event::PromptFinished {
                heard: Duration::from_secs(3),
            },
        );
        s.handle_event(t0, Event::BargeIn);
        assert!(s.prompts.is_empty(), "greeting stopped");
        assert_eq!(s.next_timer().map(|t| t.1), Some(Timer::MaxSpeech));
        let (q, _) = transfer(&say(&mut s, t0, "转人工")).expect("transfer");
        assert_eq!(q, Queue::HumanAgent);
    }

    #[test]
    fn failed_transfer_plays_the_fallback_and_hangs_up() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "查信用卡账单");
        s.handle_event(t0, Event::TransferResult { ok: false });
        let a = drain(&mut s, t0);
        let texts = played(&a);
        assert!(texts[0].contains("坐席暂时繁忙"));
        assert!(
            texts.iter().any(|t| t.contains("手机银行")),
            "self-service answer: {texts:?}"
        );
        assert!(matches!(a.last(), Some(Action::Hangup)));
        assert!(s.is_finished());
        assert_eq!(s.outcome(), Some(&Outcome::Hangup { by_caller: false }));
    }

    #[test]
    fn transfer_without_result_times_out_as_failed() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "查信用卡账单");
        assert_eq!(s.next_timer().map(|t| t.1), Some(Timer::Transfer));
        s.handle_timeout(t0 + TRANSFER_GUARD);
        assert_eq!(s.current_node(), "main.goodbye");
    }

    #[test]
    fn card_number_collection_checks_luhn() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        s.handle_timeout(t0 + Duration::from_secs(5));
        drain(&mut s, t0);
        s.handle_timeout(t0 + Duration::from_secs(10));
        drain(&mut s, t0);
        assert_eq!(s.current_node(), "main.menu");
        s.handle_event(t0, Event::Dtmf('#'));
        drain(&mut s, t0);
        assert_eq!(s.current_node(), "main.card_entry");
        for c in "4111111111111112#".chars() {
            s.handle_event(t0, Event::Dtmf(c));
        }
        let a = drain(&mut s, t0);
        assert!(played(&a)[0].contains("卡号有误"), "{a:?}");
        for c in "4111111111111111#".chars() {
            s.handle_event(t0, Event::Dtmf(c));
        }
        let (q, _) = transfer(&drain(&mut s, t0)).expect("transfer");
        assert_eq!(q, Queue::CreditCard);
        assert_eq!(
            s.snapshot().vars.get("card").map(String::as_str),
            Some("4111111111111111")
        );
    }

    #[test]
    fn snapshot_resumes_at_the_same_node() {
        let t0 = Instant::now();
        let f = flows();
        let mut s = Session::new(f.clone(), caller(), t0);
        drain(&mut s, t0);
        say(&mut s, t0, "账单");
        let snap = s.snapshot();
        assert_eq!(snap.node, "main.confirm");
        assert_eq!(
            snap.vars.get("pending").map(String::as_str),
            Some("credit_card.bill_query")
        );
        let json = serde_json::to_string(&snap).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        let mut r = Session::resume(f, caller(), back, t0);
        let a = drain(&mut r, t0);
        assert_eq!(
            played(&a),
            vec!["请问您是要办理信用卡账单查询吗？".to_string()]
        );
        let (q, ctx) = transfer(&say(&mut r, t0, "是的")).expect("transfer");
        assert_eq!(
            (q, ctx.scenario.as_deref()),
            (Queue::CreditCard, Some("credit_card.bill_query"))
        );
        assert_eq!(ctx.transcript, "账单 / 是的");
    }

    #[test]
    fn time_going_backwards_is_ignored() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        let due = s.poll_timeout().unwrap();
        s.handle_timeout(t0 - Duration::from_secs(50));
        assert_eq!(s.poll_timeout(), Some(due), "nothing fired");
        assert_eq!(s.current_node(), "main.greeting");
    }

    #[test]
    fn overlong_speech_counts_as_no_match() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        s.handle_event(t0, Event::SpeechStarted);
        s.handle_timeout(t0 + Duration::from_secs(15));
        let a = drain(&mut s, t0);
        assert!(played(&a)[0].contains("没有听清楚"), "{a:?}");
    }

    #[test]
    fn caller_hangup_ends_the_session() {
        let t0 = Instant::now();
        let mut s = Session::new(flows(), caller(), t0);
        drain(&mut s, t0);
        s.handle_event(t0, Event::CallerHangup);
        assert!(s.is_finished());
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.outcome(), Some(&Outcome::Hangup { by_caller: true }));
    }

    #[test]
    fn luhn_checks() {
        assert!(luhn("4111111111111111"));
        assert!(luhn("79927398713"));
        assert!(!luhn("79927398710"));
        assert!(!luhn("4111111111111112"));
        assert!(!luhn("41a1"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use crate::dialog::testing::FakeClassifier;
    use crate::nlu::IntentClassifier;
    use proptest::prelude::*;
    use std::path::Path;
    use std::sync::OnceLock;

    fn flows() -> Arc<FlowSet> {
        static F: OnceLock<Arc<FlowSet>> = OnceLock::new();
        F.get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows");
            Arc::new(
                FlowSet::load(&dir, Arc::new(FakeClassifier::default())).expect("shipped flows"),
            )
        })
        .clone()
    }

    const SAYINGS: [&str; 10] = [
        "查信用卡账单",
        "账单",
        "理赔",
        "对",
        "不是",
        "不是，是车险报案",
        "信用卡",
        "今天天气",
        "",
        "转人工",
    ];

    #[derive(Debug, Clone)]
    enum Step {
        Say(usize),
        Key(char),
        Wait(u64),
        Barge,
        Speech,
        Finished,
        TransferFails,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..SAYINGS.len()).prop_map(Step::Say),
            prop::sample::select(vec!['0', '1', '5', '8', '9', '*', '#', '3']).prop_map(Step::Key),
            (0u64..40).prop_map(Step::Wait),
            Just(Step::Barge),
            Just(Step::Speech),
            Just(Step::Finished),
            Just(Step::TransferFails),
        ]
    }

    proptest! {
        /// Whatever the caller does, the session never panics, never spins (every drain
        /// ends), stays silent once finished, and pure silence ends every call.
        #[test]
        fn any_caller_behaviour_is_handled(steps in prop::collection::vec(step(), 0..25), senior in any::<bool>(), dialect in any::<bool>()) {
            let caller = CallerInfo {
                senior,
                dialect: dialect.then(|| "yue".to_string()),
                call_id: "p".into(),
                ..Default::default()
            };
            let fake = FakeClassifier::default();
            let mut now = Instant::now();
            let mut s = Session::new(flows(), caller, now);
            let drain = |s: &mut Session, now: Instant| {
                let mut n = 0;
                while let Some(a) = s.poll_action() {
                    n += 1;
                    assert!(n < 200, "runaway actions");
                    if let Action::Play(_) = a { s.handle_event(now, Event::PromptFinished { heard: Duration::ZERO }); }
                }
            };
            drain(&mut s, now);
            for st in steps {
                match st {
                    Step::Say(i) => s.handle_event(now, Event::Utterance(fake.classify(SAYINGS[i]))),
                    Step::Key(c) => s.handle_event(now, Event::Dtmf(c)),
                    Step::Wait(secs) => {
                        let end = now + Duration::from_secs(secs);
                        while let Some(t) = s.poll_timeout() {
                            if t > end { break; }
                            now = t;
                            s.handle_timeout(now);
                            drain(&mut s, now);
                        }
                        now = end;
                    }
                    Step::Barge => s.handle_event(now, Event::BargeIn),
                    Step::Speech => s.handle_event(now, Event::SpeechStarted),
                    Step::Finished => s.handle_event(now, Event::TransferResult { ok: true }),
                    Step::TransferFails => s.handle_event(now, Event::TransferResult { ok: false }),
                }
                drain(&mut s, now);
                if s.is_finished() {
                    prop_assert!(s.poll_timeout().is_none());
                    prop_assert!(s.outcome().is_some());
                }
            }
            // Silence from here on: the call must end (transfer or hang-up) within 2 minutes.
            let limit = now + Duration::from_secs(120);
            while !s.is_finished() {
                match s.poll_timeout() {
                    Some(t) if t <= limit => {
                        now = t;
                        s.handle_timeout(now);
                        while let Some(a) = s.poll_action() {
                            match a {
                                Action::Play(_) => s.handle_event(now, Event::PromptFinished { heard: Duration::ZERO }),
                                Action::Transfer { .. } => s.handle_event(now, Event::TransferResult { ok: true }),
                                _ => {}
                            }
                        }
                    }
                    other => prop_assert!(false, "call stalls at {} (next timeout {:?})", s.current_node(), other.map(|t| t - now)),
                }
            }
        }
    }
}
