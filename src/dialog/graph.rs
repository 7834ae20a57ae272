//! The dialog graph of a [`FlowSet`] (petgraph): reachability, dead ends and input-free
//! loops for validation, and Graphviz DOT / SVG drawings for `voicenav flows graph`.
//!
//! Vertices are the nodes plus one `END` vertex; an edge per transition (globals are
//! edges of every listening node). An edge *consumes caller input* when it leaves a
//! listening node on a caller event; `then:` edges are taken at once. A cycle made only of
//! the latter could spin forever without the caller doing anything and is an error.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeFiltered, Reversed};

use super::load::{CTransition, EventMatch, FlowSet, Step, Target};
use crate::yaml::Diagnostic;

/// Edge label and whether the edge waits for the caller.
#[derive(Debug, Clone)]
pub struct EdgeInfo {
    pub label: String,
    pub input: bool,
}

/// The graph: vertex `i < nodes.len()` is node `i`; the last vertex is `END`.
pub struct DialogGraph {
    pub graph: DiGraph<String, EdgeInfo>,
    pub end: NodeIndex,
}

impl DialogGraph {
    pub fn build(set: &FlowSet) -> DialogGraph {
        let mut g = DiGraph::new();
        for n in &set.nodes {
            g.add_node(n.id.clone());
        }
        let end = g.add_node("END".to_string());
        for (i, n) in set.nodes.iter().enumerate() {
            let from = NodeIndex::new(i);
            let input = n.listen.is_some();
            let globals: &[CTransition] = if input { &set.globals } else { &[] };
            for t in n.on.iter().chain(&n.then).chain(globals) {
                let label = edge_label(t);
                let to = match t.step {
                    Step::Goto(j) => NodeIndex::new(j),
                    Step::Repeat | Step::Stay => from,
                    Step::Transfer(_) => {
                        if let Some(tf) = set.transfer_failed {
                            g.add_edge(
                                from,
                                NodeIndex::new(tf),
                                EdgeInfo {
                                    label: "transfer failed".into(),
                                    input: true,
                                },
                            );
                        }
                        end
                    }
                    Step::Hangup => end,
                };
                g.add_edge(from, to, EdgeInfo { label, input });
            }
        }
        DialogGraph { graph: g, end }
    }
}

/// Graph checks: unreachable nodes, dead ends, loops without caller input.
pub fn check(set: &FlowSet) -> Vec<Diagnostic> {
    let dg = DialogGraph::build(set);
    let g = &dg.graph;
    let mut diags = Vec::new();
    let mut reach = vec![false; g.node_count()];
    let mut dfs = Dfs::new(g, NodeIndex::new(set.entry));
    while let Some(v) = dfs.next(g) {
        reach[v.index()] = true;
    }
    let mut ends = vec![false; g.node_count()];
    let rev = Reversed(g);
    let mut dfs = Dfs::new(rev, dg.end);
    while let Some(v) = dfs.next(rev) {
        ends[v.index()] = true;
    }
    let main_entry = &set.nodes[set.entry].id;
    for (i, n) in set.nodes.iter().enumerate() {
        if !reach[i] {
            diags.push(Diagnostic {
                pos: n.pos.clone(),
                message: format!(
                    "unreachable node `{}`: no path from `{main_entry}` leads here",
                    n.id
                ),
            });
        } else if !ends[i] {
            diags.push(Diagnostic {
                pos: n.pos.clone(),
                message: format!(
                    "dead end: from node `{}` no path ends the call (transfer or hangup)",
                    n.id
                ),
            });
        }
    }
    let eps = EdgeFiltered::from_fn(g, |e| !e.weight().input);
    for scc in tarjan_scc(&eps) {
        let self_loop = scc.len() == 1
            && g.edges_connecting(scc[0], scc[0])
                .any(|e| !e.weight().input);
        if scc.len() > 1 || self_loop {
            let mut ids: Vec<usize> = scc
                .iter()
                .map(|v| v.index())
                .filter(|&i| i < set.nodes.len())
                .collect();
            ids.sort_unstable();
            let cycle: Vec<&str> = ids.iter().map(|&i| set.nodes[i].id.as_str()).collect();
            if let Some(&first) = ids.first() {
                diags.push(Diagnostic {
                    pos: set.nodes[first].pos.clone(),
                    message: format!(
                        "loop without caller input: {} → {} (add a `listen:` somewhere in it)",
                        cycle.join(" → "),
                        cycle[0]
                    ),
                });
            }
        }
    }
    diags
}

