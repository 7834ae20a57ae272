//! What the caller simulator prints: one JSON line per call (the `replay` fields of
//! ARCHITECTURE.md — `id`, `outcome`, `queue`, `scenario`, `turns`, `passed` — plus the
//! transfer target, the context headers and the timings), and the `expect` check.

use std::collections::BTreeMap;

use serde::Serialize;

use super::script::{scenario_matches, Expect};
use crate::sip::transfer::decode_uui;

/// One call's report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CallReport {
    pub id: String,
    /// `transferred`, `hangup` or `failed` (no answer, rejected, timed out).
    pub outcome: &'static str,
    /// From `X-Voicenav-Queue` (else the `queue` field of User-to-User).
    pub queue: Option<String>,
    pub scenario: Option<String>,
    /// Caller inputs used before the outcome.
    pub turns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    /// Why `passed` is false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
    /// The REFER's Refer-To URI.
    pub refer_to: Option<String>,
    /// Every `X-Voicenav-*` header of the REFER, and `User-to-User`.
    pub headers: BTreeMap<String, String>,
    /// `User-to-User` decoded (RFC 7433 hex, URL-encoded `key=value` pairs).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub uui: BTreeMap<String, String>,
    /// Who hung up when there was no transfer: `caller` (script over) or `ivr`.
    pub hangup_by: Option<&'static str>,
    pub sip_call_id: String,
    /// The INVITE's final error code, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_code: Option<u16>,
    pub codec: Option<&'static str>,
    /// INVITE sent → 2xx received.
    pub setup_ms: Option<f64>,
    /// Per answered turn: our last speech (or key) packet → the bot's first reply speech packet.
    pub turn_latency_ms: Vec<f64>,
    /// 2xx → REFER received.
    pub refer_ms: Option<f64>,
    pub duration_ms: f64,
    /// Bot speech heard, in ms.
    pub bot_speech_ms: u64,
    pub rtp_sent: u64,
    pub rtp_received: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CallReport {
    pub fn new(id: &str) -> CallReport {
        CallReport {
            id: id.to_string(),
            ..CallReport::default()
        }
    }

    /// Records the REFER: target, headers, queue and scenario.
    pub fn set_transfer(&mut self, refer_to: String, headers: Vec<(String, String)>) {
        self.refer_to = Some(refer_to);
        for (k, v) in headers {
            if k.eq_ignore_ascii_case("user-to-user") {
                if let Some(pairs) = decode_uui(&v) {
                    self.uui = pairs.into_iter().collect();
                }
            }
            self.headers.insert(k, v);
        }
        self.queue = self
            .header("X-Voicenav-Queue")
            .or_else(|| self.uui.get("queue").cloned());
        self.scenario = self
            .header("X-Voicenav-Scenario")
            .or_else(|| self.uui.get("scenario").cloned());
    }

    /// A context header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    }

    /// Checks `expect`, setting `passed` and `failures`.
    pub fn check(&mut self, e: &Expect) {
        let mut f = Vec::new();
        if let Some(err) = &self.error {
            f.push(format!("call failed: {err}"));
        }
        if let Some(o) = &e.outcome {
            if o != self.outcome {
                f.push(format!("outcome {} (expected {o})", self.outcome));
            }
        }
        if let Some(q) = &e.queue {
            if self.queue.as_deref() != Some(q.as_str()) {
                f.push(format!(
                    "queue {} (expected {q})",
                    self.queue.as_deref().unwrap_or("none")
                ));
            }
        }
        if let Some(s) = e.scenario.as_deref().filter(|s| !s.is_empty() && *s != "-") {
            if !scenario_matches(self.scenario.as_deref(), s) {
                f.push(format!(
                    "scenario {} (expected {s})",
                    self.scenario.as_deref().unwrap_or("none")
                ));
            }
        }
        if let Some(m) = e.max_turns {
            if self.turns > m {
                f.push(format!("{} turns (at most {m} expected)", self.turns));
            }
        }
        for (what, want, header, uui) in [
            ("dialect", &e.dialect, "X-Voicenav-Dialect", "dialect"),
            ("lane", &e.lane, "X-Voicenav-Lane", "lane"),
        ] {
            if let Some(want) = want {
                let got = self.header(header).or_else(|| self.uui.get(uui).cloned());
                if got.as_deref() != Some(want.as_str()) {
                    f.push(format!(
                        "{what} {} (expected {want})",
                        got.as_deref().unwrap_or("none")
                    ));
                }
            }
        }
        self.passed = Some(f.is_empty());
        self.failures = f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_headers_fill_queue_scenario_and_uui() {
        let mut r = CallReport::new("a");
        r.outcome = "transferred";
        let uui = format!("{};encoding=hex", hex::encode("queue=loan&lane=elderly"));
        r.set_transfer(
            "sip:auto_claim@127.0.0.1".into(),
            vec![
                ("X-Voicenav-Queue".into(), "auto_claim".into()),
                (
                    "X-Voicenav-Scenario".into(),
                    "auto_claim.accident_report".into(),
                ),
                ("User-to-User".into(), uui),
            ],
        );
        assert_eq!(r.queue.as_deref(), Some("auto_claim"));
        assert_eq!(r.uui.get("lane").map(String::as_str), Some("elderly"));
        let mut e = Expect {
            queue: Some("auto_claim".into()),
            scenario: Some("auto_claim.accident_report".into()),
            lane: Some("elderly".into()),
            max_turns: Some(1),
            ..Expect::default()
        };
        r.turns = 1;
        r.check(&e);
        assert_eq!(r.passed, Some(true), "{:?}", r.failures);
        e.queue = Some("loan".into());
        e.dialect = Some("yue".into());
        r.check(&e);
        assert_eq!(r.passed, Some(false));
        assert_eq!(r.failures.len(), 2, "{:?}", r.failures);
        let line = serde_json::to_string(&r).unwrap();
        assert!(
            line.contains("\"refer_to\":\"sip:auto_claim@127.0.0.1\""),
            "{line}"
        );
    }
}
