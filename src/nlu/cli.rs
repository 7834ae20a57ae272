//! `voicenav classify` and `voicenav catalog stats` (CLI contract of ARCHITECTURE.md).
//!
//! `classify` reads one utterance per line and writes one JSON object per line. A line
//! that cannot be classified (empty, not UTF-8, longer than [`MAX_LINE_CHARS`]) gets a
//! JSON error object `{"line","error"}` instead; the next line still works.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use super::{IntentClassifier, Nlu};
use crate::yaml::Diagnostic;

/// Longest line classified; longer ones get an error object.
pub const MAX_LINE_CHARS: usize = 2000;

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

/// Loads the NLU for a command, printing diagnostics on failure.
fn load(flows: &Path) -> Option<Nlu> {
    match Nlu::load(flows) {
        Ok(n) => {
            tracing::info!(
                scenarios = n.report.scenarios,
                examples = n.report.examples,
                millis = n.report.millis as u64,
                "classifier trained"
            );
            Some(n)
        }
        Err(d) => {
            print_diagnostics(&d);
            eprintln!(
                "voicenav: the scenario catalogue or grammars have {} error(s)",
                d.len()
            );
            None
        }
    }
}

/// `voicenav classify`: stdin → JSON lines on stdout.
pub fn classify_command(flows: &Path) -> anyhow::Result<ExitCode> {
    let Some(nlu) = load(flows) else {
        return Ok(ExitCode::from(1));
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    classify_stream(&nlu, stdin.lock(), stdout.lock())?;
    Ok(ExitCode::SUCCESS)
}

/// Classifies every line of `input` into `output` (JSON lines).
pub fn classify_stream(
    nlu: &Nlu,
    mut input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let json = match classify_line(nlu, &buf) {
            Ok(c) => serde_json::to_string(&c),
            Err(e) => serde_json::to_string(&serde_json::json!({"line": line_no, "error": e})),
        }
        .map_err(std::io::Error::other)?;
        writeln!(output, "{json}")?;
        output.flush()?;
    }
    Ok(())
}

fn classify_line(nlu: &Nlu, bytes: &[u8]) -> Result<super::Classification, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err("empty line".into());
    }
    let chars = text.chars().count();
    if chars > MAX_LINE_CHARS {
        return Err(format!(
            "line too long: {chars} characters (limit {MAX_LINE_CHARS})"
        ));
    }
    Ok(nlu.classify(text))
}

/// `voicenav catalog stats [--json]`.
pub fn stats_command(flows: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let catalog = match super::catalog::Catalog::load_dir(&flows.join("catalog")) {
        Ok(c) => c,
        Err(d) => {
            print_diagnostics(&d);
            eprintln!("voicenav: the scenario catalogue has {} error(s)", d.len());
            return Ok(ExitCode::from(1));
        }
    };
    let stats = catalog.stats();
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else {
        println!("{:<20} {:>6}", "queue", "scenarios");
        for (q, n) in &stats.queues {
            println!("{q:<20} {n:>6}");
        }
        println!("{:<20} {:>6}", "total", stats.total);
        println!(
            "core ids present: {}/39, from matrix blocks: {}, examples: {}",
            stats.core, stats.expanded, stats.examples
        );
    }
    Ok(ExitCode::SUCCESS)
}
