//! Scoring a classifier on a labelled TSV (`queue scenario decision style text`, the format
//! of `tests/nlu/dev.tsv` and of the outside acceptance set; an optional leading `name`
//! column is accepted). Used by the dev-set test, the benchmark and the report tool.
//!
//! Definitions: *queue accuracy* over rows with a queue and decision `route`; *core
//! accuracy* over rows whose scenario is a core id (a prediction under a core id counts
//! for it, `confirm` counts when the scenario is right); *clarify precision/recall* of the
//! predicted decision `clarify` against the rows labelled `clarify`; *wrong routes on vague
//! rows*: `clarify` rows answered `route` (the acceptance forbids them).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Classification, Decision, IntentClassifier};
use crate::routing::core_of;

/// One labelled row.
#[derive(Debug, Clone)]
pub struct Row {
    pub queue: Option<String>,
    pub scenario: Option<String>,
    pub decision: Decision,
    pub style: String,
    pub text: String,
}

/// Parses a labelled TSV; errors name the line.
pub fn parse_tsv(text: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split('\t').collect(),
        None => return Ok(rows),
    };
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(q), Some(s), Some(d), Some(st), Some(t)) = (
        col("queue"),
        col("scenario"),
        col("decision"),
        col("style"),
        col("text"),
    ) else {
        return Err("line 1: header must name queue, scenario, decision, style, text".into());
    };
    let dash = |v: &str| (v != "-" && !v.is_empty()).then(|| v.to_string());
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| {
            f.get(i)
                .map(|v| v.trim())
                .ok_or_else(|| format!("line {}: missing column", n + 1))
        };
        let decision = match get(d)? {
            "route" => Decision::Route,
            "confirm" => Decision::Confirm,
            "clarify" => Decision::Clarify,
            other => return Err(format!("line {}: unknown decision `{other}`", n + 1)),
        };
        rows.push(Row {
            queue: dash(get(q)?),
            scenario: dash(get(s)?),
            decision,
            style: get(st)?.to_string(),
            text: get(t)?.to_string(),
        });
    }
    Ok(rows)
}

/// Hits over a total.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Ratio {
    pub hits: usize,
    pub total: usize,
}

impl Ratio {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hits += usize::from(hit);
    }
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.hits as f64 / self.total as f64
        }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% ({}/{})",
            self.value() * 100.0,
            self.hits,
            self.total
        )
    }
}

/// The scores of one run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub rows: usize,
    pub queue: Ratio,
    pub core: Ratio,
    /// Of the predicted `clarify`, how many were labelled `clarify`.
    pub clarify_precision: Ratio,
    /// Of the labelled `clarify`, how many were predicted `clarify` (or `confirm`).
    pub clarify_recall: Ratio,
    pub vague_wrong_route: usize,
    /// Route rows answered `route` (not confirm/clarify).
    pub direct_route: Ratio,
    /// Per style: rows whose queue (and core, when labelled) are right, clarify rows
    /// right when not routed.
    pub per_style: BTreeMap<String, Ratio>,
    /// Expected calibration error of the confidence on route rows (10 bins).
    pub ece: f64,
    /// Misclassified rows (text, expected, got), for reports.
    pub errors: Vec<(String, String, String)>,
}

/// Whether a classification is right for a row (the per-style criterion).
pub fn row_correct(row: &Row, c: &Classification) -> bool {
    match row.decision {
        Decision::Clarify => c.decision != Decision::Route,
        _ => {
            let q_ok = row
                .queue
                .as_deref()
                .is_none_or(|q| c.queue.map(|x| x.as_str()) == Some(q));
            let s_ok = match (&row.scenario, &c.scenario) {
                (Some(exp), Some(got)) => scenario_matches(exp, got),
                (Some(_), None) => false,
                (None, _) => true,
            };
            q_ok && s_ok && c.decision != Decision::Clarify
        }
    }
}

/// A predicted scenario counts for the expected one when it is it, or is under the same
/// core id.
pub fn scenario_matches(expected: &str, got: &str) -> bool {
    let exp_core = core_of(expected).unwrap_or(expected);
    let got_core = core_of(got).unwrap_or(got);
    exp_core == got_core || got == expected || got.starts_with(&format!("{expected}."))
}

