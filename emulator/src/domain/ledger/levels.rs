//! Stock levels: the snapshot of each (item, location) pair, its history of movements (its
//! version), reading a level now or as of a time, listing levels, and the invariant that a
//! level is the sum of its lines.
//!
//! Why a file of its own: the level is what a movement changes and what a reader asks for most;
//! its record and its invariants belong together, apart from how movements are planned.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Ledger, position};
use crate::clock::Timestamp;
use crate::domain::error::DomainError;
use crate::domain::index::{Seek, page};
use crate::domain::model::StockLevel;
use crate::domain::paging::{Page, Window};

/// The snapshot of one (item, location) pair.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LevelRecord {
    /// Current quantity (always Σ delta of its lines).
    pub quantity: i64,
    /// Sequences of the movements with a line here, in commit order; `version` is its length.
    pub history: Vec<u64>,
    /// An injected corruption (`POST /_emulator/faults/corrupt-stock-level`): what the snapshot
    /// reads is `quantity + skew`. Kept apart so that the ledger's own lines stay truthful and
    /// reconciliation has something to find.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skew: i64,
    /// Its position in the order of first lines (its list position); derived, not stored.
    #[serde(skip)]
    pub(super) order: u32,
    /// Whether it is in the `below_threshold` index; derived, not stored.
    #[serde(skip)]
    pub(super) below: bool,
}