fn edge_label(t: &CTransition) -> String {
    let mut s = match &t.event {
        EventMatch::Always => String::new(),
        EventMatch::Intent {
            queue,
            scenario,
            decisions,
            min_confidence,
        } => {
            let mut parts = Vec::new();
            if let Some(q) = queue {
                parts.push(q.to_string());
            }
            if let Some(sc) = scenario {
                parts.push(sc.clone());
            }
            for d in decisions {
                parts.push(format!("{d:?}").to_lowercase());
            }
            if *min_confidence > 0.0 {
                parts.push(format!("≥{min_confidence}"));
            }
            format!("intent {}", parts.join(" "))
        }
        EventMatch::Keywords(k) => format!(
            "says {}",
            k.iter().take(3).cloned().collect::<Vec<_>>().join("/")
        ),
        EventMatch::Dtmf(c) => format!("key {c}"),
        EventMatch::NoInput(n) => format!("no-input {n}"),
        EventMatch::NoMatch(n) => format!("no-match {n}"),
        EventMatch::Yes => "yes".into(),
        EventMatch::No => "no".into(),
        EventMatch::Correction => "no + correction".into(),
        EventMatch::Collected => "digits ok".into(),
        EventMatch::Invalid(n) => format!("invalid {n}"),
    };
    if let Some(g) = t.guard {
        let _ = write!(s, " if {}{:?}", if g.negate { "!" } else { "" }, g.cond);
    }
    if let Step::Transfer(target) = t.step {
        let q = match target {
            Target::Queue(q) => q.to_string(),
            Target::Intent => "$intent".into(),
            Target::Pending => "$pending".into(),
        };
        let _ = write!(s, " ⇒ transfer {q}");
    }
    s.trim().to_string()
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// DOT text of one flow (`flow` = flow name): its nodes, and the nodes of other flows it
/// leads to drawn dashed. Transfers and hang-ups end in their own small vertices.
pub fn to_dot(set: &FlowSet, flow: &str) -> Option<String> {
    if !set.nodes.iter().any(|n| n.flow == flow) {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(flow));
    let _ = writeln!(
        out,
        "  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Noto Sans CJK SC\"];"
    );
    let mut external = std::collections::BTreeSet::new();
    let mut term = 0usize;
    for (i, n) in set.nodes.iter().enumerate() {
        if n.flow != flow {
            continue;
        }
        let prompt = n
            .prompts
            .first()
            .map(|p| p.text.chars().take(24).collect::<String>())
            .unwrap_or_default();
        let shape = if n.listen.is_some() {
            ""
        } else {
            ", style=\"rounded,dashed\""
        };
        let entry = if i == set.entry { ", penwidth=2" } else { "" };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\"{shape}{entry}];",
            esc(&n.id),
            esc(&n.id),
            esc(&prompt)
        );
        let globals: &[CTransition] = if n.listen.is_some() {
            &set.globals
        } else {
            &[]
        };
        for t in n.on.iter().chain(&n.then).chain(globals) {
            let label = esc(&edge_label(t));
            let target = match t.step {
                Step::Goto(j) => {
                    if set.nodes[j].flow != flow {
                        external.insert(j);
                    }
                    set.nodes[j].id.clone()
                }
                Step::Repeat | Step::Stay => n.id.clone(),
                Step::Transfer(_) | Step::Hangup => {
                    term += 1;
                    let (name, label) = match t.step {
                        Step::Hangup => (format!("hangup{term}"), "hang up".to_string()),
                        _ => (format!("transfer{term}"), "transfer".to_string()),
                    };
                    let _ = writeln!(out, "  \"{name}\" [label=\"{label}\", shape=ellipse];");
                    name
                }
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [label=\"{label}\"];",
                esc(&n.id),
                esc(&target)
            );
        }
    }
    for j in external {
        let _ = writeln!(
            out,
            "  \"{}\" [style=\"rounded,dashed\", color=gray];",
            esc(&set.nodes[j].id)
        );
    }
    out.push_str("}\n");
    Some(out)
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("Graphviz `dot` could not be run ({0}); install graphviz (scripts/setup.sh does)")]
    DotMissing(std::io::Error),
    #[error("Graphviz `dot` failed: {0}")]
    DotFailed(String),
}

/// Renders DOT text to SVG with Graphviz's `dot -Tsvg`.
pub fn to_svg(dot: &str) -> Result<Vec<u8>, GraphError> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(GraphError::DotMissing)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| GraphError::DotFailed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| GraphError::DotFailed(e.to_string()))?;
    if !out.status.success() {
        return Err(GraphError::DotFailed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(out.stdout)
}

/// The flow name a `flows graph FLOW` argument means: a file's `flow:` name, or a name.
pub fn flow_name_of(arg: &Path) -> Option<String> {
    if arg.is_file() {
        let text = std::fs::read_to_string(arg).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("flow:"))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
    } else {
        arg.to_str()
            .map(|s| s.trim_end_matches(".yaml").to_string())
    }
}
