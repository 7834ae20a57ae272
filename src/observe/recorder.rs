//! [`CallRecorder`]: what the per-call task uses to fill a [`CallRecord`] as the call goes,
//! sans-IO — every event takes the monotonic `now: Instant` and is stored as milliseconds
//! since the call started; wall-clock times (start, answer, end) are passed in by the
//! driver, which owns the clocks. [`CallRecorder::finish`] hands back the record for
//! [`super::records::RecordWriter`].
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use chrono::Utc;
//! # use voicenav::observe::recorder::CallRecorder;
//! # use voicenav::observe::records::Outcome;
//! let t0 = Instant::now();
//! let mut rec = CallRecorder::new("call-1", "13812345678", Utc::now(), t0);
//! rec.answered(Utc::now());
//! rec.prompt(t0, "greeting", "您好，请说出您要办理的业务", 3000, 1200, true);
//! rec.recognised(t0 + Duration::from_secs(2), "greeting", &[("我想查信用卡账单".into(), 0.9)], Duration::from_millis(350), false);
//! let record = rec.finish(Utc::now(), Outcome::Hangup);
//! assert_eq!(record.ani, "138****5678");
//! ```

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::records::{
    CallRecord, ComplianceFlag, DecisionRecord, Hypothesis, KeyRecord, Outcome, PromptRecord,
    RecognitionRecord, ResumeRecord, TransferRecord, TransferResult,
};
use crate::nlu::{Classification, Decision};
use crate::routing::{Lane, Queue};

/// Builds one call's record from its events.
#[derive(Debug, Clone)]
pub struct CallRecorder {
    record: CallRecord,
    started: Instant,
    /// Set explicitly by the dialog, overriding the rule of [`CallRecorder::finish`].
    first_utterance_routed: Option<bool>,
}

impl CallRecorder {
    /// A new call whose INVITE arrived at `start` (wall clock) / `now` (monotonic).
    pub fn new(call_id: &str, ani: &str, start: DateTime<Utc>, now: Instant) -> CallRecorder {
        CallRecorder {
            record: CallRecord::new(call_id, ani, start),
            started: now,
            first_utterance_routed: None,
        }
    }

