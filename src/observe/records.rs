//! Call records: one JSON line per call in a daily JSONL file (`<dir>/YYYY-MM-DD.jsonl`,
//! the UTC date of the call's end), written durably before a call's resources are freed.
//!
//! [`CallRecord`] is the schema (serde; unknown fields are ignored when reading so older
//! readers survive newer writers). [`RecordWriter`] owns one writer thread: callers hand it
//! a record and get an answer only after the line has been appended and `fsync`ed
//! (`File::sync_data`). The thread group-commits: records that arrive while it is syncing
//! are written together and synced once, so hundreds of calls ending at once cost a few
//! fsyncs, not hundreds, and each caller still waits for its own line to be on disk.
//!
//! Lines never interleave: every record is serialised in full before one `write_all` to a
//! file opened with `O_APPEND`, under an exclusive `flock` so that several voicenav
//! processes sharing a records folder (two nodes on one machine) are safe too. If a
//! previous writer died mid-line, the next write first ends that line with `\n`, so the
//! damage stays one corrupt line that `voicenav records summary` counts and reports.
//!
//! Every text field is masked with [`super::mask`] when the record is written, whatever the
//! caller of the writer did: card numbers, ID numbers and phone numbers never reach disk.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::mask::{mask_ani, mask_pii};
use crate::nlu::Decision;
use crate::routing::{Lane, Queue};

/// Version of the record schema written in every line (`schema`).
pub const SCHEMA_VERSION: u32 = 1;

/// Most records the writer thread commits with one fsync.
const MAX_BATCH: usize = 512;

/// One call, as written to the daily JSONL file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    #[serde(default)]
    pub schema: u32,
    pub call_id: String,
    /// The voicenav node that handled the call (several nodes behind Kamailio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The caller id, masked ([`mask_ani`]).
    pub ani: String,
    /// The number called (DNIS), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnis: Option<String>,
    /// When the INVITE arrived.
    pub start: DateTime<Utc>,
    /// When we answered (200 OK sent); none for calls never answered.
    #[serde(default)]
    pub answer: Option<DateTime<Utc>>,
    /// When the call ended (BYE, CANCEL, transfer done, timeout).
    pub end: DateTime<Utc>,
    /// Version (content hash or tag) of the flow that ran.
    #[serde(default)]
    pub flow_version: Option<String>,
    #[serde(default)]
    pub lane: Lane,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    #[serde(default)]
    pub prompts: Vec<PromptRecord>,
    #[serde(default)]
    pub recognitions: Vec<RecognitionRecord>,
    #[serde(default)]
    pub decisions: Vec<DecisionRecord>,
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
    /// Listen nodes that timed out with no speech and no key.
    #[serde(default)]
    pub no_inputs: u32,
    /// Utterances or keys the flow could not use.
    #[serde(default)]
    pub no_matches: u32,
    /// Caller inputs used before the outcome (as `voicenav replay` counts `turns`).
    #[serde(default)]
    pub turns: u32,
    pub outcome: Outcome,
    /// The queue the caller was (or was to be) transferred to.
    #[serde(default)]
    pub queue: Option<Queue>,
    #[serde(default)]
    pub scenario: Option<String>,
    /// The first thing the caller said was routed straight to a queue (no confirm, no
    /// clarify, no keypad).
    #[serde(default)]
    pub routed_on_first_utterance: bool,
    #[serde(default)]
    pub transfer: Option<TransferRecord>,
    #[serde(default)]
    pub compliance: Vec<ComplianceFlag>,
    #[serde(default)]
    pub resume: Option<ResumeRecord>,
    /// Stereo WAV of the call, when recording is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<PathBuf>,
    /// Why the call ended abnormally (timer, error), for `error`/`timeout` outcomes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Handed to a queue (REFER accepted, or the fallback transfer done).
    Transferred,
    /// We ended the call (self-service answered, goodbye, repeated no-input).
    Hangup,
    /// The caller hung up before an outcome.
    Abandoned,
    /// Never answered (CANCEL, rejected, no ACK).
    Unanswered,
    /// Ended by a timer or an error (see `reason`).
    Error,
    /// Ended by a draining server at its deadline.
    Shutdown,
    /// Written by a newer voicenav: unknown here.
    #[serde(other)]
    Other,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Transferred => "transferred",
            Outcome::Hangup => "hangup",
            Outcome::Abandoned => "abandoned",
            Outcome::Unanswered => "unanswered",
            Outcome::Error => "error",
            Outcome::Shutdown => "shutdown",
            Outcome::Other => "other",
        }
    }
}

