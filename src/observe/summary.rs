//! `voicenav records summary`: the counts a QA team wants from the daily JSONL call records
//! ([`super::records`]): calls, outcomes, first-utterance routing rate, per-queue volume,
//! failed transfers, no-input / no-match rates, compliance flags, resume use, and the
//! utterances the flow could not use most often.
//!
//! Reading is tolerant: a line that is not a call record (torn by a crash, edited by hand)
//! is counted and reported with its `file:line`, and the rest is still summarised.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::NaiveDate;
use serde::Serialize;

use super::records::{CallRecord, Outcome};

/// How many unrecognised utterances and corrupt-line locations the summary lists.
const TOP_N: usize = 10;

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub files: usize,
    pub calls: u64,
    pub outcomes: BTreeMap<String, u64>,
    /// Calls in which the caller said something.
    pub calls_with_speech: u64,
    pub routed_on_first_utterance: u64,
    /// `routed_on_first_utterance / calls_with_speech`.
    pub first_utterance_routing_rate: f64,
    /// Transferred calls per queue.
    pub queues: BTreeMap<String, u64>,
    pub transfers: u64,
    pub transfers_failed: u64,
    pub no_input_events: u64,
    /// Share of calls with at least one no-input.
    pub no_input_rate: f64,
    pub no_match_events: u64,
    /// Share of calls with at least one no-match.
    pub no_match_rate: f64,
    /// Calls flagged per compliance category (a call with two phrases of one category
    /// counts once there).
    pub compliance: BTreeMap<String, u64>,
    /// Calls per highest severity flagged.
    pub compliance_by_severity: BTreeMap<String, u64>,
    /// Calls with at least one flag, and flags in all (every phrase found).
    pub calls_flagged: u64,
    pub compliance_flags: u64,
    pub resume_offered: u64,
    pub resume_accepted: u64,
    pub resume_store_unavailable: u64,
    /// Utterances the flow could not use, most frequent first.
    pub top_unrecognised: Vec<Utterance>,
    pub corrupt_lines: u64,
    /// The first corrupt lines as `file:line: reason`.
    pub corrupt_examples: Vec<String>,
    #[serde(skip)]
    no_input_calls: u64,
    #[serde(skip)]
    no_match_calls: u64,
    #[serde(skip)]
    unrecognised: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Utterance {
    pub text: String,
    pub count: u64,
}

impl Summary {
    /// Adds one record (skipped when it started before `since`).
    pub fn add(&mut self, r: &CallRecord, since: Option<NaiveDate>) {
        if since.is_some_and(|s| r.start.date_naive() < s && r.end.date_naive() < s) {
            return;
        }
        self.calls += 1;
        *self
            .outcomes
            .entry(r.outcome.as_str().to_string())
            .or_default() += 1;
        if !r.recognitions.is_empty() {
            self.calls_with_speech += 1;
        }
        if r.routed_on_first_utterance {
            self.routed_on_first_utterance += 1;
        }
        if r.outcome == Outcome::Transferred {
            if let Some(q) = r.queue {
                *self.queues.entry(q.to_string()).or_default() += 1;
            }
        }
        if let Some(t) = &r.transfer {
            self.transfers += 1;
            if t.result.failed() {
                self.transfers_failed += 1;
            }
        }
        self.no_input_events += u64::from(r.no_inputs);
        self.no_match_events += u64::from(r.no_matches);
        if r.no_inputs > 0 {
            self.no_input_calls += 1;
        }
        if r.no_matches > 0 {
            self.no_match_calls += 1;
        }
        let categories: std::collections::BTreeSet<&str> =
            r.compliance.iter().map(|f| f.category.as_str()).collect();
        for c in categories {
            *self.compliance.entry(c.to_string()).or_default() += 1;
        }
        if let Some(worst) = r.compliance.iter().map(|f| f.severity).max() {
            *self
                .compliance_by_severity
                .entry(worst.as_str().to_string())
                .or_default() += 1;
            self.calls_flagged += 1;
        }
        self.compliance_flags += r.compliance.len() as u64;
        if let Some(res) = &r.resume {
            self.resume_offered += u64::from(res.offered);
            self.resume_accepted += u64::from(res.accepted == Some(true));
            self.resume_store_unavailable += u64::from(res.store_unavailable);
        }
        for rec in r.recognitions.iter().filter(|x| x.no_match) {
            let text = rec.text.trim();
            if !text.is_empty() {
                *self.unrecognised.entry(text.to_string()).or_default() += 1;
            }
        }
    }

    fn corrupt(&mut self, file: &Path, line: usize, reason: &str) {
        self.corrupt_lines += 1;
        if self.corrupt_examples.len() < TOP_N {
            self.corrupt_examples
                .push(format!("{}:{line}: {reason}", file.display()));
        }
    }

