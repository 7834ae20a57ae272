//! Loading and validating a flows folder into the compiled [`FlowSet`] the runtime walks.
//!
//! Every problem is a [`Diagnostic`] (`file:line:col: message`): YAML syntax and schema
//! errors (through [`crate::yaml`]), unknown node/subflow references, unknown queues,
//! scenario ids missing from the catalogue, duplicate DTMF keys, a `listen` without
//! no-input/no-match handling, unknown prompt variables, and — on the graph of the whole
//! flow set ([`super::graph`], petgraph) — unreachable nodes, dead ends that never end the
//! call, and loops that can spin without caller input.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::schema::{self, Collect, FlowFile, PromptSpec, Transition};
use crate::nlu::{Decision, IntentClassifier};
use crate::routing::Queue;
use crate::yaml::{self, Diagnostic, SourcePos};

/// Index of a node in [`FlowSet::nodes`].
pub type NodeIdx = usize;

/// The name of the flow every call starts in.
pub const MAIN_FLOW: &str = "main";

/// Variables every session has (besides those set by `set:` and digit collection).
pub const BUILTIN_VARS: [&str; 10] = [
    "ani",
    "dialect",
    "digits",
    "last_text",
    "last_scenario",
    "last_queue",
    "pending",
    "intent",
    "call_id",
    "age",
];

const DEFAULT_YES: [&str; 16] = [
    "对", "是", "是的", "对的", "没错", "嗯", "好", "好的", "可以", "行", "要", "确认", "正确",
    "对头", "系", "啱",
];
const DEFAULT_NO: [&str; 12] = [
    "不", "不是", "不对", "错了", "没有", "不要", "不用", "否", "唔系", "唔啱", "莫得", "勿是",
];

static VERSION: AtomicU64 = AtomicU64::new(1);

/// A compiled, validated set of flows plus the classifier they were checked against.
/// Immutable: hot reload swaps in a new one; sessions keep the `Arc` they started with.
pub struct FlowSet {
    /// Increases with every successful load in this process.
    pub version: u64,
    pub dir: PathBuf,
    pub nodes: Vec<CNode>,
    pub(crate) by_id: HashMap<String, NodeIdx>,
    pub entry: NodeIdx,
    pub globals: Vec<CTransition>,
    /// Confirmation words, longest first: (word, is_yes).
    pub lexicon: Vec<(String, bool)>,
    pub transfer_failed: Option<NodeIdx>,
    pub classifier: Arc<dyn IntentClassifier>,
}

impl std::fmt::Debug for FlowSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowSet")
            .field("version", &self.version)
            .field("dir", &self.dir)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// A compiled node.
#[derive(Debug, Clone)]
pub struct CNode {
    /// `flow.node`.
    pub id: String,
    pub flow: String,
    pub pos: SourcePos,
    pub prompts: Vec<PromptTpl>,
    pub listen: Option<ListenCfg>,
    /// Event transitions (node `on` then included lists), in matching order.
    pub on: Vec<CTransition>,
    /// Immediate transitions of a non-listening node.
    pub then: Vec<CTransition>,
}

/// A prompt template (variables not yet filled in).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptTpl {
    pub text: String,
    pub rate: f32,
    pub volume: f32,
    pub wav: Option<PathBuf>,
    pub barge_in: bool,
    pub disclosure: bool,
}

/// A compiled `listen` block.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenCfg {
    pub grammar: Option<String>,
    pub no_input: Duration,
    pub end_silence: Duration,
    pub max_speech: Duration,
    pub barge_in: bool,
    pub speech: bool,
    pub collect: Option<Collect>,
    /// Words prefixed to an unsure utterance to classify it again (a business line's name).
    pub context: Option<String>,
}

/// A compiled transition.
#[derive(Debug, Clone)]
pub struct CTransition {
    pub event: EventMatch,
    pub guard: Option<Guard>,
    pub set: Vec<(String, String)>,
    pub say: Option<PromptTpl>,
    pub answer: bool,
    pub scenario: Option<String>,
    pub step: Step,
    pub pos: SourcePos,
}

