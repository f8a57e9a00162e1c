//! Reconciliation: every stock level recomputed from the ledger and compared with its snapshot.
//! No HTTP.
//!
//! A run is one pass over the ledger under the tenant lock, so it sees one consistent state and
//! finishes before the lock is released: a run is `completed` when it is returned (`running` is
//! never observed in this emulator; the state exists for the product API). One runs on demand
//! (`POST /v1/reconciliations`) and one every day at 00:00 UTC of the emulator clock; both write
//! `reconciliation.completed`. A nightly run over a ledger that has not changed since the last
//! run (same incarnation, same movement count, no new corruption) reuses that result instead of
//! scanning again, so advancing the clock by years costs records, not scans.
//!
//! Bounds: [`DISCREPANCIES_KEPT`] discrepancies per run (the count is always exact), the newest
//! [`RECONCILIATIONS_KEPT`] runs per sandbox.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bounded::BoundedLog;
use super::csv::csv_record;
use super::error::DomainError;
use super::ledger::{Discrepancy, Ledger, ReconcileResult};
use super::paging::{Page, Window};
use crate::clock::Timestamp;
use crate::ids;

/// Most discrepancies kept per run.
pub const DISCREPANCIES_KEPT: usize = 1000;
/// Runs kept per sandbox (older ones answer 404).
pub const RECONCILIATIONS_KEPT: usize = 1000;

/// Where a run stands.
///
/// - `running`: Under way (never observed here: runs complete before they are returned).
/// - `completed`: Done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationStatus {
    Running,
    Completed,
}

/// What started a run.
///
/// - `manual`: `POST /v1/reconciliations`.
/// - `nightly`: The daily run at 00:00 UTC of the emulator clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReconciliationTrigger {
    Manual,
    Nightly,
}

/// `POST /v1/reconciliations`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReconciliation {
    /// Only the levels at this location (all if absent).
    #[serde(default)]
    pub location_id: Option<String>,
}

/// A reconciliation run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reconciliation {
    /// `rec_…`
    pub id: String,
    /// `completed` (see `ReconciliationStatus`).
    pub status: ReconciliationStatus,
    /// `manual` or `nightly`.
    pub trigger: ReconciliationTrigger,
    /// The location it was limited to, if any.
    pub location_id: Option<String>,
    /// Stock levels compared.
    pub checked: u64,
    /// How many levels disagree with their ledger lines (exact, even beyond those listed).
    pub discrepancy_count: u64,
    /// The levels that disagree (at most 1000), in order of their first ledger line.
    pub discrepancies: Vec<Discrepancy>,
    /// When it started (emulator clock).
    pub created_at: Timestamp,
    /// When it completed.
    pub completed_at: Option<Timestamp>,
}

impl Reconciliation {
    /// The discrepancies as CSV (header `item_id,location_id,snapshot_quantity,ledger_quantity,difference`).
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        csv_record(&mut out, &["item_id", "location_id", "snapshot_quantity", "ledger_quantity", "difference"]);
        for d in &self.discrepancies {
            csv_record(
                &mut out,
                &[
                    d.item_id.clone(),
                    d.location_id.clone(),
                    d.snapshot_quantity.to_string(),
                    d.ledger_quantity.to_string(),
                    d.difference.to_string(),
                ],
            );
        }
        out
    }
}

/// A page of reconciliations.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReconciliationList {
    /// This page, oldest first.
    pub data: Vec<Reconciliation>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The runs of one sandbox (emptied with it on reset).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Reconciliations {
    runs: BoundedLog<Reconciliation>,
    /// The last whole-ledger result and what it depended on.
    #[serde(skip)]
    cache: Option<((String, u64, u64), ReconcileResult)>,
}

impl Reconciliations {
    /// A cheap summary that changes whenever a run is added (runs never change after).
    pub fn stamp(&self, h: &mut impl std::hash::Hasher) {
        h.write_u64(self.runs.written());
    }

    /// Runs one reconciliation of `ledger` now and keeps it.
    pub fn run(
        &mut self,
        ledger: &Ledger,
        location_id: Option<&str>,
        trigger: ReconciliationTrigger,
        now: Timestamp,
    ) -> Result<Reconciliation, DomainError> {
        let result = match location_id {
            Some(_) => ledger.reconcile(location_id)?,
            None => {
                let stamp = ledger.reconcile_stamp();
                match &self.cache {
                    Some((s, r)) if *s == stamp => r.clone(),
                    _ => {
                        let r = ledger.reconcile(None)?;
                        self.cache = Some((stamp, r.clone()));
                        r
                    }
                }
            }
        };
        let discrepancy_count = result.discrepancies.len() as u64;
        let mut discrepancies = result.discrepancies;
        discrepancies.truncate(DISCREPANCIES_KEPT);
        let run = Reconciliation {
            id: ids::format("rec", &ledger.tag, self.runs.next_position()),
            status: ReconciliationStatus::Completed,
            trigger,
            location_id: location_id.map(str::to_owned),
            checked: result.checked,
            discrepancy_count,
            discrepancies,
            created_at: now,
            completed_at: Some(now),
        };
        self.runs.push(run.clone(), RECONCILIATIONS_KEPT);
        Ok(run)
    }

    /// `GET /v1/reconciliations/{id}`.
    pub fn get(&self, tag: &str, id: &str) -> Result<&Reconciliation, DomainError> {
        ids::parse("rec", tag, id)
            .and_then(|p| self.runs.get(p))
            .ok_or_else(|| DomainError::not_found("reconciliation"))
    }

    /// `GET /v1/reconciliations`.
    pub fn list(&self, window: Window) -> Page<Reconciliation> {
        self.runs.page(window, Reconciliation::clone)
    }
}
