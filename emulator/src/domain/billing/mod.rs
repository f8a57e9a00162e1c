//! Metering, plans, billing periods and invoices of one tenant. No HTTP.
//!
//! **Meters.** `api_requests` (every admitted authenticated request), `ledger_lines` (ledger
//! lines written) and `webhook_attempts` (attempts made). Each is recorded by the code that does
//! the counted thing, under the tenant lock it already holds for it: a request when it is
//! admitted (before its handler runs), the lines of a write in the same critical section as the
//! write (added to that request's row), an attempt where the dispatcher records it, the lines of
//! an import job in the chunk that writes them. So usage is exact: the export, the invoice and
//! the ledger agree to the unit.
//!
//! **Rows.** Usage is kept as one row per metered unit group: a request (its `api_requests`
//! and, for a write, its `ledger_lines`), a webhook attempt (its delivery id stands in for a
//! request id), a chunk of an import job (the job id), the seed of a demo sandbox (`seed`). A row
//! is 28 bytes: its time in milliseconds from the period's start, its quantities, and its id
//! packed into 16 bytes when the emulator made it (`req_…`, `msg_…`, `job_…`); a client's own
//! `X-Request-Id` goes to an append-only text log beside the rows. So a million requests cost
//! about 28 MB. Rows are kept for the current period and the previous [`PERIODS_KEPT`] - 1;
//! totals per period are kept with them and on the invoices.
//!
//! **Periods** are calendar months (UTC) of the emulator clock. A row goes to the period of its
//! time. A period closes when its invoice is issued (the scheduler does it as the clock passes
//! the period's end); anything recorded later for a closed period (a request admitted just
//! before the end whose write commits after the clock was advanced past it) is charged to the
//! next open period, so an issued invoice never changes and always equals its rows.
//!
//! **Quotas.** `free` has hard quotas: a request over `api_requests` is refused with 429
//! `quota_exceeded` and is not counted (a hard quota is never exceeded), a write that would pass
//! `ledger_lines` is refused whole, and webhook attempts over `webhook_attempts` wait for the
//! next period. `pro` quotas are included amounts: usage beyond them is billed per unit
//! (`overage_unit_amount`, integer minor units of `currency`). The first time a meter hits a hard
//! quota in a period the caller writes one `usage.quota_exceeded` event ([`Usage::notify`]).
//!
//! **Plan changes** apply at once; an invoice bills the whole period at the plan held when it
//! closes (no proration).
//!
//! A folder, one concern a file, because one file held all of it (1,330 lines). This file holds
//! the meters and the API's wire types, and re-exports the rest so that `domain::billing::…`
//! stays the one path to all of it:
//!
//! - [`plans`]: the plans and their quotas;
//! - [`calendar`]: months, midnights and period labels on the emulator clock;
//! - [`codec`]: a period's usage packed as 28-byte rows, and its stored form;
//! - [`usage`]: a tenant's usage, period by period, and the journal the durable store replays;
//! - [`invoices`]: invoices, the billing schedule that issues them, and their CSV.

pub mod calendar;
pub mod codec;
pub mod invoices;
pub mod plans;
pub mod usage;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use self::calendar::{month_start, next_midnight, next_month, parse_period, period_label, seconds_until};
pub use self::codec::{ExportCursor, PeriodUsage};
pub use self::invoices::{
    Billing, INVOICES_KEPT, Invoice, InvoiceLine, InvoiceStatus, NIGHTLY_BACKLOG_MAX_DAYS, invoice_lines,
};
pub use self::plans::{FREE_QUOTAS, PRO_BASE_AMOUNT, PRO_OVERAGE_UNIT_AMOUNT, PRO_QUOTAS, PlanInfo, Plans};
pub use self::usage::{OverQuota, PERIODS_KEPT, RowRef, Usage, UsageOp};
use super::model::Plan;
use crate::clock::Timestamp;

/// What is metered.
///
/// - `api_requests`: Authenticated requests admitted (not those refused by the rate limit or the
///   `api_requests` quota).
/// - `ledger_lines`: Ledger lines written (a transfer writes two).
/// - `webhook_attempts`: Webhook delivery attempts made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    ApiRequests,
    LedgerLines,
    WebhookAttempts,
}

impl Meter {
    /// Every meter, in report order.
    pub const ALL: [Meter; 3] = [Meter::ApiRequests, Meter::LedgerLines, Meter::WebhookAttempts];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Meter::ApiRequests => "api_requests",
            Meter::LedgerLines => "ledger_lines",
            Meter::WebhookAttempts => "webhook_attempts",
        }
    }
}

/// One number per meter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PerMeter {
    /// `api_requests`.
    pub api_requests: u64,
    /// `ledger_lines`.
    pub ledger_lines: u64,
    /// `webhook_attempts`.
    pub webhook_attempts: u64,
}

impl PerMeter {
    /// The value of one meter.
    pub fn get(&self, meter: Meter) -> u64 {
        match meter {
            Meter::ApiRequests => self.api_requests,
            Meter::LedgerLines => self.ledger_lines,
            Meter::WebhookAttempts => self.webhook_attempts,
        }
    }
}

/// `GET /v1/plans`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PlanList {
    /// `free`, then `pro`.
    pub data: Vec<PlanInfo>,
}

/// `GET /v1/subscription`: the plan and the current billing period.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    /// The plan; its quotas apply now.
    pub plan: Plan,
    /// Start of the current period (a calendar month, UTC).
    pub period_start: Timestamp,
    /// End of the current period.
    pub period_end: Timestamp,
}

/// `POST /v1/subscription`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    /// The new plan; its quotas apply at once.
    pub plan: Plan,
}

/// One meter of a usage report.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MeterUsage {
    /// The meter.
    pub meter: Meter,
    /// Used in the period.
    pub quantity: u64,
    /// The current plan's quota of it.
    pub quota: u64,
    /// Whether the quota is a hard limit.
    pub hard: bool,
}

/// `GET /v1/usage`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageReport {
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period.
    pub period_end: Timestamp,
    /// The current plan.
    pub plan: Plan,
    /// One entry per meter.
    pub meters: Vec<MeterUsage>,
}

/// One row of a usage export.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageRecord {
    /// When it was metered.
    pub time: Timestamp,
    /// The request (or webhook delivery `msg_…`, import job `job_…`, or `seed`) it belongs to.
    pub request_id: String,
    /// The meter.
    pub meter: Meter,
    /// How many units.
    pub quantity: u64,
}

/// `GET /v1/usage/export?format=json`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageExport {
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period.
    pub period_end: Timestamp,
    /// Every row, in the order metered.
    pub data: Vec<UsageRecord>,
}

/// A page of invoices.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceList {
    /// This page, oldest first.
    pub data: Vec<Invoice>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The data of a `usage.quota_exceeded` event.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct QuotaExceeded {
    /// The meter.
    pub meter: Meter,
    /// Its hard quota.
    pub quota: u64,
    /// The plan.
    pub plan: Plan,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period (when the quota renews).
    pub period_end: Timestamp,
}
