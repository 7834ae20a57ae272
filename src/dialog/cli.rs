//! `voicenav flows validate [DIR]` and `voicenav flows graph FLOW [--format dot|svg]`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::graph;
use super::FlowSet;
use crate::cli::GraphFormat;

/// Validates every flow in `dir` against its catalogue; each error on stdout as
/// `file:line:col: message`; exit 1 on any.
pub fn validate_command(dir: &Path) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        anyhow::bail!("{}: not a flows folder", dir.display());
    }
    let diags = match super::classifier_for(dir) {
        Ok(c) => match FlowSet::load(dir, c) {
            Ok(set) => {
                eprintln!("{}: {} nodes, all valid", dir.display(), set.nodes.len());
                return Ok(ExitCode::SUCCESS);
            }
            Err(d) => d,
        },
        Err(d) => d,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for d in &diags {
        writeln!(out, "{d}")?;
    }
    eprintln!("{} error(s)", diags.len());
    Ok(ExitCode::from(1))
}

/// Draws one flow. `flow` is a flow file (its folder is the flows folder) or a flow name
/// inside `flows/`.
pub fn graph_command(flow: &Path, format: GraphFormat) -> anyhow::Result<ExitCode> {
    let dir: PathBuf = if flow.is_file() {
        flow.parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| ".".into())
    } else {
        PathBuf::from("flows")
    };
    let name = graph::flow_name_of(flow)
        .ok_or_else(|| anyhow::anyhow!("{}: no `flow:` name", flow.display()))?;
    let classifier = super::classifier_for(&dir).map_err(join)?;
    let set = FlowSet::load(&dir, classifier).map_err(join)?;
    let Some(dot) = graph::to_dot(&set, &name) else {
        let mut names: Vec<&str> = set.nodes.iter().map(|n| n.flow.as_str()).collect();
        names.dedup();
        anyhow::bail!(
            "no flow `{name}` in {} (flows: {})",
            dir.display(),
            names.join(", ")
        );
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        GraphFormat::Dot => out.write_all(dot.as_bytes())?,
        GraphFormat::Svg => out.write_all(&graph::to_svg(&dot)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn join(d: Vec<crate::yaml::Diagnostic>) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        d.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    )
}