    fn at(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// The record so far (for fields without a helper: node, dnis, flow version, dialect…).
    pub fn record_mut(&mut self) -> &mut CallRecord {
        &mut self.record
    }

    pub fn record(&self) -> &CallRecord {
        &self.record
    }

    pub fn answered(&mut self, at: DateTime<Utc>) {
        self.record.answer = Some(at);
    }

    pub fn set_lane(&mut self, lane: Lane) {
        self.record.lane = lane;
    }

    /// A prompt ended (played out or interrupted) at `now`.
    pub fn prompt(
        &mut self,
        now: Instant,
        node: &str,
        prompt: &str,
        duration_ms: u64,
        heard_ms: u64,
        barged_in: bool,
    ) {
        let at_ms = self.at(now);
        self.record.prompts.push(PromptRecord {
            at_ms,
            node: node.to_string(),
            prompt: prompt.to_string(),
            duration_ms,
            heard_ms: heard_ms.min(duration_ms),
            barged_in,
        });
    }

    /// A final recognition result (n-best, best first) at `now`; `no_match` when the flow
    /// could not use it (also counted in `no_matches`). Counts as a caller turn.
    pub fn recognised(
        &mut self,
        now: Instant,
        node: &str,
        nbest: &[(String, f32)],
        latency: Duration,
        no_match: bool,
    ) {
        let at_ms = self.at(now);
        let text = nbest.first().map(|(t, _)| t.clone()).unwrap_or_default();
        self.record.recognitions.push(RecognitionRecord {
            at_ms,
            node: node.to_string(),
            text,
            nbest: nbest
                .iter()
                .map(|(text, confidence)| Hypothesis {
                    text: text.clone(),
                    confidence: *confidence,
                })
                .collect(),
            latency_ms: latency.as_millis() as u64,
            no_match,
        });
        self.record.turns += 1;
        if no_match {
            self.record.no_matches += 1;
        }
    }

    /// The classifier's decision on an utterance.
    pub fn decided(&mut self, now: Instant, c: &Classification, latency: Duration) {
        let at_ms = self.at(now);
        self.record.decisions.push(DecisionRecord {
            at_ms,
            text: c.text.clone(),
            queue: c.queue,
            scenario: c.scenario.clone(),
            confidence: c.confidence,
            decision: c.decision,
            latency_ms: latency.as_millis() as u64,
        });
    }

    /// A key pressed (`source`: `rfc4733` or `inband`). Counts as a caller turn.
    pub fn key(&mut self, now: Instant, digit: char, source: &str) {
        let at_ms = self.at(now);
        self.record.keys.push(KeyRecord {
            at_ms,
            digit,
            source: source.to_string(),
        });
        self.record.turns += 1;
    }

    /// A listen node timed out with no input.
    pub fn no_input(&mut self) {
        self.record.no_inputs += 1;
    }

    /// A key the flow could not use (utterances are counted by [`Self::recognised`]).
    pub fn no_match_key(&mut self) {
        self.record.no_matches += 1;
    }

    /// New compliance flags (from `ComplianceWatch`); duplicates are skipped.
    pub fn compliance(&mut self, flags: &[ComplianceFlag]) {
        for f in flags {
            if !self.record.compliance.contains(f) {
                self.record.compliance.push(f.clone());
            }
        }
    }

    /// The caller is being transferred (REFER sent) at `now`.
    pub fn transfer_started(
        &mut self,
        now: Instant,
        queue: Queue,
        target: &str,
        scenario: Option<&str>,
    ) {
        let at_ms = self.at(now);
        self.record.queue = Some(queue);
        if scenario.is_some() {
            self.record.scenario = scenario.map(str::to_string);
        }
        self.record.transfer = Some(TransferRecord {
            at_ms,
            queue,
            target: target.to_string(),
            result: TransferResult::Accepted,
            sip_status: None,
        });
    }

    /// The transfer's outcome (REFER response / NOTIFY sipfrag status).
    pub fn transfer_result(&mut self, result: TransferResult, sip_status: Option<u16>) {
        if let Some(t) = self.record.transfer.as_mut() {
            t.result = result;
            t.sip_status = sip_status.or(t.sip_status);
        }
    }

    /// What happened with breakpoint resume at the start of the call.
    pub fn resume(&mut self, resume: ResumeRecord) {
        self.record.resume = Some(resume);
    }

    /// Overrides the first-utterance rule of [`Self::finish`].
    pub fn set_routed_on_first_utterance(&mut self, routed: bool) {
        self.first_utterance_routed = Some(routed);
    }

    /// The finished record. Unless set explicitly, `routed_on_first_utterance` is true when
    /// the call was transferred, no key was pressed, and the first decision was a `route` to
    /// the queue the caller went to.
    pub fn finish(mut self, end: DateTime<Utc>, outcome: Outcome) -> CallRecord {
        self.record.end = end.max(self.record.start);
        self.record.outcome = outcome;
        let rule = || {
            let first = self.record.decisions.first()?;
            Some(
                outcome == Outcome::Transferred
                    && self.record.keys.is_empty()
                    && first.decision == Decision::Route
                    && first.queue.is_some()
                    && first.queue == self.record.queue,
            )
        };
        let routed = self.first_utterance_routed.or_else(rule).unwrap_or(false);
        self.record.routed_on_first_utterance = routed;
        if self.record.scenario.is_none() && outcome == Outcome::Transferred {
            self.record.scenario = self
                .record
                .decisions
                .iter()
                .rev()
                .find(|d| d.queue == self.record.queue)
                .and_then(|d| d.scenario.clone());
        }
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classification(
        text: &str,
        queue: Queue,
        scenario: &str,
        decision: Decision,
    ) -> Classification {
        Classification {
            text: text.into(),
            queue: Some(queue),
            scenario: Some(scenario.into()),
            confidence: 0.91,
            decision,
            alternatives: vec![],
        }
    }

    #[test]
    fn a_direct_route_is_recorded_with_offsets_and_first_utterance() {
        let t0 = Instant::now();
        let start = Utc::now();
        let mut r = CallRecorder::new("c1", "sip:13812345678@trunk", start, t0);
        r.answered(start);
        r.prompt(
            t0 + Duration::from_millis(100),
            "greeting",
            "您好",
            3000,
            5000,
            true,
        );
        r.recognised(
            t0 + Duration::from_millis(2500),
            "greeting",
            &[
                ("我的车刚被撞了要报案".into(), 0.8),
                ("我的车刚被撞了要抱案".into(), 0.1),
            ],
            Duration::from_millis(420),
            false,
        );
        let c = classification(
            "我的车刚被撞了要报案",
            Queue::AutoClaim,
            "auto_claim.accident_report",
            Decision::Route,
        );
        r.decided(
            t0 + Duration::from_millis(2510),
            &c,
            Duration::from_millis(3),
        );
        r.transfer_started(
            t0 + Duration::from_millis(2600),
            Queue::AutoClaim,
            "sip:auto_claim@pbx",
            None,
        );
        r.transfer_result(TransferResult::Completed, Some(200));
        let rec = r.finish(start + chrono::Duration::seconds(3), Outcome::Transferred);
        assert_eq!(rec.ani, "138****5678");
        assert_eq!(
            rec.prompts[0].heard_ms, 3000,
            "heard is capped at the prompt length"
        );
        assert_eq!(rec.recognitions[0].at_ms, 2500);
        assert_eq!(rec.recognitions[0].nbest.len(), 2);
        assert_eq!(rec.turns, 1);
        assert!(rec.routed_on_first_utterance);
        assert_eq!(rec.scenario.as_deref(), Some("auto_claim.accident_report"));
        assert_eq!(rec.transfer.unwrap().sip_status, Some(200));
    }

    #[test]
    fn confirm_or_keys_are_not_first_utterance_routing() {
        let t0 = Instant::now();
        let start = Utc::now();
        let mut r = CallRecorder::new("c2", "02088886666", start, t0);
        let c = classification(
            "信用卡",
            Queue::CreditCard,
            "credit_card.bill_query",
            Decision::Confirm,
        );
        r.recognised(
            t0,
            "greeting",
            &[("信用卡".into(), 0.7)],
            Duration::ZERO,
            false,
        );
        r.decided(t0, &c, Duration::ZERO);
        r.key(t0, '1', "rfc4733");
        r.transfer_started(
            t0,
            Queue::CreditCard,
            "sip:cc@pbx",
            Some("credit_card.bill_query"),
        );
        let rec = r.finish(start, Outcome::Transferred);
        assert!(!rec.routed_on_first_utterance);
        assert_eq!(rec.turns, 2);
    }

    #[test]
    fn counters_and_no_match() {
        let t0 = Instant::now();
        let mut r = CallRecorder::new("c3", "anonymous", Utc::now(), t0);
        r.no_input();
        r.no_input();
        r.recognised(t0, "greeting", &[("嗯".into(), 0.3)], Duration::ZERO, true);
        r.no_match_key();
        // An end before the start (clock step) is clamped.
        let rec = r.finish(Utc::now() - chrono::Duration::hours(1), Outcome::Hangup);
        assert_eq!((rec.no_inputs, rec.no_matches), (2, 2));
        assert!(rec.end >= rec.start);
        assert!(!rec.routed_on_first_utterance);
    }
}
