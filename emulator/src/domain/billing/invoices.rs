//! Invoices: the billing state of a tenant (the period not yet invoiced, the nightly
//! schedule), issuing a period's invoice from its closed usage, reading invoices, and an
//! invoice as CSV.
//!
//! Why a file of its own: it changes only at period ends and midnights, unlike usage, which
//! changes on every request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::calendar::{month_start, next_midnight, next_month, period_label};
use super::plans::PlanInfo;
use super::usage::Usage;
use super::{Meter, PerMeter};
use crate::clock::Timestamp;
use crate::domain::bounded::BoundedLog;
use crate::domain::csv::csv_record;
use crate::domain::error::DomainError;
use crate::domain::model::Plan;
use crate::domain::paging::{Page, Window};
use crate::ids;

/// Invoices kept per tenant (twenty years).
pub const INVOICES_KEPT: usize = 240;
/// Most nightly runs one catch-up makes: a clock jump over more midnights than this runs only
/// the last ones (a jump to the year 2999 would otherwise write 355,000 runs and events).
pub const NIGHTLY_BACKLOG_MAX_DAYS: u64 = 366;

/// Where an invoice stands. Invoices are issued at the end of their period; the emulator takes
/// no payments, so `issued` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Issued,
}

/// One meter on an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLine {
    /// The meter.
    pub meter: Meter,
    /// Used in the period.
    pub quantity: u64,
    /// The plan's quota (hard limit or included amount).
    pub included: u64,
    /// `max(0, quantity - included)`.
    pub overage: u64,
    /// Price per unit of overage, in minor units.
    pub unit_amount: u64,
    /// `overage * unit_amount`, in minor units.
    pub amount: u64,
}

/// An invoice: one billing period of one sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Invoice {
    /// `inv_…`
    pub id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period (inclusive).
    pub period_start: Timestamp,
    /// End of the period (exclusive).
    pub period_end: Timestamp,
    /// The plan billed (the one held when the period closed).
    pub plan: Plan,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// The plan's fixed price, in minor units.
    pub base_amount: u64,
    /// One line per meter.
    pub lines: Vec<InvoiceLine>,
    /// `base_amount + Σ lines[].amount`, in minor units.
    pub subtotal: u64,
    /// What is due (no taxes in the emulator: equals `subtotal`).
    pub total: u64,
    /// `issued`.
    pub status: InvoiceStatus,
    /// When it was issued (emulator clock).
    pub created_at: Timestamp,
}

impl Invoice {
    /// The invoice as CSV: one record per meter and one `base` record; `amount` sums to `total`.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        csv_record(
            &mut out,
            &[
                "invoice_id",
                "period_start",
                "period_end",
                "plan",
                "currency",
                "item",
                "quantity",
                "included",
                "overage",
                "unit_amount",
                "amount",
            ],
        );
        let head = [
            self.id.clone(),
            self.period_start.to_rfc3339(),
            self.period_end.to_rfc3339(),
            plan_name(self.plan).to_owned(),
            self.currency.clone(),
        ];
        for l in &self.lines {
            let mut rec = head.to_vec();
            rec.extend([
                l.meter.as_str().to_owned(),
                l.quantity.to_string(),
                l.included.to_string(),
                l.overage.to_string(),
                l.unit_amount.to_string(),
                l.amount.to_string(),
            ]);
            csv_record(&mut out, &rec);
        }
        let mut base = head.to_vec();
        base.extend([
            "base".to_owned(),
            "1".into(),
            "0".into(),
            "0".into(),
            self.base_amount.to_string(),
            self.base_amount.to_string(),
        ]);
        csv_record(&mut out, &base);
        out
    }
}

fn plan_name(plan: Plan) -> &'static str {
    match plan {
        Plan::Free => "free",
        Plan::Pro => "pro",
    }
}