/// What a transition reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum EventMatch {
    /// `then` transitions: taken on entry.
    Always,
    Intent {
        queue: Option<Queue>,
        scenario: Option<String>,
        decisions: Vec<Decision>,
        min_confidence: f32,
    },
    Keywords(Vec<String>),
    Dtmf(char),
    NoInput(u32),
    NoMatch(u32),
    Yes,
    No,
    Correction,
    Collected,
    Invalid(u32),
}

/// A transition guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub cond: Cond,
    pub negate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// Age ≥ 65 or ANI on the senior list.
    Senior,
    /// ANI in a dialect area.
    Dialect,
    /// A scenario is waiting for confirmation.
    Pending,
    /// Some utterance of the call named a business line.
    QueueKnown,
}

/// Where a transition goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Transfer(Target),
    Goto(NodeIdx),
    Repeat,
    Stay,
    Hangup,
}

/// Transfer destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Queue(Queue),
    /// The classified request (this utterance's queue/scenario, else the last known queue).
    Intent,
    /// The scenario waiting for confirmation.
    Pending,
}

impl FlowSet {
    /// Loads every `*.yaml` in `dir` (not `catalog/`), validating against `classifier`.
    pub fn load(
        dir: &Path,
        classifier: Arc<dyn IntentClassifier>,
    ) -> Result<FlowSet, Vec<Diagnostic>> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect(),
            Err(e) => {
                return Err(vec![Diagnostic::new(
                    dir,
                    1,
                    1,
                    format!("cannot read flows folder: {e}"),
                )])
            }
        };
        files.sort();
        let mut parsed = Vec::new();
        let mut diags = Vec::new();
        for f in files {
            match yaml::load::<FlowFile>(&f) {
                Ok(ff) => parsed.push((f, ff)),
                Err(d) => diags.push(d),
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        compile(dir, parsed, classifier)
    }

    /// Node index by `flow.node` id.
    pub fn node(&self, id: &str) -> Option<NodeIdx> {
        self.by_id.get(id).copied()
    }
}

fn pos<T>(file: &Path, s: &Spanned<T>) -> SourcePos {
    yaml::pos_of(file, s)
}

fn diag(p: &SourcePos, msg: impl Into<String>) -> Diagnostic {
    Diagnostic {
        pos: p.clone(),
        message: msg.into(),
    }
}

