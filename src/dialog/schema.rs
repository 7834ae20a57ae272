//! The flow file schema, as written by a flow designer (`flows/*.yaml`, documented with a
//! full example in `flows/README.md`).
//!
//! This is the *raw* phase: serde types with unknown keys rejected and the positions of
//! every reference kept (`serde_saphyr::Spanned`) so that [`super::load`] can report
//! validation errors as `file:line:col: message`. The compiled form the runtime walks is
//! [`super::FlowSet`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::nlu::Decision;

/// One flow file. The flow named `main` is where every call starts (at its `entry`); the
/// others are subflows (one per business line), entered with `goto: <flow>.<node>`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFile {
    /// The flow's name; other flows reach its nodes as `<flow>.<node>`.
    pub flow: Spanned<String>,
    /// Free text for the designer.
    #[serde(default)]
    pub description: Option<String>,
    /// First node of a call (required in `main`; optional documentation in subflows).
    #[serde(default)]
    pub entry: Option<Spanned<String>>,
    /// Yes/no words for confirmations (`main` only).
    #[serde(default)]
    pub lexicon: Option<Lexicon>,
    /// Defaults for every `listen` block in this flow.
    #[serde(default)]
    pub defaults: Option<ListenDefaults>,
    /// Transitions tried first at every listening node of every flow (`main` only):
    /// 转人工, complaints.
    #[serde(default)]
    pub globals: Vec<Spanned<Transition>>,
    /// Named transition lists that nodes pull in with `include:`.
    #[serde(default)]
    pub shared: BTreeMap<String, Vec<Spanned<Transition>>>,
    /// Node entered when a transfer fails (`main` only); without it the call hangs up.
    #[serde(default)]
    pub on_transfer_failed: Option<Spanned<String>>,
    /// The nodes, by id, in file order.
    pub nodes: NodeMap,
}

/// Confirmation words. Matched as a prefix of the caller's answer (longest word first), so
/// "不是，是车险报案" is a *no* followed by a correction.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lexicon {
    #[serde(default)]
    pub yes: Vec<String>,
    #[serde(default)]
    pub no: Vec<String>,
}

/// Listen settings applied where a node's `listen` block leaves them out (seconds).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenDefaults {
    pub no_input: Option<f64>,
    pub end_silence: Option<f64>,
    pub max_speech: Option<f64>,
    pub barge_in: Option<bool>,
}

/// The node map, keeping file order and each id's position.
#[derive(Debug, Default)]
pub struct NodeMap(pub Vec<(Spanned<String>, Node)>);

impl<'de> Deserialize<'de> for NodeMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of node id → node")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeMap, A::Error> {
                let mut out: Vec<(Spanned<String>, Node)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<Spanned<String>, Node>()? {
                    if out.iter().any(|(o, _)| o.value == k.value) {
                        return Err(de::Error::custom(format!(
                            "duplicate node id `{}`",
                            k.value
                        )));
                    }
                    out.push((k, v));
                }
                Ok(NodeMap(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// One dialog node: prompts, then either a `listen` block with event transitions (`on`),
/// or an immediate, possibly guarded, list of transitions (`then`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// What the bot says on entering the node.
    #[serde(default)]
    pub prompt: Option<PromptSpec>,
    /// Several prompts, played in order (after `prompt`).
    #[serde(default)]
    pub prompts: Vec<PromptSpec>,
    /// Wait for the caller: speech and/or keys.
    #[serde(default)]
    pub listen: Option<Spanned<Listen>>,
    /// Named shared transition lists appended after `on`.
    #[serde(default)]
    pub include: Vec<Spanned<String>>,
    /// Transitions on caller events (listening nodes).
    #[serde(default)]
    pub on: Vec<Spanned<Transition>>,
    /// Transitions taken at once (non-listening nodes): the first whose `if` holds.
    #[serde(default)]
    pub then: Vec<Spanned<Transition>>,
}

/// A prompt: plain text, or text with speaking settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PromptSpec {
    Text(String),
    Full(PromptFull),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptFull {
    /// Text; `{var}` inserts a variable, `{var.name}` the catalogue name of a scenario held
    /// in a variable.
    pub text: String,
    /// Speaking-rate multiplier (1.0 normal; 0.8 for the elderly lane).
    #[serde(default)]
    pub rate: Option<f32>,
    /// Volume multiplier (1.0 normal).
    #[serde(default)]
    pub volume: Option<f32>,
    /// A recorded prompt to play instead of synthesising `text` (relative to flows/).
    #[serde(default)]
    pub wav: Option<String>,
    /// May the caller interrupt it (default true).
    #[serde(default)]
    pub barge_in: Option<bool>,
    /// A compliance disclosure: always played to the end.
    #[serde(default)]
    pub disclosure: bool,
}

/// A `listen` block (times in seconds).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Grammar / phrase list biasing the recogniser at this node (`grammars/<name>.txt`).
    #[serde(default)]
    pub grammar: Option<String>,
    /// Silence after the prompt before a no-input event.
    #[serde(default)]
    pub no_input: Option<f64>,
    /// Silence that ends an utterance (endpointing).
    #[serde(default)]
    pub end_silence: Option<f64>,
    /// Longest utterance accepted.
    #[serde(default)]
    pub max_speech: Option<f64>,
    /// Speech or a key may interrupt the node's prompts.
    #[serde(default)]
    pub barge_in: Option<bool>,
    /// Accept speech at all (false: keypad only).
    #[serde(default)]
    pub speech: Option<bool>,
    /// Collect a digit string instead of single keys.
    #[serde(default)]
    pub collect: Option<Collect>,
    /// The topic the caller is answering about (a business line, e.g. "信用卡"): an
    /// utterance that is not a confident route is classified again with it prefixed, so
    /// "还款" after "信用卡业务，请问…" reads as 信用卡还款.
    #[serde(default)]
    pub context: Option<String>,
}

