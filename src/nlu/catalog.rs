//! The scenario catalogue: `flows/catalog/*.yaml`, one file per business line.
//!
//! A file names its `queue` and lists `scenarios` written out one by one, plus optional
//! `matrix` blocks (products × service actions) that expand into named scenarios, so that
//! ≥2,480 scenarios stay maintainable. An expanded scenario has the id
//! `<action id>.<product id>`, the name of the action with `{product}` filled in, and the
//! action's examples with `{product}` replaced by the product's name and aliases in turn.
//! A scenario written out explicitly with the id of an expanded one replaces it, so a flow
//! designer can edit any single scenario.
//!
//! ```yaml
//! queue: credit_card
//! scenarios:
//!   - id: credit_card.bill_query
//!     name: 信用卡账单查询
//!     examples: [我想查一下信用卡账单, 这个月信用卡欠了多少钱]
//!     keywords: [账单]
//!     synonyms: {账单: [对账单, 账单明细]}
//!     answer: 您可以在手机银行查看本期账单。   # or `transfer: credit_card` (default: own queue)
//! matrix:
//!   - products: [{id: platinum, name: 白金卡, aliases: [白金信用卡]}]
//!     actions:
//!       - id: credit_card.bill_query          # expands to credit_card.bill_query.platinum
//!         name: "{product}账单查询"
//!         examples: ["{product}的账单查一下"]
//! ```
//!
//! Validation (every error as `file:line:col: message`): unknown queues, ids outside their
//! queue, ids not under one of the 39 core ids of their queue (for queues that have core
//! ids), duplicate ids, scenarios without examples, missing core ids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::routing::{core_of, Queue, CORE_SCENARIOS};
use crate::yaml::{self, Diagnostic, SourcePos};

/// What a scenario does once recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioAction {
    /// Transfer to this queue (by default the scenario's own).
    Transfer(Queue),
    /// A short self-service answer read to the caller.
    Answer(String),
}

/// One scenario of the catalogue, after matrix expansion.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub name: String,
    pub queue: Queue,
    /// The core id it counts for (`None` for queues without core ids).
    pub core: Option<&'static str>,
    pub examples: Vec<String>,
    pub keywords: Vec<String>,
    /// canonical word → other ways of saying it.
    pub synonyms: Vec<(String, Vec<String>)>,
    pub action: ScenarioAction,
    /// Where it is defined (the action line for expanded scenarios).
    pub pos: SourcePos,
    /// Whether it came from a matrix block.
    pub expanded: bool,
}

