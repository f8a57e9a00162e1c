//! What the durable store reads and puts back: the catalogue entries changed since it last
//! looked, the movements and events after a point, the injected skews, and the recovery that
//! appends stored records again (checking each against the ledger before it).
//!
//! Why a file of its own: this is the ledger as the store sees it (indexes, records), not as the
//! API does; keeping it apart keeps the store's needs out of the request paths.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use super::events::EventRecord;
use super::levels::LevelRecord;
use super::movements::MovementRecord;
use super::{Ledger, position};
use crate::domain::model::{Item, Location};

/// An injected skew: the (item, location) pair by index, and the skew.
pub type Skew = ((u32, u32), i64);

/// An item or a location, by index (for the durable store).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CatalogRef {
    /// An item.
    Item(u32),
    /// A location.
    Location(u32),
}

/// One item or location as the durable store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CatalogEntry {
    /// An item.
    Item(Item),
    /// A location.
    Location(Location),
}

impl Ledger {
    pub(super) fn touch(&mut self, r: CatalogRef) {
        if let Some(dirty) = &mut self.catalog_dirty {
            dirty.push(r);
        }
    }

    /// Starts (or keeps) noting which items and locations change, for the durable store.
    pub fn track_catalog(&mut self) {
        self.catalog_dirty.get_or_insert_with(Vec::new);
    }

    /// The items and locations changed since the last call, each once, with their current value.
    pub fn take_catalog_changes(&mut self) -> Vec<(CatalogRef, CatalogEntry)> {
        let Some(dirty) = self.catalog_dirty.as_mut() else { return Vec::new() };
        if dirty.is_empty() {
            return Vec::new();
        }
        let mut refs = std::mem::take(dirty);
        refs.sort_unstable();
        refs.dedup();
        refs.into_iter()
            .filter_map(|r| match r {
                CatalogRef::Item(i) => self.items.entries.get(i as usize).map(|v| (r, CatalogEntry::Item(v.clone()))),
                CatalogRef::Location(i) => {
                    self.locations.entries.get(i as usize).map(|v| (r, CatalogEntry::Location(v.clone())))
                }
            })
            .collect()
    }

    /// Puts a stored item or location back (recovery): at its index, or appended right after
    /// the last one.
    pub fn restore_catalog(&mut self, r: CatalogRef, entry: CatalogEntry) -> Result<(), String> {
        fn put<T>(list: &mut Vec<T>, i: u32, v: T) -> Result<(), String> {
            let i = i as usize;
            match i.cmp(&list.len()) {
                std::cmp::Ordering::Less => list[i] = v,
                std::cmp::Ordering::Equal => list.push(v),
                std::cmp::Ordering::Greater => return Err(format!("catalog entry {i} follows a gap")),
            }
            Ok(())
        }
        match (r, entry) {
            (CatalogRef::Item(i), CatalogEntry::Item(v)) => put(&mut self.items.entries, i, v),
            (CatalogRef::Location(i), CatalogEntry::Location(v)) => put(&mut self.locations.entries, i, v),
            _ => Err("a catalog entry of the wrong kind".to_owned()),
        }
    }

    /// The stored movements from sequence `after + 1` on.
    pub fn movements_after(&self, after: u64) -> impl Iterator<Item = &MovementRecord> {
        self.movements.iter_from(usize::try_from(after).unwrap_or(usize::MAX).min(self.movements.len()))
    }

    /// The stored events from log position `from` on.
    pub fn events_from(&self, from: usize) -> impl Iterator<Item = &EventRecord> {
        self.events.iter_from(from.min(self.events.len()))
    }

    /// Appends a stored movement again (recovery): its levels are recomputed and must agree with
    /// what the movement recorded (`quantity_after`, `version_after`).
    pub fn restore_movement(&mut self, m: MovementRecord) -> Result<(), String> {
        let sequence = self.movements.len() as u64 + 1;
        if m.item as usize >= self.items.entries.len() {
            return Err(format!("movement {sequence} names item #{} which does not exist", m.item + 1));
        }
        for line in m.lines() {
            if line.location as usize >= self.locations.entries.len() {
                return Err(format!("movement {sequence} names location #{} which does not exist", line.location + 1));
            }
            let pair = (m.item, line.location);
            let level = self.levels.entry(pair).or_insert_with(|| {
                self.level_order.push(pair);
                LevelRecord::default()
            });
            level.quantity = level.quantity.checked_add(line.delta).ok_or("a level overflows")?;
            level.history.push(sequence);
            if level.quantity != line.quantity_after || level.history.len() as u64 != line.version_after {
                return Err(format!(
                    "movement {sequence} disagrees with the ledger before it (quantity {} / version {} recorded, {} / {} recomputed)",
                    line.quantity_after,
                    line.version_after,
                    level.quantity,
                    level.history.len()
                ));
            }
        }
        if let Some(original) = m.reverses() {
            match self.movements.get_mut(position(original.get())) {
                Some(o) => o.reversed_by = NonZeroU64::new(sequence),
                None => return Err(format!("movement {sequence} reverses a movement that does not exist")),
            }
        }
        self.movements.push(m);
        Ok(())
    }

    /// Appends a stored event again (recovery).
    pub fn restore_event(&mut self, e: EventRecord) {
        self.events.push(e);
    }

    /// The injected skews (pair, skew) and the corruption count.
    pub fn skews(&self) -> (Vec<Skew>, u64) {
        let mut v: Vec<_> = self.levels.iter().filter(|(_, l)| l.skew != 0).map(|(k, l)| (*k, l.skew)).collect();
        v.sort_unstable();
        (v, self.corruptions)
    }

    /// How many corruptions were injected.
    pub fn corruptions(&self) -> u64 {
        self.corruptions
    }

    /// Puts the injected skews back (recovery).
    pub fn restore_skews(&mut self, skews: &[Skew], corruptions: u64) -> Result<(), String> {
        for level in self.levels.values_mut() {
            level.skew = 0;
        }
        for (pair, skew) in skews {
            self.levels.get_mut(pair).ok_or("a skew names a pair with no level")?.skew = *skew;
        }
        self.corruptions = corruptions;
        Ok(())
    }
}
