//! Routing taxonomy: the 16 business-line queues of the hotline (fixed contract in
//! ARCHITECTURE.md) and the transfer context that travels with a caller to a queue.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A business-line queue. The string forms are a fixed outside contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    CreditCard,
    BankAccount,
    Loan,
    Wealth,
    AutoClaim,
    AutoPolicy,
    PropertyInsurance,
    LifePolicy,
    LifeClaim,
    Health,
    Pension,
    Securities,
    Complaint,
    HumanAgent,
    ElderlyPriority,
    DialectAgents,
}

impl Queue {
    pub const ALL: [Queue; 16] = [
        Queue::CreditCard,
        Queue::BankAccount,
        Queue::Loan,
        Queue::Wealth,
        Queue::AutoClaim,
        Queue::AutoPolicy,
        Queue::PropertyInsurance,
        Queue::LifePolicy,
        Queue::LifeClaim,
        Queue::Health,
        Queue::Pension,
        Queue::Securities,
        Queue::Complaint,
        Queue::HumanAgent,
        Queue::ElderlyPriority,
        Queue::DialectAgents,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Queue::CreditCard => "credit_card",
            Queue::BankAccount => "bank_account",
            Queue::Loan => "loan",
            Queue::Wealth => "wealth",
            Queue::AutoClaim => "auto_claim",
            Queue::AutoPolicy => "auto_policy",
            Queue::PropertyInsurance => "property_insurance",
            Queue::LifePolicy => "life_policy",
            Queue::LifeClaim => "life_claim",
            Queue::Health => "health",
            Queue::Pension => "pension",
            Queue::Securities => "securities",
            Queue::Complaint => "complaint",
            Queue::HumanAgent => "human_agent",
            Queue::ElderlyPriority => "elderly_priority",
            Queue::DialectAgents => "dialect_agents",
        }
    }

    /// The queue a dotted scenario id belongs to (`credit_card.bill_query` → credit_card).
    pub fn of_scenario(scenario: &str) -> Option<Queue> {
        scenario.split('.').next().and_then(|q| q.parse().ok())
    }
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown queue `{0}` (known: credit_card, bank_account, loan, wealth, auto_claim, auto_policy, property_insurance, life_policy, life_claim, health, pension, securities, complaint, human_agent, elderly_priority, dialect_agents)")]
pub struct UnknownQueue(pub String);

impl FromStr for Queue {
    type Err = UnknownQueue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Queue::ALL
            .iter()
            .copied()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| UnknownQueue(s.to_string()))
    }
}

/// The 39 core scenario ids of the contract; finer scenarios hang under them.
pub const CORE_SCENARIOS: [&str; 39] = [
    "credit_card.bill_query",
    "credit_card.repayment",
    "credit_card.limit_adjust",
    "credit_card.activation",
    "credit_card.loss_report",
    "credit_card.installment",
    "credit_card.annual_fee",
    "credit_card.points",
    "bank_account.balance_query",
    "bank_account.transfer_issue",
    "bank_account.card_loss",
    "bank_account.password_reset",
    "loan.repayment_query",
    "loan.application",
    "loan.mortgage",
    "wealth.product_query",
    "wealth.fund_redemption",
    "auto_claim.accident_report",
    "auto_claim.claim_progress",
    "auto_claim.roadside_assistance",
    "auto_policy.renewal",
    "auto_policy.quote",
    "auto_policy.policy_query",
    "property_insurance.home_claim",
    "property_insurance.accident_insurance",
    "life_policy.policy_query",
    "life_policy.info_change",
    "life_policy.premium_payment",
    "life_policy.surrender",
    "life_policy.beneficiary_change",
    "life_claim.claim_report",
    "life_claim.claim_progress",
    "health.appointment",
    "health.online_consult",
    "pension.annuity_query",
    "securities.account_opening",
    "securities.trading_issue",
    "complaint.service_complaint",
    "human_agent.request",
];

/// The core scenario a (possibly finer) scenario id counts for.
pub fn core_of(scenario: &str) -> Option<&'static str> {
    CORE_SCENARIOS.iter().copied().find(|core| {
        scenario == *core
            || scenario
                .strip_prefix(core)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The lane a caller is served in (`X-Voicenav-Lane`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    #[default]
    Standard,
    Elderly,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Standard => "standard",
            Lane::Elderly => "elderly",
        }
    }
}

/// What travels with a transferred caller so the agent knows why they called: the
/// `X-Voicenav-*` headers and the User-to-User header of the transfer (ARCHITECTURE.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferContext {
    pub queue: Option<Queue>,
    pub scenario: Option<String>,
    pub confidence: Option<f32>,
    /// What the caller said (recognised text), joined over turns.
    pub transcript: String,
    pub call_id: String,
    pub lane: Lane,
    /// Dialect code (yue, sichuan, wu, minnan, …) when the caller is from a dialect area.
    pub dialect: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_round_trip() {
        for q in Queue::ALL {
            assert_eq!(q.as_str().parse::<Queue>().unwrap(), q);
        }
        assert!("credit".parse::<Queue>().is_err());
    }

    #[test]
    fn core_scenarios_belong_to_their_queue() {
        for s in CORE_SCENARIOS {
            assert!(Queue::of_scenario(s).is_some(), "{s}");
        }
        assert_eq!(
            core_of("credit_card.bill_query.statement_resend"),
            Some("credit_card.bill_query")
        );
        assert_eq!(core_of("credit_card.bill_query_x"), None);
    }
}