impl LevelRecord {
    /// What the snapshot reads (the ledger's quantity plus any injected skew).
    pub fn snapshot_quantity(&self) -> i64 {
        self.quantity.saturating_add(self.skew)
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Ledger {
    #[inline]
    pub(super) fn quantity(&self, pair: (u32, u32)) -> i64 {
        self.levels.get(&pair).map_or(0, |l| l.quantity)
    }

    #[inline]
    pub(super) fn version(&self, pair: (u32, u32)) -> u64 {
        self.levels.get(&pair).map_or(0, |l| l.history.len() as u64)
    }

    pub(super) fn level_from_line(&self, sequence: u64, line: u8) -> StockLevel {
        let m = self.movements.get(position(sequence));
        let l = m.and_then(|m| m.lines().nth(usize::from(line)));
        match (m, l) {
            (Some(m), Some(l)) => StockLevel {
                item_id: self.item_id(m.item),
                location_id: self.location_id(l.location),
                quantity: l.quantity_after,
                version: l.version_after,
                last_movement_id: Some(self.movement_id(sequence)),
                updated_at: Some(m.created_at),
            },
            _ => StockLevel {
                item_id: String::new(),
                location_id: String::new(),
                quantity: 0,
                version: 0,
                last_movement_id: None,
                updated_at: None,
            },
        }
    }

    pub(super) fn render_level(&self, pair: (u32, u32), level: Option<&LevelRecord>) -> StockLevel {
        let last = level.and_then(|l| l.history.last().copied());
        StockLevel {
            item_id: self.item_id(pair.0),
            location_id: self.location_id(pair.1),
            quantity: level.map_or(0, LevelRecord::snapshot_quantity),
            version: level.map_or(0, |l| l.history.len() as u64),
            last_movement_id: last.map(|s| self.movement_id(s)),
            updated_at: last.and_then(|s| self.movements.get(position(s))).map(|m| m.created_at),
        }
    }

    /// `GET /v1/items/{item_id}/stock-levels/{location_id}[?as_of]`.
    ///
    /// `as_of` is a binary search over the pair's history (the sequences of its lines in commit
    /// order, whose commit times never decrease), each step one lookup of a movement by
    /// position: O(log n) of the pair's lines, whatever the size of the ledger.
    pub fn level(&self, item_id: &str, location_id: &str, as_of: Option<Timestamp>) -> Result<StockLevel, DomainError> {
        let item = self.item_index(item_id).ok_or_else(|| DomainError::not_found("item"))?;
        let location = self.location_index(location_id).ok_or_else(|| DomainError::not_found("location"))?;
        let pair = (item, location);
        let level = self.levels.get(&pair);
        let Some(as_of) = as_of else {
            return Ok(self.render_level(pair, level));
        };
        let history = level.map_or(&[][..], |l| l.history.as_slice());
        let count =
            history.partition_point(|s| self.movements.get(position(*s)).is_some_and(|m| m.created_at <= as_of));
        if count == 0 {
            return Ok(self.render_level(pair, None));
        }
        let sequence = history[count - 1];
        let line = self
            .movements
            .get(position(sequence))
            .and_then(|m| m.lines().position(|l| l.location == location))
            .unwrap_or(0);
        Ok(self.level_from_line(sequence, line as u8))
    }

    /// The current version of a level (for `If-Match` on movements).
    pub fn level_version(&self, item_id: &str, location_id: &str) -> Option<u64> {
        Some(self.version((self.item_index(item_id)?, self.location_index(location_id)?)))
    }

    /// `GET /v1/stock-levels`: pairs that have ledger lines, in order of their first line.
    pub fn levels(
        &self,
        item_id: Option<&str>,
        location_id: Option<&str>,
        below_threshold: bool,
        window: Window,
    ) -> Page<StockLevel> {
        let item = item_id.map(|id| self.item_index(id));
        let location = location_id.map(|id| self.location_index(id));
        if matches!(item, Some(None)) || matches!(location, Some(None)) {
            return Page { data: Vec::new(), next: None };
        }
        let none = crate::domain::index::Postings::default();
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(Some(i)) = item {
            lists.push(self.indexes.levels_by_item.get(i as usize).unwrap_or(&none));
        }
        if let Some(Some(l)) = location {
            lists.push(self.indexes.levels_by_location.get(l as usize).unwrap_or(&none));
        }
        if below_threshold {
            lists.push(&self.indexes.levels_below);
        }
        let accept = |p: usize| {
            let Some(pair) = self.level_order.get(p) else { return false };
            let Some(level) = self.levels.get(pair) else { return false };
            let threshold = self.items.entries[pair.0 as usize].low_stock_threshold;
            item.is_none_or(|i| i == Some(pair.0))
                && location.is_none_or(|l| l == Some(pair.1))
                && (!below_threshold || threshold.is_some_and(|t| level.snapshot_quantity() < t))
        };
        let render = |p: usize| {
            let pair = self.level_order.get(p)?;
            Some(self.render_level(*pair, self.levels.get(pair)))
        };
        page(&mut lists, window.start, self.level_order.len(), window.limit, accept, render)
    }

    #[cfg(debug_assertions)]
    pub(super) fn debug_assert_pair(&self, pair: (u32, u32)) {
        if let Some(level) = self.levels.get(&pair) {
            // Only the tail is checked per write (a full scan per write would be quadratic).
            if let Some(last) = level.history.last() {
                let m = &self.movements.get(position(*last));
                let line = m.and_then(|m| m.lines().find(|l| l.location == pair.1).copied());
                debug_assert_eq!(line.map(|l| l.quantity_after), Some(level.quantity), "snapshot == last line");
                debug_assert_eq!(line.map(|l| l.version_after), Some(level.history.len() as u64));
            }
        }
    }

    /// Recomputes every level from the ledger and compares (`quantity == Σ delta`,
    /// `version == line count`, gap-free history). Returns the first discrepancy.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut sums: HashMap<(u32, u32), (i64, u64)> = HashMap::new();
        let (items, locations) = (self.items.entries.len(), self.locations.entries.len());
        for (p, m) in self.movements.iter_from(0).enumerate() {
            // Every reference resolves: a read renders ids from these indexes.
            if m.item as usize >= items {
                return Err(format!("movement {} names item {}, which does not exist", p + 1, m.item + 1));
            }
            for l in m.lines() {
                if l.location as usize >= locations {
                    return Err(format!("movement {} names location {}, which does not exist", p + 1, l.location + 1));
                }
                let e = sums.entry((m.item, l.location)).or_default();
                e.0 += l.delta;
                e.1 += 1;
                if e.0 != l.quantity_after || e.1 != l.version_after {
                    return Err(format!("movement {} line at location {} is inconsistent", p + 1, l.location));
                }
            }
        }
        for (pair, level) in &self.levels {
            if pair.0 as usize >= items || pair.1 as usize >= locations {
                return Err(format!(
                    "a stock level names item {} at location {}, which do not exist",
                    pair.0 + 1,
                    pair.1 + 1
                ));
            }
            let (sum, count) = sums.get(pair).copied().unwrap_or_default();
            if level.quantity != sum || level.history.len() as u64 != count {
                return Err(format!(
                    "pair {pair:?}: quantity {} vs Σ delta {sum}, version {} vs {count} lines",
                    level.quantity,
                    level.history.len()
                ));
            }
        }
        if sums.len() != self.levels.len() {
            return Err("a pair with ledger lines has no level".to_owned());
        }
        Ok(())
    }
}