/// The loaded catalogue.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub scenarios: Vec<Scenario>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// Reads every `*.yaml` / `*.yml` file of `dir` (sorted by name) and validates the whole.
    pub fn load_dir(dir: &Path) -> Result<Catalog, Vec<Diagnostic>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![Diagnostic::new(
                dir,
                1,
                1,
                format!("cannot read catalogue folder: {e}"),
            )]
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(vec![Diagnostic::new(
                dir,
                1,
                1,
                "no catalogue files (*.yaml) in this folder",
            )]);
        }
        let mut sources = Vec::new();
        let mut diags = Vec::new();
        for f in files {
            match std::fs::read_to_string(&f) {
                Ok(text) => sources.push((f, text)),
                Err(e) => diags.push(Diagnostic::new(&f, 1, 1, format!("cannot read: {e}"))),
            }
        }
        match Catalog::from_sources(&sources) {
            Ok(c) if diags.is_empty() => Ok(c),
            Ok(_) => Err(diags),
            Err(mut d) => {
                diags.append(&mut d);
                Err(diags)
            }
        }
    }

    /// Builds a catalogue from `(file name, YAML text)` pairs.
    pub fn from_sources(sources: &[(PathBuf, String)]) -> Result<Catalog, Vec<Diagnostic>> {
        let mut diags = Vec::new();
        let mut explicit: Vec<Scenario> = Vec::new();
        let mut expanded: Vec<Scenario> = Vec::new();
        let mut first_file_of_queue: BTreeMap<Queue, PathBuf> = BTreeMap::new();
        for (file, text) in sources {
            let raw: RawFile = match yaml::parse(file, text) {
                Ok(r) => r,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            let file_queue = match raw.queue.value.parse::<Queue>() {
                Ok(q) => q,
                Err(e) => {
                    diags.push(Diagnostic {
                        pos: yaml::pos_of(file, &raw.queue),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            first_file_of_queue
                .entry(file_queue)
                .or_insert_with(|| file.clone());
            for s in raw.scenarios {
                if let Some(sc) = check_scenario(file, file_queue, s, &mut diags) {
                    explicit.push(sc);
                }
            }
            for m in raw.matrix {
                expand_matrix(file, file_queue, m, &mut expanded, &mut diags);
            }
        }
        // Explicit scenarios: duplicates are errors. Expanded ones: duplicates among
        // themselves are errors; an explicit one with the same id replaces an expanded one.
        let mut seen: HashMap<String, SourcePos> = HashMap::new();
        let mut scenarios = Vec::new();
        for s in explicit {
            if let Some(first) = seen.get(&s.id) {
                diags.push(Diagnostic {
                    pos: s.pos.clone(),
                    message: format!(
                        "duplicate scenario id `{}` (first defined at {first})",
                        s.id
                    ),
                });
                continue;
            }
            seen.insert(s.id.clone(), s.pos.clone());
            scenarios.push(s);
        }
        let explicit_ids: std::collections::HashSet<String> = seen.keys().cloned().collect();
        let mut seen_expanded: HashMap<String, SourcePos> = HashMap::new();
        for s in expanded {
            if let Some(first) = seen_expanded.get(&s.id) {
                diags.push(Diagnostic {
                    pos: s.pos.clone(),
                    message: format!(
                        "duplicate scenario id `{}` from matrix expansion (first at {first})",
                        s.id
                    ),
                });
                continue;
            }
            seen_expanded.insert(s.id.clone(), s.pos.clone());
            if !explicit_ids.contains(&s.id) {
                scenarios.push(s);
            }
        }
        for core in CORE_SCENARIOS {
            if !scenarios.iter().any(|s| s.id == core) {
                let q = Queue::of_scenario(core);
                let file = q
                    .and_then(|q| first_file_of_queue.get(&q).cloned())
                    .or_else(|| sources.first().map(|(f, _)| f.clone()))
                    .unwrap_or_default();
                diags.push(Diagnostic::new(
                    file,
                    1,
                    1,
                    format!("core scenario `{core}` is missing from the catalogue"),
                ));
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let index = scenarios
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        Ok(Catalog { scenarios, index })
    }

    pub fn get(&self, id: &str) -> Option<&Scenario> {
        self.index.get(id).map(|&i| &self.scenarios[i])
    }

    pub fn len(&self) -> usize {
        self.scenarios.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scenarios.is_empty()
    }

    /// Scenario count per queue (every queue listed, zero included).
    pub fn stats(&self) -> CatalogStats {
        let mut per_queue: BTreeMap<String, usize> = Queue::ALL
            .iter()
            .map(|q| (q.as_str().to_string(), 0))
            .collect();
        let mut examples = 0;
        let mut expanded = 0;
        for s in &self.scenarios {
            *per_queue.entry(s.queue.as_str().to_string()).or_default() += 1;
            examples += s.examples.len();
            expanded += usize::from(s.expanded);
        }
        let core = CORE_SCENARIOS
            .iter()
            .filter(|c| self.index.contains_key(**c))
            .count();
        CatalogStats {
            total: self.scenarios.len(),
            core,
            expanded,
            examples,
            queues: per_queue,
        }
    }
}

/// `voicenav catalog stats` output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CatalogStats {
    pub total: usize,
    /// Core ids present (39 when complete).
    pub core: usize,
    /// Scenarios produced by matrix blocks.
    pub expanded: usize,
    pub examples: usize,
    pub queues: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    queue: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    scenarios: Vec<RawScenario>,
    #[serde(default)]
    matrix: Vec<RawMatrix>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    queue: Option<Spanned<String>>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    synonyms: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    transfer: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    products: Vec<RawProduct>,
    actions: Vec<RawAction>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    answer: Option<String>,
    #[serde(default)]
    transfer: Option<Spanned<String>>,
    /// Only these product ids (default: all of the block).
    #[serde(default)]
    only: Vec<String>,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Checks id shape, queue membership and core ancestry; the core it counts for.
fn check_id(
    file: &Path,
    pos: &SourcePos,
    id: &str,
    queue: Queue,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<&'static str>> {
    if !valid_id(id) {
        diags.push(Diagnostic {
            pos: pos.clone(),
            message: format!("scenario id `{id}` must be dotted lower-case segments (a-z, 0-9, _)"),
        });
        return None;
    }
    if Queue::of_scenario(id) != Some(queue) || !id.contains('.') {
        diags.push(Diagnostic {
            pos: pos.clone(),
            message: format!(
                "scenario id `{id}` is outside its queue `{queue}` (ids start with `{queue}.`)"
            ),
        });
        return None;
    }
    let queue_has_cores = CORE_SCENARIOS
        .iter()
        .any(|c| Queue::of_scenario(c) == Some(queue));
    let core = core_of(id);
    if queue_has_cores && core.is_none() {
        let cores: Vec<&str> = CORE_SCENARIOS
            .iter()
            .copied()
            .filter(|c| Queue::of_scenario(c) == Some(queue))
            .collect();
        diags.push(Diagnostic {
            pos: pos.clone(),
            message: format!(
                "scenario id `{id}` does not hang under a core id of `{queue}` ({})",
                cores.join(", ")
            ),
        });
        let _ = file;
        return None;
    }
    Some(core)
}

fn check_transfer(
    file: &Path,
    transfer: Option<Spanned<String>>,
    answer: Option<String>,
    queue: Queue,
    diags: &mut Vec<Diagnostic>,
) -> Option<ScenarioAction> {
    match (transfer, answer) {
        (Some(t), Some(_)) => {
            diags.push(Diagnostic {
                pos: yaml::pos_of(file, &t),
                message: "a scenario has either `transfer` or `answer`, not both".into(),
            });
            None
        }
        (Some(t), None) => match t.value.parse::<Queue>() {
            Ok(q) => Some(ScenarioAction::Transfer(q)),
            Err(e) => {
                diags.push(Diagnostic {
                    pos: yaml::pos_of(file, &t),
                    message: format!("transfer: {e}"),
                });
                None
            }
        },
        (None, Some(a)) => Some(ScenarioAction::Answer(a)),
        (None, None) => Some(ScenarioAction::Transfer(queue)),
    }
}

fn check_scenario(
    file: &Path,
    file_queue: Queue,
    s: RawScenario,
    diags: &mut Vec<Diagnostic>,
) -> Option<Scenario> {
    let pos = yaml::pos_of(file, &s.id);
    let mut queue = file_queue;
    if let Some(q) = &s.queue {
        match q.value.parse::<Queue>() {
            Ok(parsed) if parsed == file_queue => queue = parsed,
            Ok(parsed) => {
                diags.push(Diagnostic {
                    pos: yaml::pos_of(file, q),
                    message: format!(
                        "scenario queue `{parsed}` differs from the file's queue `{file_queue}`"
                    ),
                });
                return None;
            }
            Err(e) => {
                diags.push(Diagnostic {
                    pos: yaml::pos_of(file, q),
                    message: e.to_string(),
                });
                return None;
            }
        }
    }
    let core = check_id(file, &pos, &s.id.value, queue, diags)?;
    let examples: Vec<String> = s
        .examples
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if examples.is_empty() {
        diags.push(Diagnostic {
            pos: pos.clone(),
            message: format!(
                "scenario `{}` has no examples (add natural caller phrasings)",
                s.id.value
            ),
        });
        return None;
    }
    if s.name.trim().is_empty() {
        diags.push(Diagnostic {
            pos: pos.clone(),
            message: format!("scenario `{}` has an empty name", s.id.value),
        });
        return None;
    }
    let action = check_transfer(file, s.transfer, s.answer, queue, diags)?;
    Some(Scenario {
        id: s.id.value,
        name: s.name,
        queue,
        core,
        examples,
        keywords: s.keywords,
        synonyms: s.synonyms.into_iter().collect(),
        action,
        pos,
        expanded: false,
    })
}

fn expand_matrix(
    file: &Path,
    queue: Queue,
    m: RawMatrix,
    out: &mut Vec<Scenario>,
    diags: &mut Vec<Diagnostic>,
) {
    for p in &m.products {
        if !valid_id(&p.id.value) || p.id.value.contains('.') {
            diags.push(Diagnostic {
                pos: yaml::pos_of(file, &p.id),
                message: format!(
                    "product id `{}` must be one lower-case segment (a-z, 0-9, _)",
                    p.id.value
                ),
            });
        }
    }
    for a in m.actions {
        let pos = yaml::pos_of(file, &a.id);
        let Some(core) = check_id(file, &pos, &a.id.value, queue, diags) else {
            continue;
        };
        if a.examples.is_empty() {
            diags.push(Diagnostic {
                pos: pos.clone(),
                message: format!("matrix action `{}` has no examples", a.id.value),
            });
            continue;
        }
        for o in &a.only {
            if !m.products.iter().any(|p| &p.id.value == o) {
                diags.push(Diagnostic {
                    pos: pos.clone(),
                    message: format!(
                        "matrix action `{}` names unknown product `{o}` in `only`",
                        a.id.value
                    ),
                });
            }
        }
        let Some(action) = check_transfer(file, a.transfer, a.answer, queue, diags) else {
            continue;
        };
        for p in &m.products {
            if !a.only.is_empty() && !a.only.contains(&p.id.value) {
                continue;
            }
            let variants: Vec<&str> = std::iter::once(p.name.as_str())
                .chain(p.aliases.iter().map(|s| s.as_str()))
                .collect();
            let fill = |t: &str, i: usize| t.replace("{product}", variants[i % variants.len()]);
            let name = if a.name.contains("{product}") {
                fill(&a.name, 0)
            } else {
                format!("{}{}", p.name, a.name)
            };
            let examples: Vec<String> = a
                .examples
                .iter()
                .enumerate()
                .map(|(i, e)| fill(e, i))
                .collect();
            let mut keywords: Vec<String> = a.keywords.iter().map(|k| fill(k, 0)).collect();
            keywords.push(p.name.clone());
            out.push(Scenario {
                id: format!("{}.{}", a.id.value, p.id.value),
                name,
                queue,
                core,
                examples,
                keywords,
                synonyms: vec![(p.name.clone(), p.aliases.clone())],
                action: action.clone(),
                pos: pos.clone(),
                expanded: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_core_sources() -> Vec<(PathBuf, String)> {
        let mut by_queue: BTreeMap<&str, String> = BTreeMap::new();
        for c in CORE_SCENARIOS {
            let q = c.split('.').next().unwrap_or_default();
            let entry = by_queue
                .entry(q)
                .or_insert_with(|| format!("queue: {q}\nscenarios:\n"));
            entry.push_str(&format!(
                "  - id: {c}\n    name: 名称\n    examples: [例句]\n"
            ));
        }
        by_queue
            .into_iter()
            .map(|(q, t)| (PathBuf::from(format!("{q}.yaml")), t))
            .collect()
    }

    #[test]
    fn complete_catalogue_loads_and_matrix_expands() {
        let mut src = full_core_sources();
        src.push((
            PathBuf::from("extra.yaml"),
            "queue: credit_card\nmatrix:\n  - products:\n      - {id: gold, name: 金卡, aliases: [金色的卡]}\n      - {id: platinum, name: 白金卡}\n    actions:\n      - id: credit_card.bill_query\n        name: \"{product}账单查询\"\n        examples: [\"{product}账单\", \"查{product}账单\"]\n".into(),
        ));
        let c = Catalog::from_sources(&src).unwrap();
        assert_eq!(c.len(), 41);
        let s = c.get("credit_card.bill_query.gold").unwrap();
        assert_eq!(s.name, "金卡账单查询");
        assert_eq!(s.examples, vec!["金卡账单", "查金色的卡账单"]);
        assert_eq!(s.core, Some("credit_card.bill_query"));
        assert_eq!(c.stats().queues["credit_card"], 10);
    }

    #[test]
    fn errors_carry_file_line_col() {
        let mut src = full_core_sources();
        src.push((
            PathBuf::from("bad.yaml"),
            "queue: loan\nscenarios:\n  - id: loan.mortgage\n    name: 重复\n    examples: [x]\n  - id: credit_card.points.x\n    name: 越界\n    examples: [x]\n  - id: loan.mortgage.rate\n    name: 无例句\n".into(),
        ));
        src.push((PathBuf::from("q.yaml"), "queue: banking\n".into()));
        let errs = Catalog::from_sources(&src).unwrap_err();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("bad.yaml:3:") && t.contains("duplicate")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("bad.yaml:6:") && t.contains("outside its queue")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("bad.yaml:9:") && t.contains("no examples")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("q.yaml:1:") && t.contains("unknown queue")),
            "{text:?}"
        );
    }

    #[test]
    fn missing_core_and_non_core_ids_are_errors() {
        let mut src = full_core_sources();
        src.retain(|(f, _)| f != Path::new("pension.yaml"));
        src.push((
            PathBuf::from("x.yaml"),
            "queue: health\nscenarios:\n  - id: health.gym\n    name: 健身\n    examples: [健身房]\n".into(),
        ));
        let errs = Catalog::from_sources(&src).unwrap_err();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("pension.annuity_query") && t.contains("missing")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("x.yaml:3:") && t.contains("core id")),
            "{text:?}"
        );
    }
}