/// `invoice` lines from a period's totals under a plan.
pub fn invoice_lines(plan: &PlanInfo, totals: PerMeter) -> Vec<InvoiceLine> {
    Meter::ALL
        .into_iter()
        .map(|m| {
            let quantity = totals.get(m);
            let included = plan.quotas.get(m);
            let overage = quantity.saturating_sub(included);
            let unit_amount = plan.overage_unit_amount.get(m);
            InvoiceLine {
                meter: m,
                quantity,
                included,
                overage,
                unit_amount,
                amount: overage.saturating_mul(unit_amount),
            }
        })
        .collect()
}

/// The billing state of a tenant: the open period, the nightly schedule, the invoices. It changes
/// only at period ends and midnights (usage, which changes on every request, is apart).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Billing {
    /// Id tag of invoices (kept across sandbox resets, as invoices are).
    pub tag: String,
    /// Start of the period not yet invoiced.
    pub period_start: Timestamp,
    /// When the next nightly reconciliation is due.
    pub next_nightly: Timestamp,
    invoices: BoundedLog<Invoice>,
}

impl Billing {
    /// A cheap summary that changes whenever the billing state does (for the durable store).
    pub fn stamp(&self, h: &mut impl std::hash::Hasher) {
        h.write(self.tag.as_bytes());
        h.write_i64(self.period_start.micros());
        h.write_i64(self.next_nightly.micros());
        h.write_u64(self.invoices.written());
    }

    /// Billing of a tenant created at `now`.
    pub fn new(now: Timestamp) -> Billing {
        Billing::with_tag(now, ids::new_tag())
    }

    /// Billing of a tenant created at `now`, its invoice ids made with `tag`.
    pub fn with_tag(now: Timestamp, tag: String) -> Billing {
        Billing {
            tag,
            period_start: month_start(now),
            next_nightly: next_midnight(now),
            invoices: BoundedLog::default(),
        }
    }

    /// Whether it was set up (an export from before billing carries none).
    pub fn is_set_up(&self) -> bool {
        !self.tag.is_empty()
    }

    /// End of the period not yet invoiced.
    pub fn period_end(&self) -> Timestamp {
        next_month(self.period_start)
    }

    /// The next time something is due: a period end or a midnight.
    pub fn next_due(&self) -> Timestamp {
        self.period_end().min(self.next_nightly)
    }

    /// Skips the nightly runs due more than [`NIGHTLY_BACKLOG_MAX_DAYS`] before `until`.
    pub fn skip_nightly_backlog(&mut self, until: Timestamp) {
        let earliest = Timestamp(until.micros().saturating_sub(NIGHTLY_BACKLOG_MAX_DAYS as i64 * 86_400_000_000));
        if self.next_nightly < earliest {
            self.next_nightly = next_midnight(Timestamp(earliest.micros() - 1));
        }
    }

    /// Closes the open period and issues its invoice under `plan`.
    pub fn issue_invoice(&mut self, usage: &mut Usage, plan: &PlanInfo, now: Timestamp) -> Invoice {
        let start = self.period_start;
        let end = self.period_end();
        let totals = usage.close(start);
        let lines = invoice_lines(plan, totals);
        let subtotal = plan.base_amount + lines.iter().map(|l| l.amount).sum::<u64>();
        let invoice = Invoice {
            id: ids::format("inv", &self.tag, self.invoices.next_position()),
            period: period_label(start),
            period_start: start,
            period_end: end,
            plan: plan.id,
            currency: plan.currency.clone(),
            base_amount: plan.base_amount,
            lines,
            subtotal,
            total: subtotal,
            status: InvoiceStatus::Issued,
            created_at: now,
        };
        self.invoices.push(invoice.clone(), INVOICES_KEPT);
        self.period_start = end;
        invoice
    }

    /// `GET /v1/invoices/{id}`.
    pub fn invoice(&self, id: &str) -> Result<&Invoice, DomainError> {
        ids::parse("inv", &self.tag, id)
            .and_then(|p| self.invoices.get(p))
            .ok_or_else(|| DomainError::not_found("invoice"))
    }

    /// `GET /v1/invoices`.
    pub fn invoices(&self, window: Window) -> Page<Invoice> {
        self.invoices.page(window, Invoice::clone)
    }
}
