//! Offline sources driving the same call pipeline: scripted calls ([`script`], text
//! turns through `nlu` and the real dialog runtime on a fake clock). Recorded calls
//! (WAV/pcap) and the `--audio` variant of scripted calls plug into
//! [`script::run_call`] with their own way of hearing a `say` turn.

pub mod script;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::config::Config;
use crate::dialog::{CallerDirectory, FlowSet};
use crate::nlu::IntentClassifier;

/// The classifier of a flows folder (its `catalog/`), as the server and replay use it.
pub fn classifier_for(
    flows: &Path,
) -> Result<Arc<dyn IntentClassifier>, Vec<crate::yaml::Diagnostic>> {
    crate::dialog::classifier_for(flows)
}

/// `voicenav replay --script CALLS.yaml`: one JSON line per call; exit 1 if any call
/// failed its `expect`, 2 on bad input.
pub fn run_script(script: &Path, flows_dir: &Path, config: &Path) -> anyhow::Result<ExitCode> {
    let calls = script::load_calls(script).map_err(|d| anyhow::anyhow!("{d}"))?;
    let directory = caller_directory(config)?;
    let classifier = classifier_for(flows_dir).map_err(diagnostics)?;
    let flows = Arc::new(FlowSet::load(flows_dir, classifier.clone()).map_err(diagnostics)?);
    let t0 = Instant::now();
    let mut failed = 0usize;
    let mut simulated = std::time::Duration::ZERO;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for call in &calls {
        let mut hear = |text: &str| classifier.classify(text);
        let r = script::run_call(call, flows.clone(), &directory, &mut hear);
        simulated += r.simulated;
        if r.passed == Some(false) {
            failed += 1;
            eprintln!("FAIL {}: {}", r.id, r.failures.join("; "));
            for line in &r.trace {
                eprintln!("    {line}");
            }
        }
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    }
    let took = t0.elapsed();
    tracing::info!(
        calls = calls.len(),
        failed,
        took_ms = took.as_millis() as u64,
        simulated_s = simulated.as_secs(),
        calls_per_s = (calls.len() as f64 / took.as_secs_f64().max(1e-9)).round(),
        "scripted calls replayed"
    );
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Seniors and dialect areas from the configuration's paths (the shipped ones when the
/// configuration file is absent).
pub fn caller_directory(config: &Path) -> anyhow::Result<CallerDirectory> {
    let (seniors, areas) = match Config::load(config) {
        Ok(c) => (c.raw.paths.seniors, c.raw.paths.dialect_areas),
        Err(e) if !config.exists() => {
            tracing::debug!("{e}; using sip-config/ defaults");
            (
                "sip-config/seniors.txt".into(),
                "sip-config/dialect_areas.yaml".into(),
            )
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    CallerDirectory::load(&seniors, &areas)
        .map_err(|d| anyhow::anyhow!("{d}"))
        .context("loading the caller lists")
}

fn diagnostics(d: Vec<crate::yaml::Diagnostic>) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        d.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    )
}