fn compile(
    dir: &Path,
    parsed: Vec<(PathBuf, FlowFile)>,
    classifier: Arc<dyn IntentClassifier>,
) -> Result<FlowSet, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    // Pass 1: flow names, node ids.
    let mut flow_names: BTreeMap<String, SourcePos> = BTreeMap::new();
    let mut by_id: HashMap<String, NodeIdx> = HashMap::new();
    let mut flow_nodes: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut node_list: Vec<(String, String, SourcePos)> = Vec::new();
    for (file, ff) in &parsed {
        let name = ff.flow.value.clone();
        let p = pos(file, &ff.flow);
        if !valid_ident(&name) {
            diags.push(diag(
                &p,
                format!("flow name `{name}` must be letters, digits and `_`"),
            ));
        }
        if let Some(prev) = flow_names.get(&name) {
            diags.push(diag(
                &p,
                format!("duplicate flow name `{name}` (first at {prev})"),
            ));
            continue;
        }
        flow_names.insert(name.clone(), p);
        let set = flow_nodes.entry(name.clone()).or_default();
        for (k, _) in &ff.nodes.0 {
            let id = format!("{name}.{}", k.value);
            if !valid_ident(&k.value) {
                diags.push(diag(
                    &pos(file, k),
                    format!("node id `{}` must be letters, digits and `_`", k.value),
                ));
            }
            set.insert(k.value.clone());
            by_id.insert(id.clone(), node_list.len());
            node_list.push((id, name.clone(), pos(file, k)));
        }
    }
    let Some(main) = parsed.iter().find(|(_, f)| f.flow.value == MAIN_FLOW) else {
        let p = SourcePos {
            file: dir.to_path_buf(),
            line: 1,
            column: 1,
        };
        diags.push(diag(
            &p,
            "no flow named `main` (the flow every call starts in)",
        ));
        return Err(diags);
    };

    let resolver = Resolver {
        by_id: &by_id,
        flow_nodes: &flow_nodes,
        classifier: classifier.as_ref(),
    };

    // Main-only settings.
    let (main_file, main_flow) = main;
    let entry = match &main_flow.entry {
        Some(e) => resolver.node_ref(main_file, MAIN_FLOW, e, &mut diags),
        None => {
            diags.push(diag(
                &pos(main_file, &main_flow.flow),
                "the main flow needs `entry: <node>`",
            ));
            None
        }
    };
    let transfer_failed = main_flow
        .on_transfer_failed
        .as_ref()
        .and_then(|t| resolver.node_ref(main_file, MAIN_FLOW, t, &mut diags));
    let mut lexicon: Vec<(String, bool)> = match &main_flow.lexicon {
        Some(l) => l
            .yes
            .iter()
            .map(|w| (w.clone(), true))
            .chain(l.no.iter().map(|w| (w.clone(), false)))
            .collect(),
        None => DEFAULT_YES
            .iter()
            .map(|w| (w.to_string(), true))
            .chain(DEFAULT_NO.iter().map(|w| (w.to_string(), false)))
            .collect(),
    };
    lexicon.sort_by(|a, b| {
        b.0.chars()
            .count()
            .cmp(&a.0.chars().count())
            .then(a.0.cmp(&b.0))
    });
    let mut globals = Vec::new();
    for t in &main_flow.globals {
        if let Some(ct) = resolver.transition(main_file, MAIN_FLOW, t, Kind::On, &mut diags) {
            globals.push(ct);
        }
    }
    for (file, ff) in &parsed {
        if ff.flow.value != MAIN_FLOW {
            for (what, present) in [
                ("globals", !ff.globals.is_empty()),
                ("lexicon", ff.lexicon.is_some()),
                ("on_transfer_failed", ff.on_transfer_failed.is_some()),
            ] {
                if present {
                    diags.push(diag(
                        &pos(file, &ff.flow),
                        format!("`{what}` belongs in the main flow only"),
                    ));
                }
            }
            if let Some(e) = &ff.entry {
                resolver.node_ref(file, &ff.flow.value, e, &mut diags);
            }
        }
    }

    // Pass 2: nodes.
    let mut nodes: Vec<CNode> = Vec::with_capacity(node_list.len());
    let mut known_vars: BTreeSet<String> = BUILTIN_VARS.iter().map(|s| s.to_string()).collect();
    for (_, ff) in &parsed {
        for t in ff.globals.iter().chain(ff.shared.values().flatten()) {
            known_vars.extend(t.value.set.keys().cloned());
        }
        for (_, n) in &ff.nodes.0 {
            for t in n.on.iter().chain(&n.then) {
                known_vars.extend(t.value.set.keys().cloned());
            }
            if let Some(c) = n.listen.as_ref().and_then(|l| l.value.collect.as_ref()) {
                known_vars.insert(c.var.clone());
            }
        }
    }
    // Shared transition lists of every flow, by `flow.name`.
    let mut shared: BTreeMap<String, Vec<CTransition>> = BTreeMap::new();
    for (file, ff) in &parsed {
        let flow = ff.flow.value.as_str();
        for (name, list) in &ff.shared {
            let v = list
                .iter()
                .filter_map(|t| resolver.transition(file, flow, t, Kind::On, &mut diags))
                .collect();
            shared.insert(format!("{flow}.{name}"), v);
        }
    }
    for (file, ff) in &parsed {
        let flow = ff.flow.value.as_str();
        if flow_names.get(flow).is_some_and(|p| p.file != *file) {
            continue; // duplicate flow, already reported
        }
        for (key, n) in &ff.nodes.0 {
            let id = format!("{flow}.{}", key.value);
            let npos = pos(file, key);
            let defaults = ff.defaults.clone().unwrap_or_default();
            let mut prompts = Vec::new();
            for p in n.prompt.iter().chain(&n.prompts) {
                prompts.push(prompt_tpl(dir, p));
            }
            for p in &prompts {
                check_template(&p.text, &known_vars, &npos, &mut diags);
            }
            let listen = n.listen.as_ref().map(|l| {
                let lv = &l.value;
                ListenCfg {
                    grammar: lv.grammar.clone(),
                    no_input: secs(lv.no_input.or(defaults.no_input).unwrap_or(5.0)),
                    end_silence: secs(lv.end_silence.or(defaults.end_silence).unwrap_or(0.8)),
                    max_speech: secs(lv.max_speech.or(defaults.max_speech).unwrap_or(15.0)),
                    barge_in: lv.barge_in.or(defaults.barge_in).unwrap_or(true),
                    speech: lv.speech.unwrap_or(true),
                    collect: lv.collect.clone(),
                    context: lv.context.clone(),
                }
            });
            if let (Some(l), Some(sl)) = (&listen, &n.listen) {
                for (name, d) in [
                    ("no_input", l.no_input),
                    ("end_silence", l.end_silence),
                    ("max_speech", l.max_speech),
                ] {
                    if d.is_zero() {
                        diags.push(diag(
                            &pos(file, sl),
                            format!("listen: `{name}` must be a positive number of seconds"),
                        ));
                    }
                }
                if let Some(c) = &l.collect {
                    if c.min == 0 || c.min > c.max {
                        diags.push(diag(&pos(file, sl), "collect: need 0 < min ≤ max"));
                    }
                }
            }
            let mut on = Vec::new();
            let mut then = Vec::new();
            for t in &n.on {
                if let Some(inc) = &t.value.include {
                    let key = if inc.value.contains('.') {
                        inc.value.clone()
                    } else {
                        format!("{flow}.{}", inc.value)
                    };
                    let bare = Transition {
                        include: None,
                        ..t.value.clone()
                    };
                    if !is_empty_transition(&bare) {
                        diags.push(diag(
                            &pos(file, t),
                            "an `include:` item splices a shared list in; it takes no other keys",
                        ));
                    }
                    match shared.get(&key) {
                        Some(list) => on.extend(list.iter().cloned()),
                        None => diags.push(diag(
                            &pos(file, inc),
                            format!("unknown shared transition list `{}` (flow `{flow}`; another flow's: `flow.name`)", inc.value),
                        )),
                    }
                    continue;
                }
                if let Some(ct) = resolver.transition(file, flow, t, Kind::On, &mut diags) {
                    on.push(ct);
                }
            }
            for inc in &n.include {
                let key = if inc.value.contains('.') {
                    inc.value.clone()
                } else {
                    format!("{flow}.{}", inc.value)
                };
                match shared.get(&key) {
                    Some(list) => on.extend(list.iter().cloned()),
                    None => diags.push(diag(
                        &pos(file, inc),
                        format!("unknown shared transition list `{}` (flow `{flow}`; another flow's: `flow.name`)", inc.value),
                    )),
                }
            }
            for t in &n.then {
                if let Some(ct) = resolver.transition(file, flow, t, Kind::Then, &mut diags) {
                    then.push(ct);
                }
            }
            for t in on.iter().chain(&then) {
                if let Some(s) = &t.say {
                    check_template(&s.text, &known_vars, &t.pos, &mut diags);
                }
                for (_, v) in &t.set {
                    check_template(v, &known_vars, &t.pos, &mut diags);
                }
            }
            check_node_shape(
                &id,
                &npos,
                n,
                listen.as_ref(),
                &on,
                &then,
                &globals,
                &mut diags,
            );
            nodes.push(CNode {
                id,
                flow: flow.to_string(),
                pos: npos,
                prompts,
                listen,
                on,
                then,
            });
        }
    }
    let Some(entry) = entry else {
        return Err(diags);
    };
    let set = FlowSet {
        version: 0,
        dir: dir.to_path_buf(),
        nodes,
        by_id,
        entry,
        globals,
        lexicon,
        transfer_failed,
        classifier,
    };
    if diags.is_empty() {
        diags.extend(super::graph::check(&set));
    }
    if diags.is_empty() {
        Ok(FlowSet {
            version: VERSION.fetch_add(1, Ordering::Relaxed),
            ..set
        })
    } else {
        diags.sort_by(|a, b| {
            (a.pos.file.as_path(), a.pos.line, a.pos.column).cmp(&(
                b.pos.file.as_path(),
                b.pos.line,
                b.pos.column,
            ))
        });
        diags.dedup();
        Err(diags)
    }
}

