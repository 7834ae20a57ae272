//! Understanding the caller: normalisation, the scenario catalogue, and the intent
//! classifier with calibrated confidence.
//!
//! The types below are the contract the rest of voicenav uses ([`Classification`],
//! [`Decision`], the [`IntentClassifier`] trait); the dialog runtime consumes a
//! [`Classification`] per caller utterance.

pub mod compliance;

use serde::{Deserialize, Serialize};

use crate::routing::Queue;

/// What to do with a classified utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Confident: transfer (or answer) straight away.
    Route,
    /// Likely but not sure: ask "您是要…吗？".
    Confirm,
    /// Vague: ask a narrower question.
    Clarify,
}

/// One ranked alternative scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub scenario: String,
    pub confidence: f32,
}

/// The classifier's answer for one utterance (the JSON line of `voicenav classify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub text: String,
    pub queue: Option<Queue>,
    pub scenario: Option<String>,
    pub confidence: f32,
    pub decision: Decision,
    pub alternatives: Vec<Alternative>,
}

/// What the dialog runtime needs from the NLU side.
pub trait IntentClassifier: Send + Sync {
    /// Classifies one utterance (a final ASR result or typed text).
    fn classify(&self, text: &str) -> Classification;
    /// Classifies an ASR n-best list (text, recogniser confidence), picking the
    /// best-supported scenario across hypotheses.
    fn classify_nbest(&self, hypotheses: &[(String, f32)]) -> Classification {
        match hypotheses.first() {
            Some((text, _)) => self.classify(text),
            None => self.classify(""),
        }
    }
    /// The Chinese name of a scenario (for confirmation prompts).
    fn scenario_name(&self, scenario: &str) -> Option<String>;
    /// The self-service answer text of a scenario, if it has one.
    fn scenario_answer(&self, scenario: &str) -> Option<String>;
    /// Whether the catalogue has this scenario id.
    fn has_scenario(&self, scenario: &str) -> bool;
}

pub mod catalog;
pub mod cli;
pub mod eval;
pub mod features;
pub mod grammar;
pub mod model;
pub mod normalize;

use std::path::{Path, PathBuf};
use std::time::Duration;

use self::catalog::{Catalog, ScenarioAction};
use self::features::{Feature, FeatureMap, Featurizer};
use self::model::{softmax, LinearModel, TrainConfig};
use self::normalize::{phrase_lines, Normalizer};
use crate::yaml::Diagnostic;

/// Decision thresholds on the calibrated confidence of the top scenario group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// At or above: `route`.
    pub route: f32,
    /// At or above (and below `route`): `confirm`; below: `clarify`.
    pub confirm: f32,
    /// For `clarify`: the queue is still reported when this share of the probability
    /// (vague class left out) falls on one queue.
    pub queue: f32,
    /// Softmax temperature of the calibration.
    pub temperature: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            route: 0.5,
            confirm: 0.25,
            queue: 0.7,
            temperature: 0.08,
        }
    }
}

/// A class of the first-stage model: a core scenario (with everything under it), a
/// top-level scenario of a queue without core ids, or the vague class.
#[derive(Debug, Clone)]
struct Group {
    id: String,
    queue: Option<Queue>,
    /// Catalogue indices of the scenarios in the group (the group's own first, if any).
    members: Vec<usize>,
}

/// Second stage: TF-IDF centroids of the scenarios inside one group.
#[derive(Debug, Clone, Default)]
struct FineIndex {
    /// feature → (member position, weight).
    postings: FeatureMap<Vec<(u32, f32)>>,
}

/// Id of the vague class in alternatives and reports.
pub const VAGUE: &str = "-";

/// How long start-up took and what was built (for benchmarks and logs).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainReport {
    pub scenarios: usize,
    pub groups: usize,
    pub examples: usize,
    pub features: usize,
    pub millis: u128,
}

/// The NLU: catalogue + normaliser + classifier, trained at start-up.
#[derive(Debug, Clone)]
pub struct Nlu {
    catalog: Catalog,
    normalizer: Normalizer,
    featurizer: Featurizer,
    model: LinearModel,
    groups: Vec<Group>,
    fine: Vec<FineIndex>,
    vague: usize,
    pub thresholds: Thresholds,
    pub report: TrainReport,
}

/// Expanded (matrix) examples per group used for the first stage, so that large product
/// matrices do not drown the hand-written core phrasings.
const MAX_EXPANDED_PER_GROUP: usize = 160;

impl Nlu {
    /// Loads `flows_dir/catalog/*.yaml` and the grammars of the sibling `grammars/` folder
    /// (`flows_dir/../grammars`), then trains.
    pub fn load(flows_dir: &Path) -> Result<Nlu, Vec<Diagnostic>> {
        Nlu::load_with(flows_dir, &default_grammars_dir(flows_dir))
    }