/// A prompt played, and how much of it the caller heard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptRecord {
    /// Milliseconds since the call started.
    pub at_ms: u64,
    /// Flow node that played it.
    #[serde(default)]
    pub node: String,
    /// Prompt id or text (masked).
    pub prompt: String,
    /// Full length of the prompt.
    pub duration_ms: u64,
    /// How much was played before it ended or was interrupted.
    pub heard_ms: u64,
    #[serde(default)]
    pub barged_in: bool,
}

/// One recognition result: the final text, its n-best and how long recognition took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionRecord {
    pub at_ms: u64,
    #[serde(default)]
    pub node: String,
    /// Best hypothesis (masked).
    pub text: String,
    #[serde(default)]
    pub nbest: Vec<Hypothesis>,
    /// From the end of speech to the final result.
    pub latency_ms: u64,
    /// The flow could not use this utterance (counted in `no_matches`).
    #[serde(default)]
    pub no_match: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub text: String,
    pub confidence: f32,
}

/// One classifier decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub at_ms: u64,
    /// The text classified (masked).
    pub text: String,
    pub queue: Option<Queue>,
    pub scenario: Option<String>,
    pub confidence: f32,
    pub decision: Decision,
    #[serde(default)]
    pub latency_ms: u64,
}

/// A key the caller pressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub at_ms: u64,
    pub digit: char,
    /// `rfc4733` or `inband`.
    #[serde(default)]
    pub source: String,
}

/// The transfer attempt of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRecord {
    pub at_ms: u64,
    pub queue: Queue,
    /// Refer-To URI.
    pub target: String,
    pub result: TransferResult,
    /// Final SIP status seen (REFER response or NOTIFY sipfrag).
    #[serde(default)]
    pub sip_status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferResult {
    /// The transferee reported success (NOTIFY 200).
    Completed,
    /// REFER accepted (202) but no final NOTIFY before the call ended.
    Accepted,
    /// REFER rejected or NOTIFY with a failure status.
    Failed,
    /// No answer within the transfer timer.
    Timeout,
}

impl TransferResult {
    pub fn failed(self) -> bool {
        matches!(self, TransferResult::Failed | TransferResult::Timeout)
    }
}

/// A compliance phrase spotted in what the caller said (see `nlu::compliance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceFlag {
    pub at_ms: u64,
    pub category: String,
    pub severity: Severity,
    /// The phrase of `grammars/compliance.yaml` that matched (never the caller's words).
    pub phrase: String,
}

/// How serious a compliance category is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Breakpoint resume: what was offered and what the caller chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// A saved context was found and offered.
    pub offered: bool,
    /// The caller accepted (`None`: no answer, e.g. hung up during the offer).
    #[serde(default)]
    pub accepted: Option<bool>,
    /// The node resumed at.
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub scenario: Option<String>,
    /// The context store could not be reached (the call went on without resume).
    #[serde(default)]
    pub store_unavailable: bool,
}

impl CallRecord {
    /// An empty record for a call that started at `start`; the ANI is masked here.
    pub fn new(call_id: impl Into<String>, ani: &str, start: DateTime<Utc>) -> CallRecord {
        CallRecord {
            schema: SCHEMA_VERSION,
            call_id: call_id.into(),
            node: None,
            ani: mask_ani(ani),
            dnis: None,
            start,
            answer: None,
            end: start,
            flow_version: None,
            lane: Lane::Standard,
            dialect: None,
            prompts: Vec::new(),
            recognitions: Vec::new(),
            decisions: Vec::new(),
            keys: Vec::new(),
            no_inputs: 0,
            no_matches: 0,
            turns: 0,
            outcome: Outcome::Abandoned,
            queue: None,
            scenario: None,
            routed_on_first_utterance: false,
            transfer: None,
            compliance: Vec::new(),
            resume: None,
            recording: None,
            reason: None,
        }
    }