/// Digit collection: a card number, a date, a policy number.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    /// Variable the digits go to.
    #[serde(default = "default_collect_var")]
    pub var: String,
    pub min: usize,
    pub max: usize,
    /// Key that ends the entry early (usually `#`).
    #[serde(default)]
    pub terminator: Option<char>,
    /// Check applied to a complete entry.
    #[serde(default)]
    pub validate: Option<DigitCheck>,
}

fn default_collect_var() -> String {
    "digits".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigitCheck {
    /// The Luhn checksum of bank card numbers.
    Luhn,
}

/// A transition: at most one event to match (`on` lists need exactly one), an optional
/// guard, then actions — `set`, `say`, `answer`, `scenario`, and exactly one of
/// `transfer`, `goto`, `repeat`, `stay`, `hangup`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    /// Not a transition: splices a shared list in at this point of an `on:` list.
    #[serde(default)]
    pub include: Option<Spanned<String>>,
    // ---- events
    /// A classified utterance: by queue, scenario (prefix), and/or decision.
    #[serde(default)]
    pub intent: Option<IntentMatch>,
    /// The utterance contains one of these words.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
    /// A key (0-9, *, #).
    #[serde(default)]
    pub dtmf: Option<Spanned<String>>,
    /// The n-th no-input at this node (the largest n ≤ count applies).
    #[serde(default)]
    pub no_input: Option<u32>,
    /// The n-th utterance or key nothing else matched.
    #[serde(default)]
    pub no_match: Option<u32>,
    /// The caller agreed ("对", "是的", "没错", "嗯").
    #[serde(default)]
    pub yes: Option<bool>,
    /// The caller disagreed without saying what they want instead.
    #[serde(default)]
    pub no: Option<bool>,
    /// The caller disagreed and said what they want ("不是，是车险报案"): the rest of
    /// the answer is classified and is the `$intent` of this transition.
    #[serde(default)]
    pub correction: Option<bool>,
    /// Digit collection finished and valid.
    #[serde(default)]
    pub collected: Option<bool>,
    /// The n-th invalid digit entry.
    #[serde(default)]
    pub invalid: Option<u32>,
    /// Guard: `senior`, `dialect`, `pending`, `queue_known` (prefix `!` negates).
    #[serde(default, rename = "if")]
    pub guard: Option<Spanned<String>>,
    // ---- actions
    /// Set variables (values may use `{var}` and `$intent`).
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Say something before moving on.
    #[serde(default)]
    pub say: Option<PromptSpec>,
    /// Speak the catalogue's self-service answer of the current scenario.
    #[serde(default)]
    pub answer: bool,
    /// The scenario this transfer is about (a catalogue id).
    #[serde(default)]
    pub scenario: Option<Spanned<String>>,
    /// A queue id, or `$intent` (the classified request), or `$pending` (the one being
    /// confirmed).
    #[serde(default)]
    pub transfer: Option<Spanned<String>>,
    /// `node` in this flow or `flow.node`.
    #[serde(default)]
    pub goto: Option<Spanned<String>>,
    /// Enter this node again (its prompts play again).
    #[serde(default)]
    pub repeat: bool,
    /// Keep listening at this node (no prompt again).
    #[serde(default)]
    pub stay: bool,
    /// End the call.
    #[serde(default)]
    pub hangup: bool,
}

/// Which classified utterances a transition matches (all given fields must hold).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentMatch {
    #[serde(default)]
    pub queue: Option<Spanned<String>>,
    /// A catalogue scenario id; finer scenarios under it match too.
    #[serde(default)]
    pub scenario: Option<Spanned<String>>,
    #[serde(default)]
    pub decision: Option<Decisions>,
    /// The classifier's confidence must be at least this (0..1).
    #[serde(default)]
    pub min_confidence: Option<f32>,
}

/// One decision or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Decisions {
    One(Decision),
    Many(Vec<Decision>),
}

impl Decisions {
    pub fn to_vec(&self) -> Vec<Decision> {
        match self {
            Decisions::One(d) => vec![*d],
            Decisions::Many(v) => v.clone(),
        }
    }
}