    /// As [`Nlu::load`] with an explicit grammars folder.
    pub fn load_with(flows_dir: &Path, grammars: &Path) -> Result<Nlu, Vec<Diagnostic>> {
        let started = std::time::Instant::now();
        let catalog = Catalog::load_dir(&flows_dir.join("catalog"));
        let normalizer = Normalizer::load(grammars);
        let vague_file = grammars.join("vague.txt");
        let vague = std::fs::read_to_string(&vague_file)
            .map(|t| phrase_lines(&t))
            .map_err(|e| {
                vec![Diagnostic::new(
                    &vague_file,
                    1,
                    1,
                    format!("cannot read: {e}"),
                )]
            });
        let (catalog, normalizer, vague) = match (catalog, normalizer, vague) {
            (Ok(c), Ok(n), Ok(v)) => (c, n, v),
            (c, n, v) => {
                let mut d = Vec::new();
                d.extend(c.err().unwrap_or_default());
                d.extend(n.err().unwrap_or_default());
                d.extend(v.err().unwrap_or_default());
                return Err(d);
            }
        };
        let mut nlu = Nlu::train(catalog, normalizer, &vague);
        nlu.report.millis = started.elapsed().as_millis();
        Ok(nlu)
    }

    /// Trains on a loaded catalogue; `vague` are utterances that must be clarified.
    pub fn train(catalog: Catalog, normalizer: Normalizer, vague: &[String]) -> Nlu {
        // Groups.
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for (i, s) in catalog.scenarios.iter().enumerate() {
            let key = match s.core {
                Some(core) => core.to_string(),
                None => s.id.split('.').take(2).collect::<Vec<_>>().join("."),
            };
            let g = *group_of.entry(key.clone()).or_insert_with(|| {
                groups.push(Group {
                    id: key.clone(),
                    queue: Some(s.queue),
                    members: Vec::new(),
                });
                groups.len() - 1
            });
            if s.id == key {
                groups[g].members.insert(0, i);
            } else {
                groups[g].members.push(i);
            }
        }
        let vague_class = groups.len();
        groups.push(Group {
            id: VAGUE.to_string(),
            queue: None,
            members: Vec::new(),
        });

        // Keywords: canonical → surfaces.
        let mut kw: std::collections::BTreeMap<String, Vec<String>> =
            std::collections::BTreeMap::new();
        for s in &catalog.scenarios {
            for k in &s.keywords {
                kw.entry(k.clone()).or_default().push(k.clone());
            }
            for (canonical, others) in &s.synonyms {
                let e = kw.entry(canonical.clone()).or_default();
                e.push(canonical.clone());
                e.extend(others.iter().cloned());
            }
        }
        let keywords: Vec<(String, Vec<String>)> = kw
            .into_iter()
            .map(|(k, mut v)| {
                v.sort();
                v.dedup();
                (
                    normalizer.normalize(&k),
                    v.iter().map(|s| normalizer.normalize(s)).collect(),
                )
            })
            .collect();
        let featurizer = Featurizer::new(&keywords);

        // First-stage examples.
        let mut examples: Vec<(Vec<Feature>, usize)> = Vec::new();
        let mut scenario_feats: Vec<Vec<Vec<Feature>>> = vec![Vec::new(); catalog.len()];
        for (g, group) in groups.iter().enumerate() {
            let expanded: Vec<usize> = group
                .members
                .iter()
                .copied()
                .filter(|&i| catalog.scenarios[i].expanded)
                .collect();
            let stride = (expanded.len() / MAX_EXPANDED_PER_GROUP.max(1)).max(1);
            let mut expanded_taken = 0usize;
            for &i in &group.members {
                let s = &catalog.scenarios[i];
                let mut texts: Vec<String> = s.examples.clone();
                texts.push(s.name.clone());
                let feats: Vec<Vec<Feature>> = texts
                    .iter()
                    .map(|t| featurizer.extract(&normalizer.normalize(t)))
                    .filter(|f| !f.is_empty())
                    .collect();
                let take_all = !s.expanded;
                for (k, f) in feats.iter().enumerate() {
                    if take_all {
                        examples.push((f.clone(), g));
                    } else if k == 0 || k == 1 {
                        // A spread of expanded scenarios, two phrasings each.
                        let pos = expanded.iter().position(|&e| e == i).unwrap_or(0);
                        if pos % stride == 0 && expanded_taken < MAX_EXPANDED_PER_GROUP * 2 {
                            examples.push((f.clone(), g));
                            expanded_taken += 1;
                        }
                    }
                }
                scenario_feats[i] = feats;
            }
        }
        for v in vague {
            let f = featurizer.extract(&normalizer.normalize(v));
            if !f.is_empty() {
                examples.push((f, vague_class));
            }
        }
        let model = LinearModel::train(&examples, groups.len(), TrainConfig::default());

        // Second stage: TF-IDF centroids per group.
        let fine = groups
            .iter()
            .map(|g| build_fine(&g.members, &scenario_feats))
            .collect();
        let report = TrainReport {
            scenarios: catalog.len(),
            groups: groups.len(),
            examples: examples.len(),
            features: model.vocabulary(),
            millis: 0,
        };
        Nlu {
            catalog,
            normalizer,
            featurizer,
            model,
            groups,
            fine,
            vague: vague_class,
            thresholds: Thresholds::default(),
            report,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// Sets the decision thresholds (builder style).
    pub fn with_thresholds(mut self, t: Thresholds) -> Nlu {
        self.thresholds = t;
        self
    }

    /// The normalised form of an utterance (what the classifier sees).
    pub fn normalize(&self, text: &str) -> String {
        self.normalizer.normalize(text)
    }

    /// Calibrated probabilities over the groups (last one: vague); `None` when the
    /// utterance has no content after normalisation.
    fn group_probs(&self, text: &str) -> Option<(Vec<f32>, Vec<Feature>)> {
        let norm = self.normalizer.normalize(text);
        let feats = self.featurizer.extract(&norm);
        if feats.is_empty() {
            return None;
        }
        let mut s = Vec::with_capacity(self.groups.len());
        self.model.scores(&feats, &mut s);
        softmax(&mut s, self.thresholds.temperature);
        Some((s, feats))
    }

    /// The best scenario inside group `g` for these features: a finer scenario when it
    /// clearly matches better than the group's own (core) scenario.
    fn pick_in_group(&self, g: usize, feats: &[Feature]) -> Option<String> {
        let group = &self.groups[g];
        let first = *group.members.first()?;
        let fine = &self.fine[g];
        let mut acc = vec![0f32; group.members.len()];
        for (h, v) in feats {
            if let Some(list) = fine.postings.get(h) {
                for &(m, w) in list {
                    acc[m as usize] += w * v;
                }
            }
        }
        let own = if self.catalog.scenarios[first].id == group.id {
            Some(0usize)
        } else {
            None
        };
        let (best, best_score) =
            acc.iter()
                .enumerate()
                .fold((0usize, f32::NEG_INFINITY), |(bi, bs), (i, &s)| {
                    if s > bs {
                        (i, s)
                    } else {
                        (bi, bs)
                    }
                });
        let chosen = match own {
            Some(o) if best != o && best_score < acc[o] + 0.08 => o,
            Some(o) if best_score <= 0.0 => o,
            _ => best,
        };
        Some(self.catalog.scenarios[group.members[chosen]].id.clone())
    }

    /// Turns a probability distribution into a classification.
    fn decide(&self, text: &str, probs: Option<(&[f32], &[Feature])>) -> Classification {
        let Some((p, feats)) = probs else {
            return Classification {
                text: text.to_string(),
                queue: None,
                scenario: None,
                confidence: 0.0,
                decision: Decision::Clarify,
                alternatives: Vec::new(),
            };
        };
        let mut order: Vec<usize> = (0..p.len()).filter(|&g| g != self.vague).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let Some(&top) = order.first() else {
            return self.decide(text, None);
        };
        let p_top = p[top];
        let p_vague = p[self.vague];
        let alternatives = |skip: Option<usize>| -> Vec<Alternative> {
            order
                .iter()
                .copied()
                .filter(|&g| Some(g) != skip)
                .take(3)
                .map(|g| Alternative {
                    scenario: self.groups[g].id.clone(),
                    confidence: round3(p[g]),
                })
                .collect()
        };
        let t = self.thresholds;
        if p_vague >= p_top || p_top < t.confirm {
            // Vague: report the queue only when one queue clearly holds the rest.
            let rest: f32 = order.iter().map(|&g| p[g]).sum::<f32>().max(1e-6);
            let mut per_queue: std::collections::BTreeMap<Queue, f32> =
                std::collections::BTreeMap::new();
            for &g in &order {
                if let Some(q) = self.groups[g].queue {
                    *per_queue.entry(q).or_default() += p[g] / rest;
                }
            }
            let best_q = per_queue.into_iter().max_by(|a, b| a.1.total_cmp(&b.1));
            let queue = best_q
                .filter(|(_, share)| *share >= t.queue)
                .map(|(q, _)| q);
            return Classification {
                text: text.to_string(),
                queue,
                scenario: None,
                confidence: round3(p_top),
                decision: Decision::Clarify,
                alternatives: alternatives(None),
            };
        }
        let scenario = self
            .pick_in_group(top, feats)
            .unwrap_or_else(|| self.groups[top].id.clone());
        let decision = if p_top >= t.route {
            Decision::Route
        } else {
            Decision::Confirm
        };
        Classification {
            text: text.to_string(),
            queue: self.groups[top].queue,
            scenario: Some(scenario),
            confidence: round3(p_top),
            decision,
            alternatives: alternatives(Some(top)),
        }
    }

    /// How long training took (for logs).
    pub fn training_time(&self) -> Duration {
        Duration::from_millis(self.report.millis as u64)
    }
}

fn round3(x: f32) -> f32 {
    (x * 1000.0).round() / 1000.0
}

/// `flows_dir/../grammars` (or `grammars` beside a relative `flows`).
pub fn default_grammars_dir(flows_dir: &Path) -> PathBuf {
    let parent = flows_dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join("grammars")
}

fn build_fine(members: &[usize], feats: &[Vec<Vec<Feature>>]) -> FineIndex {
    let n = members.len();
    if n <= 1 {
        // One member: nothing to choose between.
        return FineIndex::default();
    }
    // Centroid per member, then document frequency over members.
    let mut centroids: Vec<FeatureMap<f32>> = Vec::with_capacity(n);
    let mut df: FeatureMap<u32> = FeatureMap::default();
    for &m in members {
        let mut c: FeatureMap<f32> = FeatureMap::default();
        for f in feats[m].iter().flatten() {
            *c.entry(f.0).or_default() += f.1;
        }
        for h in c.keys() {
            *df.entry(*h).or_default() += 1;
        }
        centroids.push(c);
    }
    let mut postings: FeatureMap<Vec<(u32, f32)>> = FeatureMap::default();
    for (pos, c) in centroids.into_iter().enumerate() {
        let weighted: Vec<(u64, f32)> = c
            .into_iter()
            .map(|(h, v)| {
                let idf =
                    ((n as f32 + 1.0) / (df.get(&h).copied().unwrap_or(1) as f32 + 1.0)).ln() + 1.0;
                (h, v * idf)
            })
            .collect();
        let norm = weighted
            .iter()
            .map(|x| x.1 * x.1)
            .sum::<f32>()
            .sqrt()
            .max(1e-6);
        for (h, v) in weighted {
            postings.entry(h).or_default().push((pos as u32, v / norm));
        }
    }
    FineIndex { postings }
}

impl IntentClassifier for Nlu {
    fn classify(&self, text: &str) -> Classification {
        let probs = self.group_probs(text);
        self.decide(
            text,
            probs.as_ref().map(|(p, f)| (p.as_slice(), f.as_slice())),
        )
    }

    fn classify_nbest(&self, hypotheses: &[(String, f32)]) -> Classification {
        // Weighted average of the hypotheses' distributions (weights: recogniser
        // confidences); the text reported is the hypothesis that best supports the winner.
        let mut merged: Option<Vec<f32>> = None;
        let mut per_hyp: Vec<(usize, Vec<f32>, Vec<Feature>)> = Vec::new();
        let mut total_w = 0f32;
        for (i, (text, conf)) in hypotheses.iter().enumerate() {
            let Some((p, f)) = self.group_probs(text) else {
                continue;
            };
            let w = if conf.is_finite() {
                conf.clamp(0.01, 1.0)
            } else {
                0.01
            };
            total_w += w;
            let m = merged.get_or_insert_with(|| vec![0.0; p.len()]);
            for (a, b) in m.iter_mut().zip(&p) {
                *a += w * b;
            }
            per_hyp.push((i, p, f));
        }
        let Some(mut merged) = merged else {
            return self.classify(hypotheses.first().map(|h| h.0.as_str()).unwrap_or(""));
        };
        for a in &mut merged {
            *a /= total_w.max(1e-6);
        }
        let top = (0..merged.len())
            .filter(|&g| g != self.vague)
            .max_by(|&a, &b| merged[a].total_cmp(&merged[b]));
        let best_hyp = top
            .and_then(|g| per_hyp.iter().max_by(|a, b| a.1[g].total_cmp(&b.1[g])))
            .unwrap_or(&per_hyp[0]);
        let text = &hypotheses[best_hyp.0].0;
        self.decide(text, Some((&merged, &best_hyp.2)))
    }

    fn scenario_name(&self, scenario: &str) -> Option<String> {
        self.catalog.get(scenario).map(|s| s.name.clone())
    }

    fn scenario_answer(&self, scenario: &str) -> Option<String> {
        self.catalog.get(scenario).and_then(|s| match &s.action {
            ScenarioAction::Answer(a) => Some(a.clone()),
            ScenarioAction::Transfer(_) => None,
        })
    }

    fn has_scenario(&self, scenario: &str) -> bool {
        self.catalog.get(scenario).is_some()
    }
}