/// Runs `classifier` over `rows`.
pub fn evaluate(classifier: &dyn IntentClassifier, rows: &[Row]) -> Report {
    let mut r = Report {
        rows: rows.len(),
        ..Report::default()
    };
    let mut bins = [(0usize, 0f64, 0f64); 10];
    for row in rows {
        let c = classifier.classify(&row.text);
        let ok = row_correct(row, &c);
        r.per_style.entry(row.style.clone()).or_default().add(ok);
        if c.decision == Decision::Clarify {
            r.clarify_precision.add(row.decision == Decision::Clarify);
        }
        if row.decision == Decision::Clarify {
            r.clarify_recall.add(c.decision != Decision::Route);
            if c.decision == Decision::Route {
                r.vague_wrong_route += 1;
            }
        } else {
            if let Some(q) = &row.queue {
                r.queue.add(c.queue.map(|x| x.as_str()) == Some(q.as_str()));
            }
            if let Some(s) = &row.scenario {
                if core_of(s).is_some() {
                    r.core.add(
                        c.scenario
                            .as_deref()
                            .is_some_and(|g| scenario_matches(s, g)),
                    );
                }
                let right = c
                    .scenario
                    .as_deref()
                    .is_some_and(|g| scenario_matches(s, g));
                let b = ((c.confidence * 10.0) as usize).min(9);
                bins[b].0 += 1;
                bins[b].1 += f64::from(c.confidence);
                bins[b].2 += f64::from(u8::from(right));
            }
            r.direct_route.add(c.decision == Decision::Route);
        }
        if !ok {
            let expected = format!(
                "{}/{}/{:?}",
                row.queue.as_deref().unwrap_or("-"),
                row.scenario.as_deref().unwrap_or("-"),
                row.decision
            );
            let got = format!(
                "{}/{}/{:?} {:.2}",
                c.queue.map(|q| q.as_str()).unwrap_or("-"),
                c.scenario.as_deref().unwrap_or("-"),
                c.decision,
                c.confidence
            );
            r.errors.push((row.text.clone(), expected, got));
        }
    }
    let n: usize = bins.iter().map(|b| b.0).sum();
    if n > 0 {
        r.ece = bins
            .iter()
            .filter(|b| b.0 > 0)
            .map(|b| (b.0 as f64 / n as f64) * ((b.1 / b.0 as f64) - (b.2 / b.0 as f64)).abs())
            .sum();
    }
    r
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "rows: {}", self.rows)?;
        writeln!(f, "queue accuracy (route rows): {}", self.queue)?;
        writeln!(f, "core-scenario accuracy: {}", self.core)?;
        writeln!(f, "routed directly (route rows): {}", self.direct_route)?;
        writeln!(f, "clarify precision: {}", self.clarify_precision)?;
        writeln!(
            f,
            "clarify recall (clarify or confirm): {}",
            self.clarify_recall
        )?;
        writeln!(f, "vague rows routed: {}", self.vague_wrong_route)?;
        writeln!(f, "expected calibration error: {:.3}", self.ece)?;
        for (style, ratio) in &self.per_style {
            writeln!(f, "  style {style:<12} {ratio}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_or_without_name_column() {
        let a = parse_tsv("queue\tscenario\tdecision\tstyle\ttext\nloan\tloan.mortgage\troute\tplain\t房贷\n-\t-\tclarify\tplain\t咨询\n").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].queue, None);
        let b = parse_tsv("name\tqueue\tscenario\tdecision\tstyle\ttext\nx\tloan\tloan.mortgage\troute\tplain\t房贷\n").unwrap();
        assert_eq!(b[0].scenario.as_deref(), Some("loan.mortgage"));
        assert!(parse_tsv("a\tb\n").is_err());
    }

    #[test]
    fn finer_prediction_counts_for_its_core() {
        assert!(scenario_matches(
            "credit_card.bill_query",
            "credit_card.bill_query.by_card.gold"
        ));
        assert!(!scenario_matches(
            "credit_card.bill_query",
            "credit_card.repayment"
        ));
    }
}
