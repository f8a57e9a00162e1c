//! The plans this emulator offers (`free`, `pro`) and their quotas and prices.
//!
//! Why a file of its own: a plan is read by admission (hard quotas), by the invoice (prices)
//! and by `GET /v1/plans`; its numbers are in one place.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Meter, PerMeter};
use crate::domain::model::Plan;

/// A plan (`GET /v1/plans`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanInfo {
    /// `free` or `pro`.
    pub id: Plan,
    /// For people.
    pub name: String,
    /// ISO 4217 code, lower case; every amount is in its minor unit.
    pub currency: String,
    /// The fixed price of a period, in minor units.
    pub base_amount: u64,
    /// Whether the quotas are hard (refused beyond them) or included amounts (billed beyond).
    pub hard_quotas: bool,
    /// Per period: the hard limit (`free`) or the amount included in `base_amount` (`pro`).
    pub quotas: PerMeter,
    /// Price of each unit beyond the quota, in minor units (0 on a plan with hard quotas).
    pub overage_unit_amount: PerMeter,
}

impl PlanInfo {
    /// The hard limit of a meter, if this plan has hard quotas.
    pub fn hard_quota(&self, meter: Meter) -> Option<u64> {
        self.hard_quotas.then(|| self.quotas.get(meter))
    }
}

/// The plans this emulator offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plans {
    /// `free`.
    pub free: PlanInfo,
    /// `pro`.
    pub pro: PlanInfo,
}

impl Plans {
    /// One plan.
    pub fn get(&self, plan: Plan) -> &PlanInfo {
        match plan {
            Plan::Free => &self.free,
            Plan::Pro => &self.pro,
        }
    }

    /// Every plan, `free` first.
    pub fn all(&self) -> Vec<PlanInfo> {
        vec![self.free.clone(), self.pro.clone()]
    }
}

/// Hard quotas of `free` per month: generous enough that test suites never meet them (the
/// emulator's own suite writes 10,000 lines in one sandbox).
pub const FREE_QUOTAS: PerMeter = PerMeter { api_requests: 100_000, ledger_lines: 20_000, webhook_attempts: 20_000 };
/// Amounts included in `pro` per month.
pub const PRO_QUOTAS: PerMeter = PerMeter { api_requests: 1_000_000, ledger_lines: 200_000, webhook_attempts: 200_000 };
/// `pro` price per unit beyond its quotas, in cents.
pub const PRO_OVERAGE_UNIT_AMOUNT: PerMeter = PerMeter { api_requests: 1, ledger_lines: 2, webhook_attempts: 1 };
/// `pro` price per month, in cents.
pub const PRO_BASE_AMOUNT: u64 = 4_900;

impl Default for Plans {
    fn default() -> Self {
        Plans {
            free: PlanInfo {
                id: Plan::Free,
                name: "Free".to_owned(),
                currency: "usd".to_owned(),
                base_amount: 0,
                hard_quotas: true,
                quotas: FREE_QUOTAS,
                overage_unit_amount: PerMeter::default(),
            },
            pro: PlanInfo {
                id: Plan::Pro,
                name: "Pro".to_owned(),
                currency: "usd".to_owned(),
                base_amount: PRO_BASE_AMOUNT,
                hard_quotas: false,
                quotas: PRO_QUOTAS,
                overage_unit_amount: PRO_OVERAGE_UNIT_AMOUNT,
            },
        }
    }
}