    /// Computes the rates and the top list once every record was added.
    pub fn finish(&mut self) {
        let rate = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        self.first_utterance_routing_rate =
            rate(self.routed_on_first_utterance, self.calls_with_speech);
        self.no_input_rate = rate(self.no_input_calls, self.calls);
        self.no_match_rate = rate(self.no_match_calls, self.calls);
        let mut top: Vec<Utterance> = std::mem::take(&mut self.unrecognised)
            .into_iter()
            .map(|(text, count)| Utterance { text, count })
            .collect();
        top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.text.cmp(&b.text)));
        top.truncate(TOP_N);
        self.top_unrecognised = top;
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let pct = |x: f64| format!("{:.1}%", x * 100.0);
        let mut s = String::new();
        let _ = writeln!(s, "files read                 {}", self.files);
        let _ = writeln!(s, "calls                      {}", self.calls);
        for (o, n) in &self.outcomes {
            let _ = writeln!(s, "  {o:<24} {n}");
        }
        let _ = writeln!(
            s,
            "first-utterance routing    {} ({} of {} calls with speech)",
            pct(self.first_utterance_routing_rate),
            self.routed_on_first_utterance,
            self.calls_with_speech
        );
        let _ = writeln!(
            s,
            "transfers                  {} ({} failed)",
            self.transfers, self.transfers_failed
        );
        let _ = writeln!(
            s,
            "no-input                   {} of calls ({} events)",
            pct(self.no_input_rate),
            self.no_input_events
        );
        let _ = writeln!(
            s,
            "no-match                   {} of calls ({} events)",
            pct(self.no_match_rate),
            self.no_match_events
        );
        let _ = writeln!(s, "per-queue volume (transferred calls)");
        if self.queues.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for (q, n) in &self.queues {
            let _ = writeln!(s, "  {q:<24} {n}");
        }
        let _ = writeln!(
            s,
            "compliance flags           {} in {} calls (calls per category below)",
            self.compliance_flags, self.calls_flagged
        );
        for (c, n) in &self.compliance {
            let _ = writeln!(s, "  {c:<24} {n}");
        }
        for (sev, n) in &self.compliance_by_severity {
            let _ = writeln!(s, "  worst severity {sev:<9} {n}");
        }
        let _ = writeln!(
            s,
            "breakpoint resume          {} offered, {} accepted, store unavailable in {}",
            self.resume_offered, self.resume_accepted, self.resume_store_unavailable
        );
        let _ = writeln!(s, "top unrecognised utterances");
        if self.top_unrecognised.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for u in &self.top_unrecognised {
            let _ = writeln!(s, "  {:>5}  {}", u.count, u.text);
        }
        let _ = writeln!(s, "corrupt lines              {}", self.corrupt_lines);
        for e in &self.corrupt_examples {
            let _ = writeln!(s, "  {e}");
        }
        s
    }
}

/// The day of a records file name (`2026-11-24.jsonl`), if it is one.
pub fn file_day(path: &Path) -> Option<NaiveDate> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".jsonl")?;
    NaiveDate::parse_from_str(stem, "%Y-%m-%d").ok()
}

/// Parses `--since`: `YYYY-MM-DD`.
pub fn parse_since(s: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .with_context(|| format!("--since `{s}`: expected a date as YYYY-MM-DD, e.g. 2026-11-24"))
}

/// Reads every daily file of `dir` (on or after `since`) into a [`Summary`].
pub fn summarise(dir: &Path, since: Option<NaiveDate>) -> anyhow::Result<Summary> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the records folder {}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| file_day(p).is_some_and(|d| since.is_none_or(|s| d >= s)))
        .collect();
    files.sort();
    let mut summary = Summary::default();
    for file in &files {
        summary.files += 1;
        let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        let mut line_no = 0;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {}", file.display()))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let Ok(text) = std::str::from_utf8(&buf) else {
                summary.corrupt(file, line_no, "not UTF-8");
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<CallRecord>(text) {
                Ok(r) => summary.add(&r, since),
                Err(e) => summary.corrupt(file, line_no, &e.to_string()),
            }
        }
    }
    summary.finish();
    Ok(summary)
}

