//! Understanding the caller: normalisation, the scenario catalogue, and the intent
//! classifier with calibrated confidence.
//!
//! The types below are the contract the rest of voicenav uses ([`Classification`],
//! [`Decision`], the [`IntentClassifier`] trait); the dialog runtime consumes a
//! [`Classification`] per caller utterance.

pub mod compliance;

use serde::{Deserialize, Serialize};

use crate::routing::Queue;

/// What to do with a classified utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Confident: transfer (or answer) straight away.
    Route,
    /// Likely but not sure: ask "您是要…吗？".
    Confirm,
    /// Vague: ask a narrower question.
    Clarify,
}

/// One ranked alternative scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub scenario: String,
    pub confidence: f32,
}

/// The classifier's answer for one utterance (the JSON line of `voicenav classify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub text: String,
    pub queue: Option<Queue>,
    pub scenario: Option<String>,
    pub confidence: f32,
    pub decision: Decision,
    pub alternatives: Vec<Alternative>,
}

/// What the dialog runtime needs from the NLU side.
pub trait IntentClassifier: Send + Sync {
    /// Classifies one utterance (a final ASR result or typed text).
    fn classify(&self, text: &str) -> Classification;
    /// Classifies an ASR n-best list (text, recogniser confidence), picking the
    /// best-supported scenario across hypotheses.
    fn classify_nbest(&self, hypotheses: &[(String, f32)]) -> Classification {
        match hypotheses.first() {
            Some((text, _)) => self.classify(text),
            None => self.classify(""),
        }
    }
    /// The Chinese name of a scenario (for confirmation prompts).
    fn scenario_name(&self, scenario: &str) -> Option<String>;
    /// The self-service answer text of a scenario, if it has one.
    fn scenario_answer(&self, scenario: &str) -> Option<String>;
    /// Whether the catalogue has this scenario id.
    fn has_scenario(&self, scenario: &str) -> bool;
}
