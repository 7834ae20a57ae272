//! A tiny keyword classifier for unit tests of the dialog engine, so they do not depend
//! on the real catalogue. Not used by the product (`replay` and the server use
//! `crate::nlu::Nlu`).

use crate::nlu::{Classification, Decision, IntentClassifier};
use crate::routing::{Queue, CORE_SCENARIOS};

/// Keyword → (scenario or queue, decision, confidence); the first rule contained wins.
pub struct FakeClassifier {
    rules: Vec<(&'static str, &'static str, Decision, f32)>,
}

impl Default for FakeClassifier {
    fn default() -> Self {
        use Decision::*;
        FakeClassifier {
            rules: vec![
                ("转人工", "human_agent.request", Route, 0.95),
                ("投诉", "complaint.service_complaint", Route, 0.9),
                ("信用卡账单", "credit_card.bill_query", Route, 0.92),
                ("还信用卡", "credit_card.repayment", Route, 0.9),
                ("车险报案", "auto_claim.accident_report", Route, 0.91),
                ("撞了", "auto_claim.accident_report", Route, 0.88),
                ("余额", "bank_account.balance_query", Route, 0.9),
                ("账单", "credit_card.bill_query", Confirm, 0.6),
                ("理赔", "life_claim.claim_report", Confirm, 0.55),
                ("信用卡", "credit_card", Clarify, 0.4),
                ("贷款", "loan", Clarify, 0.4),
            ],
        }
    }
}

impl IntentClassifier for FakeClassifier {
    fn classify(&self, text: &str) -> Classification {
        for (kw, target, decision, confidence) in &self.rules {
            if text.contains(kw) {
                let (queue, scenario) = if target.contains('.') {
                    (Queue::of_scenario(target), Some(target.to_string()))
                } else {
                    (target.parse().ok(), None)
                };
                return Classification {
                    text: text.to_string(),
                    queue,
                    scenario,
                    confidence: *confidence,
                    decision: *decision,
                    alternatives: Vec::new(),
                };
            }
        }
        Classification {
            text: text.to_string(),
            queue: None,
            scenario: None,
            confidence: 0.05,
            decision: Decision::Clarify,
            alternatives: Vec::new(),
        }
    }

    fn scenario_name(&self, scenario: &str) -> Option<String> {
        Some(
            match scenario {
                "credit_card.bill_query" => "信用卡账单查询",
                "life_claim.claim_report" => "人寿理赔报案",
                "auto_claim.accident_report" => "车险报案",
                _ => return self.has_scenario(scenario).then(|| scenario.to_string()),
            }
            .to_string(),
        )
    }

    fn scenario_answer(&self, scenario: &str) -> Option<String> {
        (scenario == "credit_card.bill_query").then(|| "您的账单可在手机银行查看。".to_string())
    }

    fn has_scenario(&self, scenario: &str) -> bool {
        CORE_SCENARIOS.contains(&scenario)
    }
}