fn is_empty_transition(t: &Transition) -> bool {
    t.intent.is_none()
        && t.keywords.is_none()
        && t.dtmf.is_none()
        && t.no_input.is_none()
        && t.no_match.is_none()
        && t.yes.is_none()
        && t.no.is_none()
        && t.correction.is_none()
        && t.collected.is_none()
        && t.invalid.is_none()
        && t.guard.is_none()
        && t.set.is_empty()
        && t.say.is_none()
        && !t.answer
        && t.scenario.is_none()
        && t.transfer.is_none()
        && t.goto.is_none()
        && !t.repeat
        && !t.stay
        && !t.hangup
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(3600.0))
    } else {
        Duration::ZERO
    }
}

fn prompt_tpl(dir: &Path, p: &PromptSpec) -> PromptTpl {
    match p {
        PromptSpec::Text(t) => PromptTpl {
            text: t.trim().to_string(),
            rate: 1.0,
            volume: 1.0,
            wav: None,
            barge_in: true,
            disclosure: false,
        },
        PromptSpec::Full(f) => PromptTpl {
            text: f.text.trim().to_string(),
            rate: f.rate.unwrap_or(1.0),
            volume: f.volume.unwrap_or(1.0),
            wav: f.wav.as_ref().map(|w| dir.join(w)),
            barge_in: f.barge_in.unwrap_or(!f.disclosure) && !f.disclosure,
            disclosure: f.disclosure,
        },
    }
}