    /// Masks every free-text field in place (idempotent: masked text stays as it is).
    pub fn mask(&mut self) {
        self.ani = mask_ani(&self.ani);
        if let Some(d) = self.dnis.as_mut() {
            *d = mask_pii(d);
        }
        for p in &mut self.prompts {
            p.prompt = mask_pii(&p.prompt);
        }
        for r in &mut self.recognitions {
            r.text = mask_pii(&r.text);
            for h in &mut r.nbest {
                h.text = mask_pii(&h.text);
            }
        }
        for d in &mut self.decisions {
            d.text = mask_pii(&d.text);
        }
        if let Some(r) = self.reason.as_mut() {
            *r = mask_pii(r);
        }
    }

    /// The daily file this record belongs in.
    pub fn day(&self) -> NaiveDate {
        self.end.date_naive()
    }

    /// The masked record as one JSON line, `\n` included.
    pub fn to_line(&self) -> Result<Vec<u8>, RecordError> {
        let mut masked = self.clone();
        masked.mask();
        masked.schema = SCHEMA_VERSION;
        let mut line =
            serde_json::to_vec(&masked).map_err(|e| RecordError::Encode(e.to_string()))?;
        line.push(b'\n');
        Ok(line)
    }
}

/// The file name of a day's records.
pub fn day_file_name(day: NaiveDate) -> String {
    format!("{}.jsonl", day.format("%Y-%m-%d"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("encoding a call record: {0}")]
    Encode(String),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("the call-record writer has stopped")]
    Stopped,
}