/// `voicenav records summary`.
pub fn run(
    dir: Option<&Path>,
    since: Option<&str>,
    config: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since.map(parse_since).transpose()?;
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let cfg = crate::config::Config::load(config)
                .with_context(|| "no --dir given, so the records folder comes from the config")?;
            cfg.raw.paths.records
        }
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "records folder {} does not exist (no calls recorded yet, or a wrong --dir)",
            dir.display()
        );
    }
    let summary = summarise(&dir, since)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render());
    }
    if summary.corrupt_lines > 0 {
        eprintln!(
            "voicenav: {} corrupt line(s) skipped in {} (listed above)",
            summary.corrupt_lines,
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::records::{
        ComplianceFlag, RecognitionRecord, Severity, TransferRecord, TransferResult,
    };
    use crate::routing::Queue;
    use chrono::{TimeZone, Utc};

    fn rec(id: &str, day: u32) -> CallRecord {
        let start = Utc.with_ymd_and_hms(2026, 11, day, 10, 0, 0).unwrap();
        let mut r = CallRecord::new(id, "02088886666", start);
        r.end = start + chrono::Duration::seconds(30);
        r
    }

    fn utter(text: &str, no_match: bool) -> RecognitionRecord {
        RecognitionRecord {
            at_ms: 1000,
            node: "greeting".into(),
            text: text.into(),
            nbest: vec![],
            latency_ms: 300,
            no_match,
        }
    }

    #[test]
    fn counts_and_rates() {
        let mut s = Summary::default();
        let mut a = rec("a", 20);
        a.recognitions.push(utter("信用卡账单", false));
        a.routed_on_first_utterance = true;
        a.outcome = Outcome::Transferred;
        a.queue = Some(Queue::CreditCard);
        a.transfer = Some(TransferRecord {
            at_ms: 2000,
            queue: Queue::CreditCard,
            target: "sip:credit_card@x".into(),
            result: TransferResult::Completed,
            sip_status: Some(200),
        });
        let mut b = rec("b", 21);
        b.recognitions.push(utter("嗯那个", true));
        b.recognitions.push(utter("嗯那个", true));
        b.no_matches = 2;
        b.no_inputs = 1;
        b.outcome = Outcome::Transferred;
        b.queue = Some(Queue::HumanAgent);
        b.transfer = Some(TransferRecord {
            at_ms: 9000,
            queue: Queue::HumanAgent,
            target: "sip:human_agent@x".into(),
            result: TransferResult::Failed,
            sip_status: Some(486),
        });
        b.compliance.push(ComplianceFlag {
            at_ms: 1,
            category: "fraud_safe_account".into(),
            severity: Severity::Critical,
            phrase: "安全账户".into(),
        });
        let mut c = rec("c", 22);
        c.no_inputs = 3;
        c.outcome = Outcome::Hangup;
        for r in [&a, &b, &c] {
            s.add(r, None);
        }
        s.finish();
        assert_eq!(s.calls, 3);
        assert_eq!(s.calls_with_speech, 2);
        assert!((s.first_utterance_routing_rate - 0.5).abs() < 1e-9);
        assert_eq!(s.queues.get("credit_card"), Some(&1));
        assert_eq!(s.queues.get("human_agent"), Some(&1));
        assert_eq!(s.transfers_failed, 1);
        assert!((s.no_input_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.no_input_events, 4);
        assert!((s.no_match_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.compliance.get("fraud_safe_account"), Some(&1));
        assert_eq!(
            s.top_unrecognised,
            vec![Utterance {
                text: "嗯那个".into(),
                count: 2
            }]
        );
        let text = s.render();
        assert!(text.contains("50.0%"), "{text}");
        assert!(text.contains("fraud_safe_account"), "{text}");
    }

    #[test]
    fn since_filters_files_and_records() {
        let dir = tempfile::tempdir().unwrap();
        let write = |day: u32, recs: &[CallRecord], extra: &str| {
            let mut text = String::new();
            for r in recs {
                text.push_str(std::str::from_utf8(&r.to_line().unwrap()).unwrap());
            }
            text.push_str(extra);
            std::fs::write(dir.path().join(format!("2026-11-{day:02}.jsonl")), text).unwrap();
        };
        write(20, &[rec("a", 20)], "");
        write(21, &[rec("b", 21), rec("c", 21)], "{not json\n\n");
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let all = summarise(dir.path(), None).unwrap();
        assert_eq!((all.files, all.calls, all.corrupt_lines), (2, 3, 1));
        assert!(
            all.corrupt_examples[0].contains("2026-11-21.jsonl:3:"),
            "{:?}",
            all.corrupt_examples
        );
        let since = summarise(dir.path(), Some(parse_since("2026-11-21").unwrap())).unwrap();
        assert_eq!((since.files, since.calls), (1, 2));
    }

    #[test]
    fn bad_since_is_a_clear_error() {
        let e = parse_since("24/11/2026").unwrap_err();
        assert!(format!("{e:#}").contains("YYYY-MM-DD"));
    }
}