/// The `{var}` / `{var.name}` references of a template.
pub(crate) fn template_vars(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let inner = &after[..end];
                out.push(inner.strip_suffix(".name").unwrap_or(inner));
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

fn check_template(
    text: &str,
    known: &BTreeSet<String>,
    p: &SourcePos,
    diags: &mut Vec<Diagnostic>,
) {
    for v in template_vars(text) {
        if !known.contains(v) {
            diags.push(diag(p, format!("unknown variable `{{{v}}}` in `{text}`")));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    On,
    Then,
}

struct Resolver<'a> {
    by_id: &'a HashMap<String, NodeIdx>,
    flow_nodes: &'a HashMap<String, BTreeSet<String>>,
    classifier: &'a dyn IntentClassifier,
}

impl Resolver<'_> {
    fn node_ref(
        &self,
        file: &Path,
        flow: &str,
        r: &Spanned<String>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<NodeIdx> {
        let p = pos(file, r);
        let (f, n) = match r.value.split_once('.') {
            Some((f, n)) => (f, n),
            None => (flow, r.value.as_str()),
        };
        match self.flow_nodes.get(f) {
            None => {
                diags.push(diag(&p, format!("unknown subflow `{f}` in `{}`", r.value)));
                None
            }
            Some(ns) if !ns.contains(n) => {
                let msg = if f == flow {
                    format!("unknown node `{n}` in flow `{f}`")
                } else {
                    format!("unknown node `{n}` in subflow `{f}`")
                };
                diags.push(diag(&p, msg));
                None
            }
            Some(_) => self.by_id.get(&format!("{f}.{n}")).copied(),
        }
    }

    fn scenario(
        &self,
        file: &Path,
        s: &Spanned<String>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        if self.classifier.has_scenario(&s.value) {
            Some(s.value.clone())
        } else {
            diags.push(diag(
                &pos(file, s),
                format!("scenario `{}` is not in the catalogue", s.value),
            ));
            None
        }
    }

    fn transition(
        &self,
        file: &Path,
        flow: &str,
        t: &Spanned<Transition>,
        kind: Kind,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<CTransition> {
        let tp = pos(file, t);
        let tv = &t.value;
        let before = diags.len();
        if tv.include.is_some() {
            diags.push(diag(&tp, "`include:` items belong in a node's `on:` list"));
        }
        let mut events = Vec::new();
        if let Some(i) = &tv.intent {
            let queue = i
                .queue
                .as_ref()
                .and_then(|q| match q.value.parse::<Queue>() {
                    Ok(q) => Some(q),
                    Err(e) => {
                        diags.push(diag(&pos(file, q), e.to_string()));
                        None
                    }
                });
            let scenario = i
                .scenario
                .as_ref()
                .and_then(|s| self.scenario(file, s, diags));
            let decisions = i.decision.as_ref().map(|d| d.to_vec()).unwrap_or_default();
            let min_confidence = i.min_confidence.unwrap_or(0.0);
            if !(0.0..=1.0).contains(&min_confidence) {
                diags.push(diag(&tp, "intent: `min_confidence` is between 0 and 1"));
            }
            events.push(EventMatch::Intent {
                queue,
                scenario,
                decisions,
                min_confidence,
            });
        }
        if let Some(k) = &tv.keywords {
            if k.is_empty() || k.iter().any(|w| w.trim().is_empty()) {
                diags.push(diag(&tp, "keywords: need at least one non-empty word"));
            }
            events.push(EventMatch::Keywords(
                k.iter().map(|w| w.trim().to_string()).collect(),
            ));
        }
        if let Some(d) = &tv.dtmf {
            let mut cs = d.value.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if c.is_ascii_digit() || c == '*' || c == '#' => {
                    events.push(EventMatch::Dtmf(c))
                }
                _ => diags.push(diag(
                    &pos(file, d),
                    format!("dtmf key `{}` must be one of 0-9, * or #", d.value),
                )),
            }
        }
        for (n, mk) in [
            (tv.no_input, EventMatch::NoInput as fn(u32) -> EventMatch),
            (tv.no_match, EventMatch::NoMatch),
            (tv.invalid, EventMatch::Invalid),
        ] {
            if let Some(n) = n {
                if n == 0 {
                    diags.push(diag(
                        &tp,
                        "counts start at 1 (the first no-input/no-match/invalid entry)",
                    ));
                }
                events.push(mk(n.max(1)));
            }
        }
        for (flag, ev) in [
            (tv.yes, EventMatch::Yes),
            (tv.no, EventMatch::No),
            (tv.correction, EventMatch::Correction),
            (tv.collected, EventMatch::Collected),
        ] {
            match flag {
                Some(true) => events.push(ev),
                Some(false) => diags.push(diag(
                    &tp,
                    "an event flag is written `true` (leave it out otherwise)",
                )),
                None => {}
            }
        }
        let event = match (kind, events.len()) {
            (Kind::Then, 0) => EventMatch::Always,
            (Kind::Then, _) => {
                diags.push(diag(&tp, "a `then` transition is taken at once: it matches no event (use `if:` to guard it)"));
                EventMatch::Always
            }
            (Kind::On, 1) => events.remove(0),
            (Kind::On, 0) => {
                diags.push(diag(&tp, "transition matches no event: give one of intent, keywords, dtmf, no_input, no_match, yes, no, correction, collected, invalid"));
                EventMatch::Always
            }
            (Kind::On, _) => {
                diags.push(diag(
                    &tp,
                    "transition matches more than one event kind; split it",
                ));
                EventMatch::Always
            }
        };
        let guard = tv.guard.as_ref().and_then(|g| {
            let (negate, name) = match g.value.trim().strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, g.value.trim()),
            };
            let cond = match name {
                "senior" => Cond::Senior,
                "dialect" => Cond::Dialect,
                "pending" => Cond::Pending,
                "queue_known" => Cond::QueueKnown,
                other => {
                    diags.push(diag(
                        &pos(file, g),
                        format!("unknown condition `{other}` (known: senior, dialect, pending, queue_known; `!` negates)"),
                    ));
                    return None;
                }
            };
            Some(Guard { cond, negate })
        });
        let scenario = tv
            .scenario
            .as_ref()
            .and_then(|s| self.scenario(file, s, diags));
        let mut steps = Vec::new();
        if let Some(tr) = &tv.transfer {
            let target = match tr.value.as_str() {
                "$intent" => Some(Target::Intent),
                "$pending" => Some(Target::Pending),
                q => match q.parse::<Queue>() {
                    Ok(q) => Some(Target::Queue(q)),
                    Err(e) => {
                        diags.push(diag(
                            &pos(file, tr),
                            format!("transfer to an {e}; or `$intent` / `$pending`"),
                        ));
                        None
                    }
                },
            };
            steps.push(target.map(Step::Transfer));
        }
        if let Some(g) = &tv.goto {
            steps.push(self.node_ref(file, flow, g, diags).map(Step::Goto));
        }
        if tv.repeat {
            steps.push(Some(Step::Repeat));
        }
        if tv.stay {
            steps.push(Some(Step::Stay));
        }
        if tv.hangup {
            steps.push(Some(Step::Hangup));
        }
        if kind == Kind::Then && (tv.repeat || tv.stay) {
            diags.push(diag(
                &tp,
                "`repeat`/`stay` need a listening node (`on:`), here the call would spin",
            ));
        }
        let step = match steps.len() {
            0 => {
                diags.push(diag(
                    &tp,
                    "transition goes nowhere: give one of transfer, goto, repeat, stay, hangup",
                ));
                None
            }
            1 => steps.remove(0),
            _ => {
                diags.push(diag(
                    &tp,
                    "transition has more than one of transfer, goto, repeat, stay, hangup",
                ));
                None
            }
        };
        if diags.len() > before {
            return None;
        }
        Some(CTransition {
            event,
            guard,
            set: tv.set.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            say: tv.say.as_ref().map(|p| prompt_tpl(Path::new(""), p)),
            answer: tv.answer,
            scenario,
            step: step?,
            pos: tp,
        })
    }
}

