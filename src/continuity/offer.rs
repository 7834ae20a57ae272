//! The resume offer, sans-IO: what a call does with a [`Lookup`] at its start. The dialog
//! runtime (or the call task) plays [`ResumeOffer::prompt`], feeds the caller's answer (a
//! key or recognised text) to [`ResumeOffer::handle_input`] or a timeout to
//! [`ResumeOffer::handle_no_input`], and gets a [`ResumeStep`]: resume at the saved node,
//! start fresh, or ask once more. An unclear answer or silence is asked again once, then
//! the call starts fresh — a caller is never stuck in the offer.
//!
//! A context saved under another flow version is not offered: its node may no longer exist
//! or mean the same thing.

use super::{resume_answer, Lookup, ResumeContext};
use crate::observe::records::ResumeRecord;

/// How many times the offer is made at most.
pub const MAX_OFFERS: u8 = 2;

/// What the call does next.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeStep {
    /// Continue at `ctx.node`, with `ctx.transcript` as what the caller already said.
    Resume(ResumeContext),
    /// Start the flow from its beginning (and forget the saved context).
    Fresh,
    /// Play the prompt again and listen.
    AskAgain(String),
}

/// An offer in progress.
#[derive(Debug, Clone)]
pub struct ResumeOffer {
    ctx: ResumeContext,
    prompt: String,
    offers: u8,
    accepted: Option<bool>,
}

impl ResumeOffer {
    /// The offer to make for `lookup` in a call running `flow_version`; `scenario_name` is
    /// the Chinese name of the saved scenario (from the catalogue). `None`: nothing to offer.
    pub fn start(
        lookup: &Lookup,
        flow_version: &str,
        scenario_name: Option<&str>,
    ) -> Option<ResumeOffer> {
        let Lookup::Found(ctx) = lookup else {
            return None;
        };
        if ctx.flow_version != flow_version {
            return None;
        }
        Some(ResumeOffer {
            prompt: ctx.offer_prompt(scenario_name),
            ctx: ctx.clone(),
            offers: 1,
            accepted: None,
        })
    }

    /// What to play: "您上次咨询的是…，继续请说'是'或按1…".
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The caller answered: a key (`"1"`, `"2"`) or recognised text.
    pub fn handle_input(&mut self, input: &str) -> ResumeStep {
        match resume_answer(input) {
            Some(true) => {
                self.accepted = Some(true);
                ResumeStep::Resume(self.ctx.clone())
            }
            Some(false) => {
                self.accepted = Some(false);
                ResumeStep::Fresh
            }
            None => self.again(),
        }
    }

    /// The caller said nothing before the listen timed out.
    pub fn handle_no_input(&mut self) -> ResumeStep {
        self.again()
    }

    fn again(&mut self) -> ResumeStep {
        if self.offers < MAX_OFFERS {
            self.offers += 1;
            ResumeStep::AskAgain(self.prompt.clone())
        } else {
            self.accepted = Some(false);
            ResumeStep::Fresh
        }
    }

    /// What goes into the call record.
    pub fn record(&self) -> ResumeRecord {
        ResumeRecord {
            offered: true,
            accepted: self.accepted,
            node: Some(self.ctx.node.clone()),
            scenario: self.ctx.scenario.clone(),
            store_unavailable: false,
        }
    }
}

/// The record of a call for which the store could not answer.
pub fn unavailable_record() -> ResumeRecord {
    ResumeRecord {
        offered: false,
        accepted: None,
        node: None,
        scenario: None,
        store_unavailable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn found(version: &str) -> Lookup {
        Lookup::Found(ResumeContext {
            flow_version: version.into(),
            node: "bill_query_details".into(),
            scenario: Some("credit_card.bill_query".into()),
            transcript: vec!["我想查信用卡账单".into()],
            saved_at: Utc::now(),
        })
    }

    #[test]
    fn yes_resumes_at_the_saved_node() {
        let mut o = ResumeOffer::start(&found("v1"), "v1", Some("信用卡账单查询")).unwrap();
        assert!(o
            .prompt()
            .starts_with("您上次咨询的是信用卡账单查询，继续请说'是'或按1"));
        let ResumeStep::Resume(ctx) = o.handle_input("是的") else {
            panic!()
        };
        assert_eq!(ctx.node, "bill_query_details");
        assert_eq!(o.record().accepted, Some(true));
    }

    #[test]
    fn key_two_or_no_starts_fresh() {
        let mut o = ResumeOffer::start(&found("v1"), "v1", None).unwrap();
        assert_eq!(o.handle_input("2"), ResumeStep::Fresh);
        assert_eq!(o.record().accepted, Some(false));
        let mut o = ResumeOffer::start(&found("v1"), "v1", None).unwrap();
        assert_eq!(o.handle_input("不用了"), ResumeStep::Fresh);
    }

    #[test]
    fn unclear_or_silent_is_asked_once_more_then_fresh() {
        let mut o = ResumeOffer::start(&found("v1"), "v1", None).unwrap();
        assert!(matches!(o.handle_no_input(), ResumeStep::AskAgain(_)));
        assert_eq!(o.handle_input("嗯那个"), ResumeStep::Fresh);
        assert_eq!(o.record().accepted, Some(false));
        let mut o = ResumeOffer::start(&found("v1"), "v1", None).unwrap();
        assert!(matches!(o.handle_input("啊？"), ResumeStep::AskAgain(_)));
        assert!(matches!(o.handle_input("1"), ResumeStep::Resume(_)));
    }

    #[test]
    fn nothing_offered_without_a_context_or_across_flow_versions() {
        assert!(ResumeOffer::start(&Lookup::NotFound, "v1", None).is_none());
        assert!(ResumeOffer::start(&Lookup::Unavailable, "v1", None).is_none());
        assert!(ResumeOffer::start(&found("v1"), "v2", None).is_none());
        assert!(unavailable_record().store_unavailable);
    }
}