impl RecordError {
    fn io(path: &Path, e: std::io::Error) -> RecordError {
        RecordError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

// ---- the writer -----------------------------------------------------------------------

enum Reply {
    Async(tokio::sync::oneshot::Sender<Result<PathBuf, RecordError>>),
    Blocking(mpsc::Sender<Result<PathBuf, RecordError>>),
}

impl Reply {
    fn send(self, r: Result<PathBuf, RecordError>) {
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

struct Job {
    day: NaiveDate,
    line: Vec<u8>,
    reply: Reply,
}

/// The durable call-record writer (see the module doc). Cheap to clone; the writer thread
/// ends when the last clone is dropped, after writing everything it was given.
#[derive(Clone)]
pub struct RecordWriter {
    tx: mpsc::Sender<Job>,
    dir: PathBuf,
}

impl std::fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordWriter")
            .field("dir", &self.dir)
            .finish()
    }
}

impl RecordWriter {
    /// Creates `dir` if needed and starts the writer thread.
    pub fn start(dir: &Path) -> Result<RecordWriter, RecordError> {
        std::fs::create_dir_all(dir).map_err(|e| RecordError::io(dir, e))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_dir = dir.to_path_buf();
        thread::Builder::new()
            .name("call-records".into())
            .spawn(move || writer_thread(&thread_dir, rx))
            .map_err(|e| RecordError::io(dir, e))?;
        Ok(RecordWriter {
            tx,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `record` (masked); resolves once the line is on disk. Returns the file.
    pub async fn write(&self, record: &CallRecord) -> Result<PathBuf, RecordError> {
        let line = record.to_line()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job {
                day: record.day(),
                line,
                reply: Reply::Async(tx),
            })
            .map_err(|_| RecordError::Stopped)?;
        rx.await.map_err(|_| RecordError::Stopped)?
    }

    /// [`Self::write`] for synchronous code (never call it from inside an async task).
    pub fn write_blocking(&self, record: &CallRecord) -> Result<PathBuf, RecordError> {
        let line = record.to_line()?;
        let (tx, rx) = mpsc::channel();
        self.tx
            .send(Job {
                day: record.day(),
                line,
                reply: Reply::Blocking(tx),
            })
            .map_err(|_| RecordError::Stopped)?;
        rx.recv().map_err(|_| RecordError::Stopped)?
    }
}

fn writer_thread(dir: &Path, rx: mpsc::Receiver<Job>) {
    let mut files = DailyFiles {
        dir: dir.to_path_buf(),
        open: None,
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut by_day: BTreeMap<NaiveDate, Vec<Job>> = BTreeMap::new();
        for job in batch {
            by_day.entry(job.day).or_default().push(job);
        }
        for (day, jobs) in by_day {
            let started = Instant::now();
            let buf: Vec<u8> = jobs.iter().flat_map(|j| j.line.iter().copied()).collect();
            let result = files.append(day, &buf);
            metrics::histogram!("voicenav_records_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            match &result {
                Ok(_) => {
                    metrics::counter!("voicenav_records_written_total").increment(jobs.len() as u64)
                }
                Err(e) => {
                    metrics::counter!("voicenav_records_write_errors_total")
                        .increment(jobs.len() as u64);
                    // Not lost: the masked lines go to the log, from where they can be recovered.
                    for job in &jobs {
                        tracing::error!(error = %e, record = %String::from_utf8_lossy(&job.line).trim_end(), "call record not written");
                    }
                }
            }
            for job in jobs {
                job.reply.send(result.clone());
            }
        }
    }
}

struct DailyFiles {
    dir: PathBuf,
    open: Option<(NaiveDate, PathBuf, File)>,
}

impl DailyFiles {
    fn append(&mut self, day: NaiveDate, buf: &[u8]) -> Result<PathBuf, RecordError> {
        if self.open.as_ref().is_none_or(|(d, _, _)| *d != day) {
            let path = self.dir.join(day_file_name(day));
            std::fs::create_dir_all(&self.dir).map_err(|e| RecordError::io(&self.dir, e))?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(&path)
                .map_err(|e| RecordError::io(&path, e))?;
            self.open = Some((day, path, file));
        }
        let Some((_, path, file)) = self.open.as_mut() else {
            return Err(RecordError::Stopped);
        };
        let result = append_locked(file, buf).map_err(|e| RecordError::io(path, e));
        if result.is_err() {
            // Reopen next time (the file may have been moved or the disk remounted).
            let path = path.clone();
            self.open = None;
            return result.map(|_| path);
        }
        Ok(path.clone())
    }
}

/// Appends `buf` under an exclusive advisory lock, first ending a torn last line, then
/// syncs the data to disk.
fn append_locked(file: &mut File, buf: &[u8]) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, len - 1)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        file.write_all(buf)?;
        file.sync_data()
    })();
    // SAFETY: as above.
    unsafe { libc::flock(fd, libc::LOCK_UN) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(call_id: &str) -> CallRecord {
        let start = Utc.with_ymd_and_hms(2026, 11, 24, 23, 59, 58).unwrap();
        let mut r = CallRecord::new(call_id, "sip:13812345678@10.0.0.1", start);
        r.end = start + chrono::Duration::seconds(5);
        r.answer = Some(start);
        r.recognitions.push(RecognitionRecord {
            at_ms: 1200,
            node: "greeting".into(),
            text: "我的卡号是4111111111111111".into(),
            nbest: vec![Hypothesis {
                text: "我的卡号是4111111111111111".into(),
                confidence: 0.8,
            }],
            latency_ms: 310,
            no_match: false,
        });
        r.outcome = Outcome::Transferred;
        r.queue = Some(Queue::CreditCard);
        r
    }

    #[test]
    fn record_round_trips_and_is_masked() {
        let r = sample("c1");
        let line = r.to_line().unwrap();
        assert_eq!(*line.last().unwrap(), b'\n');
        let text = String::from_utf8(line).unwrap();
        assert!(!text.contains("4111111111111111"), "{text}");
        assert!(!text.contains("13812345678"), "{text}");
        assert!(text.contains("138****5678"), "{text}");
        let back: CallRecord = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(back.call_id, "c1");
        assert_eq!(back.queue, Some(Queue::CreditCard));
        assert_eq!(back.recognitions[0].text, "我的卡号是************1111");
    }

    #[test]
    fn unknown_outcome_and_fields_are_tolerated() {
        let mut v = serde_json::to_value(sample("c2")).unwrap();
        v["outcome"] = "teleported".into();
        v["future_field"] = 1.into();
        let back: CallRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back.outcome, Outcome::Other);
    }

    #[test]
    fn writes_to_the_daily_file_and_repairs_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let w = RecordWriter::start(dir.path()).unwrap();
        let r = sample("c3");
        let path = dir.path().join("2026-11-25.jsonl");
        std::fs::write(&path, b"{\"call_id\":\"torn").unwrap();
        let written = w.write_blocking(&r).unwrap();
        assert_eq!(written, path);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "{\"call_id\":\"torn");
        assert!(serde_json::from_str::<CallRecord>(lines[1]).is_ok());
    }

    #[test]
    fn unwritable_folder_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            RecordWriter::start(&file),
            Err(RecordError::Io { .. })
        ));
    }
}