#[allow(clippy::too_many_arguments)]
fn check_node_shape(
    id: &str,
    p: &SourcePos,
    n: &schema::Node,
    listen: Option<&ListenCfg>,
    on: &[CTransition],
    then: &[CTransition],
    globals: &[CTransition],
    diags: &mut Vec<Diagnostic>,
) {
    match listen {
        Some(l) => {
            if !n.then.is_empty() {
                diags.push(diag(
                    p,
                    format!("node `{id}` listens, so its transitions go under `on:`, not `then:`"),
                ));
            }
            let all = || on.iter().chain(globals);
            if !all().any(|t| matches!(t.event, EventMatch::NoInput(_))) {
                diags.push(diag(
                    p,
                    format!("node `{id}` listens but has no `no_input` transition"),
                ));
            }
            if l.collect.is_some() {
                if !all().any(|t| t.event == EventMatch::Collected) {
                    diags.push(diag(
                        p,
                        format!("node `{id}` collects digits but has no `collected` transition"),
                    ));
                }
                if !all()
                    .any(|t| matches!(t.event, EventMatch::Invalid(_) | EventMatch::NoMatch(_)))
                {
                    diags.push(diag(
                        p,
                        format!("node `{id}` collects digits but has no `invalid` transition"),
                    ));
                }
            } else if !all().any(|t| matches!(t.event, EventMatch::NoMatch(_))) {
                diags.push(diag(
                    p,
                    format!("node `{id}` listens but has no `no_match` transition"),
                ));
            }
            // Duplicate keys (same key, same guard) in the node's own transitions.
            let mut seen: Vec<(char, Option<Guard>)> = Vec::new();
            for t in on {
                if let EventMatch::Dtmf(c) = t.event {
                    if seen.contains(&(c, t.guard)) {
                        diags.push(diag(
                            &t.pos,
                            format!("duplicate DTMF key `{c}` in node `{id}`"),
                        ));
                    } else {
                        seen.push((c, t.guard));
                    }
                }
            }
        }
        None => {
            if !n.on.is_empty() || !n.include.is_empty() {
                diags.push(diag(
                    p,
                    format!("node `{id}` has `on:` transitions but no `listen:` block"),
                ));
            }
            match then.last() {
                None => diags.push(diag(
                    p,
                    format!("dead end: node `{id}` neither listens nor moves on (add `listen:` + `on:`, or `then:`)"),
                )),
                Some(last) if last.guard.is_some() => diags.push(diag(
                    &last.pos,
                    format!("the last `then` transition of `{id}` needs no `if:` so the call always moves on"),
                )),
                Some(_) => {}
            }
        }
    }
}
