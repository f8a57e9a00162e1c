//! The ledger's side of reconciliation: every level recomputed from its lines in one pass and
//! compared with its snapshot, and the fault that skews a snapshot so there is something to find.
//!
//! Why a file of its own: it reads the whole ledger rather than one movement or level. The
//! runs, their history and their CSV are in `domain/reconcile.rs`, which imports this (not the
//! other way round).

use std::collections::HashMap;

use super::{Discrepancy, Ledger, ReconcileResult, not_found_field};
use crate::domain::error::DomainError;
use crate::domain::model::FieldError;
use crate::domain::validate::QUANTITY_MAGNITUDE_MAX;

impl Ledger {
    /// Recomputes every level (at `location_id`, if given) from the ledger lines and compares it
    /// with the snapshot. One pass over the ledger: O(movements + pairs).
    pub fn reconcile(&self, location_id: Option<&str>) -> Result<ReconcileResult, DomainError> {
        let location = match location_id {
            Some(id) => Some(self.location_index(id).ok_or_else(|| not_found_field("location", "location_id"))?),
            None => None,
        };
        let mut sums: HashMap<(u32, u32), i64> = HashMap::with_capacity(self.levels.len());
        for m in self.movements.iter_from(0) {
            for l in m.lines().filter(|l| location.is_none_or(|at| at == l.location)) {
                *sums.entry((m.item, l.location)).or_default() += l.delta;
            }
        }
        let mut out = ReconcileResult::default();
        for pair in self.level_order.iter().filter(|p| location.is_none_or(|at| at == p.1)) {
            let Some(level) = self.levels.get(pair) else { continue };
            out.checked += 1;
            let ledger = sums.get(pair).copied().unwrap_or_default();
            let snapshot = level.snapshot_quantity();
            if snapshot != ledger {
                out.discrepancies.push(Discrepancy {
                    item_id: self.item_id(pair.0),
                    location_id: self.location_id(pair.1),
                    snapshot_quantity: snapshot,
                    ledger_quantity: ledger,
                    difference: snapshot.saturating_sub(ledger),
                });
            }
        }
        Ok(out)
    }

    /// What a reconciliation result depends on: the incarnation, the ledger length and the
    /// injected corruptions. Equal stamps give equal results (the nightly run reuses them).
    pub fn reconcile_stamp(&self) -> (String, u64, u64) {
        (self.tag.clone(), self.movements.len() as u64, self.corruptions)
    }

    /// `POST /_emulator/faults/corrupt-stock-level`: skews one pair's snapshot by `delta`, leaving
    /// the ledger alone. Returns (snapshot quantity, ledger quantity) after.
    pub fn corrupt_level(&mut self, item_id: &str, location_id: &str, delta: i64) -> Result<(i64, i64), DomainError> {
        let item = self.item_index(item_id).ok_or_else(|| not_found_field("item", "item_id"))?;
        let location = self.location_index(location_id).ok_or_else(|| not_found_field("location", "location_id"))?;
        if delta == 0 || delta.unsigned_abs() > QUANTITY_MAGNITUDE_MAX as u64 {
            return Err(DomainError::validation(vec![FieldError::new(
                "delta",
                format!("must be non-zero and at most {QUANTITY_MAGNITUDE_MAX} in magnitude"),
            )]));
        }
        let level = self.levels.get_mut(&(item, location)).ok_or_else(|| {
            DomainError::validation(vec![FieldError::new(
                "location_id",
                "this pair has no stock level yet (no ledger lines): move stock there first",
            )])
        })?;
        level.skew = level
            .skew
            .checked_add(delta)
            .ok_or_else(|| DomainError::validation(vec![FieldError::new("delta", "the skew would overflow")]))?;
        self.corruptions += 1;
        let answer = (level.snapshot_quantity(), level.quantity);
        self.refresh_below((item, location));
        Ok(answer)
    }
}
