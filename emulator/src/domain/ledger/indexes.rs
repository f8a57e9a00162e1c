//! The ledger's secondary indexes: movements by item, location and type; events by type; levels
//! by item, location and `below_threshold` (the catalogue keeps its own, in [`super::catalogue`]).
//!
//! Why: a list filter answers from these (docs/guide/pagination.md, "Filters"), so a page
//! costs the page, not the tenant; see [`crate::domain::index`] for the posting lists and the
//! intersection. Maintenance on the write path is a push per list an entry joins (three or four
//! per movement, one per event), with no allocation except when a list grows.
//!
//! Not stored: [`Ledger::rebuild_indexes`] derives them from the records when a tenant is loaded
//! (snapshot import and durable-store recovery both end in [`Ledger::rebuild`]), which keeps the
//! store's format unchanged and costs one pass over the ledger at start.

use std::collections::BTreeSet;

use super::{EventType, Ledger};
use crate::domain::index::Postings;
use crate::domain::model::MovementType;

/// The ledger's secondary indexes (positions in creation order).
#[derive(Clone, Debug, Default)]
pub struct LedgerIndexes {
    /// Movement positions by item index.
    pub(super) movements_by_item: Vec<Postings>,
    /// Movement positions by location index (either line).
    pub(super) movements_by_location: Vec<Postings>,
    /// Movement positions by type.
    pub(super) movements_by_type: [Postings; 4],
    /// Event positions by type.
    pub(super) events_by_type: [Postings; EventType::ALL.len()],
    /// Level positions (in `level_order`) by item index.
    pub(super) levels_by_item: Vec<Postings>,
    /// Level positions by location index.
    pub(super) levels_by_location: Vec<Postings>,
    /// Level positions whose snapshot is below the item's threshold (changes both ways).
    pub(super) levels_below: BTreeSet<u32>,
}

/// The list for index `i`, grown to hold it.
#[inline]
pub(super) fn slot(lists: &mut Vec<Postings>, i: u32) -> &mut Postings {
    let i = i as usize;
    if lists.len() <= i {
        lists.resize_with(i + 1, Postings::default);
    }
    &mut lists[i]
}

/// The list of a movement type.
#[inline]
pub(super) fn type_slot(kind: MovementType) -> usize {
    match kind {
        MovementType::Receipt => 0,
        MovementType::Shipment => 1,
        MovementType::Adjustment => 2,
        MovementType::Transfer => 3,
    }
}

// `events_by_type` is indexed by `kind as usize`: the declaration order, which `ALL` follows.
const _: () = assert!(EventType::Ping as usize == EventType::ALL.len() - 1);

impl LedgerIndexes {
    /// Heap bytes held (the memory figure counts them).
    pub fn bytes(&self) -> usize {
        let lists = |v: &[Postings]| v.iter().map(Postings::bytes).sum::<usize>() + v.len() * 24;
        lists(&self.movements_by_item)
            + lists(&self.movements_by_location)
            + lists(&self.movements_by_type)
            + lists(&self.events_by_type)
            + lists(&self.levels_by_item)
            + lists(&self.levels_by_location)
            + self.levels_below.len() * 8
    }
}

impl Ledger {
    /// Adds the movement at `position` to the movement indexes.
    #[inline]
    pub(super) fn index_movement(&mut self, position: usize) {
        let Some(m) = self.movements.get(position) else { return };
        let p = position as u32;
        let ix = &mut self.indexes;
        slot(&mut ix.movements_by_item, m.item).push(p);
        ix.movements_by_type[type_slot(m.kind)].push(p);
        slot(&mut ix.movements_by_location, m.first.location).push(p);
        if let Some(second) = &m.second {
            slot(&mut ix.movements_by_location, second.location).push(p);
        }
    }

    /// Adds a new level (first line of its pair) to the level indexes.
    #[inline]
    pub(super) fn index_level(&mut self, pair: (u32, u32), order: u32) {
        slot(&mut self.indexes.levels_by_item, pair.0).push(order);
        slot(&mut self.indexes.levels_by_location, pair.1).push(order);
    }

    /// Puts a pair in or out of the `below_threshold` index after its quantity, skew or its
    /// item's threshold changed.
    pub(super) fn refresh_below(&mut self, pair: (u32, u32)) {
        let threshold = self.items.entries.get(pair.0 as usize).and_then(|i| i.low_stock_threshold);
        let Some(level) = self.levels.get_mut(&pair) else { return };
        let below = threshold.is_some_and(|t| level.snapshot_quantity() < t);
        if below != level.below {
            level.below = below;
            if below {
                self.indexes.levels_below.insert(level.order);
            } else {
                self.indexes.levels_below.remove(&level.order);
            }
        }
    }

    /// Refreshes `below_threshold` for every level of an item (its threshold changed).
    pub(super) fn refresh_item_levels(&mut self, item: u32) {
        let Some(orders) = self.indexes.levels_by_item.get(item as usize) else { return };
        let pairs: Vec<(u32, u32)> = orders.iter().filter_map(|o| self.level_order.get(o as usize).copied()).collect();
        for pair in pairs {
            self.refresh_below(pair);
        }
    }

    /// Derives every ledger index from the records (at load; see the module docs).
    pub fn rebuild_indexes(&mut self) {
        self.indexes = LedgerIndexes::default();
        for position in 0..self.movements.len() {
            self.index_movement(position);
        }
        for position in 0..self.events.len() {
            if let Some(e) = self.events.get(position) {
                self.indexes.events_by_type[e.kind as usize].push(position as u32);
            }
        }
        for order in 0..self.level_order.len() {
            let pair = self.level_order[order];
            if let Some(level) = self.levels.get_mut(&pair) {
                level.order = order as u32;
                level.below = false;
            }
            self.index_level(pair, order as u32);
            self.refresh_below(pair);
        }
    }
}
