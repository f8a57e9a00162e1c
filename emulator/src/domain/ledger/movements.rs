//! Movements: the append-only ledger. A movement is planned against the catalogue, checked
//! against stock (and a batch's earlier entries) and the line budget, then committed with its
//! level changes and events at once; this file also reads movements back.
//!
//! Why a file of its own: this is the write path (`POST /v1/stock-movements`), the code that
//! must stay small and fast; the stored record's shape is beside the code that writes it.

use std::collections::HashMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::events::{EventData, EventRecord};
use super::indexes::{slot, type_slot};
use super::levels::LevelRecord;
use super::{EventType, IfMatch, Ledger, position};
use crate::clock::Timestamp;
use crate::domain::error::{DomainError, ErrorKind};
use crate::domain::index::{Seek, page};
use crate::domain::model::*;
use crate::domain::paging::{Page, Window};
use crate::domain::validate;
use crate::ids;

/// One line of a stored movement.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct LineRecord {
    /// Location index.
    pub location: u32,
    /// Signed change.
    pub delta: i64,
    /// Quantity right after.
    pub quantity_after: i64,
    /// Level version right after.
    pub version_after: u64,
}

/// A stored movement; its sequence is its position + 1.
///
/// Kept small (72 bytes): a million movements are a million of these, so the rare parts (the
/// second line of a transfer; reference, reason, metadata, reversal link) sit behind boxes that
/// most movements leave empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MovementRecord {
    /// Its type.
    pub kind: MovementType,
    /// Item index.
    pub item: u32,
    /// The first line.
    pub first: LineRecord,
    /// Commit time.
    pub created_at: Timestamp,
    /// The movement that reversed it.
    pub reversed_by: Option<NonZeroU64>,
    /// The second line of a transfer.
    pub second: Option<Box<LineRecord>>,
    /// Reference, reason, metadata and reversal link, when any is set.
    pub extra: Option<Box<MovementExtra>>,
}

/// The optional parts of a movement.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MovementExtra {
    /// Reference.
    pub reference: Option<Box<str>>,
    /// Reason.
    pub reason: Option<Box<str>>,
    /// Metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The movement it reverses.
    pub reverses: Option<NonZeroU64>,
}

// The memory target (< 400 MB per million movements) depends on this staying small.
const _: () = assert!(std::mem::size_of::<MovementRecord>() <= 72);
const _: () = assert!(std::mem::size_of::<EventRecord>() <= 32);

impl MovementRecord {
    pub(super) fn lines(&self) -> impl Iterator<Item = &LineRecord> {
        std::iter::once(&self.first).chain(self.second.as_deref())
    }
    pub(super) fn reference(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.reference.as_deref())
    }
    pub(super) fn reverses(&self) -> Option<NonZeroU64> {
        self.extra.as_ref().and_then(|e| e.reverses)
    }
}

/// Filters of `GET /v1/stock-movements`.
#[derive(Clone, Debug, Default)]
pub struct MovementFilter {
    /// Item id.
    pub item_id: Option<String>,
    /// Location id (any line).
    pub location_id: Option<String>,
    /// Type.
    pub kind: Option<MovementType>,
    /// Only sequences greater than this.
    pub after_sequence: Option<u64>,
    /// Only created strictly after.
    pub created_after: Option<Timestamp>,
    /// Only created strictly before.
    pub created_before: Option<Timestamp>,
}

/// A movement checked against the catalogue, not yet against stock.
#[derive(Debug)]
struct Planned {
    kind: MovementType,
    item: u32,
    lines: Vec<(u32, i64)>,
    reference: Option<Box<str>>,
    reason: Option<Box<str>>,
    metadata: Option<Box<Map<String, Value>>>,
    reverses: Option<NonZeroU64>,
    allow_negative: bool,
}

impl Ledger {
    /// The id of the movement with this sequence.
    pub fn movement_id(&self, sequence: u64) -> String {
        ids::format("mov", &self.tag, sequence)
    }

    /// The sequence of a movement id of this tenant.
    pub fn movement_sequence(&self, id: &str) -> Option<u64> {
        ids::parse("mov", &self.tag, id).filter(|s| *s <= self.movements.len() as u64)
    }

    fn plan(&self, req: CreateMovement) -> Result<Planned, DomainError> {
        validate::create_movement(&req)?;
        let item = self.active::<Item>(&req.item_id, "item_id")?;
        let lines = match req.type_ {
            MovementType::Transfer => {
                let from =
                    self.active::<Location>(req.from_location_id.as_deref().unwrap_or_default(), "from_location_id")?;
                let to =
                    self.active::<Location>(req.to_location_id.as_deref().unwrap_or_default(), "to_location_id")?;
                vec![(from, -req.quantity), (to, req.quantity)]
            }
            kind => {
                let at = self.active::<Location>(req.location_id.as_deref().unwrap_or_default(), "location_id")?;
                let delta = if kind == MovementType::Shipment { -req.quantity } else { req.quantity };
                vec![(at, delta)]
            }
        };
        Ok(Planned {
            kind: req.type_,
            item,
            lines,
            reference: req.reference.map(String::into_boxed_str),
            reason: req.reason.map(String::into_boxed_str),
            metadata: req.metadata.map(Box::new),
            reverses: None,
            allow_negative: req.allow_negative.unwrap_or(false),
        })
    }

    /// Checks stock for `p` given pending changes of earlier batch entries in `pending`, and
    /// records its own changes there.
    fn check_stock(&self, p: &Planned, pending: &mut HashMap<(u32, u32), i64>) -> Result<(), DomainError> {
        for (location, delta) in &p.lines {
            let pair = (p.item, *location);
            let before = pending.get(&pair).copied().unwrap_or_else(|| self.quantity(pair));
            let after = before.checked_add(*delta).ok_or_else(|| {
                DomainError::validation(vec![FieldError::new("quantity", "the level would overflow")])
            })?;
            if after < 0 && *delta < 0 && !p.allow_negative {
                let mut e = DomainError::new(
                    ErrorKind::InsufficientStock,
                    format!(
                        "Location {} holds {before} of item {}; {} requested.",
                        self.location_id(*location),
                        self.item_id(p.item),
                        -delta
                    ),
                );
                e.errors.push(FieldError::new("quantity", format!("only {before} available")));
                return Err(e);
            }
            pending.insert(pair, after);
        }
        Ok(())
    }

    /// Sets the most ledger lines the next operations may write (`None`: no limit). Billing sets
    /// it from a hard quota around one operation, so an operation over the quota fails having
    /// written nothing, like any other domain error.
    pub fn set_line_budget(&mut self, budget: Option<u64>) {
        self.line_budget = budget;
    }

    fn check_line_budget(&self, lines: u64) -> Result<(), DomainError> {
        match self.line_budget {
            Some(budget) if lines > budget => Err(DomainError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "This write needs {lines} ledger lines and {budget} remain in this billing period's ledger_lines quota; upgrade the plan (POST /v1/subscription) or wait for the next period."
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Number of ledger lines of the movements from sequence `movements_before + 1` on.
    pub fn lines_since(&self, movements_before: u64) -> u64 {
        let start = usize::try_from(movements_before).unwrap_or(usize::MAX);
        if start >= self.movements.len() {
            return 0;
        }
        self.movements.iter_from(start).map(|m| 1 + u64::from(m.second.is_some())).sum()
    }

    /// Number of ledger lines in `[from, until)` of commit time (binary search, then a count).
    pub fn lines_between(&self, from: Timestamp, until: Timestamp) -> u64 {
        let start = self.movements.partition_point(|m| m.created_at < from);
        let end = self.movements.partition_point(|m| m.created_at < until);
        self.movements.iter_from(start).take(end.saturating_sub(start)).map(|m| 1 + u64::from(m.second.is_some())).sum()
    }

    /// Writes a checked movement, its level changes and its events. Cannot fail.
    fn commit(&mut self, p: Planned, now: Timestamp) -> u64 {
        let sequence = self.movements.len() as u64 + 1;
        let threshold = self.items.entries[p.item as usize].low_stock_threshold;
        let mut lines = Vec::with_capacity(2);
        for (location, delta) in &p.lines {
            let pair = (p.item, *location);
            let level = self.levels.entry(pair).or_insert_with(|| {
                let order = self.level_order.len() as u32;
                self.level_order.push(pair);
                slot(&mut self.indexes.levels_by_item, pair.0).push(order);
                slot(&mut self.indexes.levels_by_location, pair.1).push(order);
                LevelRecord { order, ..LevelRecord::default() }
            });
            let before = level.quantity;
            level.quantity += delta;
            level.history.push(sequence);
            let crossed = threshold.is_some_and(|t| before >= t && level.quantity < t);
            let below = threshold.is_some_and(|t| level.snapshot_quantity() < t);
            if below != level.below {
                level.below = below;
                if below {
                    self.indexes.levels_below.insert(level.order);
                } else {
                    self.indexes.levels_below.remove(&level.order);
                }
            }
            lines.push((
                LineRecord {
                    location: *location,
                    delta: *delta,
                    quantity_after: level.quantity,
                    version_after: level.history.len() as u64,
                },
                crossed,
            ));
        }
        let mut it = lines.iter().map(|(l, _)| *l);
        let first = it.next().unwrap_or(LineRecord { location: 0, delta: 0, quantity_after: 0, version_after: 0 });
        let extra =
            (p.reference.is_some() || p.reason.is_some() || p.metadata.is_some() || p.reverses.is_some()).then(|| {
                Box::new(MovementExtra {
                    reference: p.reference,
                    reason: p.reason,
                    metadata: p.metadata.map(|m| *m),
                    reverses: p.reverses,
                })
            });
        self.movements.push(MovementRecord {
            kind: p.kind,
            item: p.item,
            first,
            created_at: now,
            reversed_by: None,
            second: it.next().map(Box::new),
            extra,
        });
        self.index_movement(position(sequence));
        if let Some(original) = p.reverses {
            if let Some(m) = self.movements.get_mut(position(original.get())) {
                m.reversed_by = NonZeroU64::new(sequence);
            }
        }
        self.emit(EventType::MovementCreated, EventData::Movement(sequence), now);
        for (i, (_, crossed)) in lines.iter().enumerate() {
            self.emit(EventType::LevelUpdated, EventData::Level { sequence, line: i as u8 }, now);
            if *crossed {
                self.emit(EventType::LevelBelowThreshold, EventData::Level { sequence, line: i as u8 }, now);
            }
        }
        #[cfg(debug_assertions)]
        for (location, _) in &p.lines {
            self.debug_assert_pair((p.item, *location));
        }
        sequence
    }

    /// `POST /v1/stock-movements`. `if_match` is the ETag of the first level it changes.
    pub fn create_movement(
        &mut self,
        req: CreateMovement,
        if_match: Option<&IfMatch>,
        now: Timestamp,
    ) -> Result<u64, DomainError> {
        let planned = self.plan(req)?;
        if let Some(if_match) = if_match {
            if_match.check(self.version((planned.item, planned.lines[0].0)))?;
        }
        self.check_stock(&planned, &mut HashMap::new())?;
        self.check_line_budget(planned.lines.len() as u64)?;
        Ok(self.commit(planned, now))
    }

    /// `POST /v1/stock-movements/batch`: all or nothing. Returns the first sequence.
    pub fn create_batch(&mut self, batch: CreateMovementBatch, now: Timestamp) -> Result<(u64, u32), DomainError> {
        let count = batch.movements.len();
        if count == 0 || count > validate::BATCH_LEN_MAX {
            return Err(DomainError::validation(vec![FieldError::new(
                "movements",
                format!("must hold 1..={} movements", validate::BATCH_LEN_MAX),
            )]));
        }
        let mut planned = Vec::with_capacity(count);
        let mut pending = HashMap::new();
        for (i, req) in batch.movements.into_iter().enumerate() {
            let p = self.plan(req).map_err(|e| e.within(&format!("movements[{i}]")))?;
            self.check_stock(&p, &mut pending).map_err(|e| e.within(&format!("movements[{i}]")))?;
            planned.push(p);
        }
        self.check_line_budget(planned.iter().map(|p| p.lines.len() as u64).sum())?;
        let first = self.movements.len() as u64 + 1;
        for p in planned {
            self.commit(p, now);
        }
        Ok((first, count as u32))
    }

    /// `POST /v1/stock-movements/{id}/reverse`.
    pub fn reverse(&mut self, id: &str, req: ReverseMovement, now: Timestamp) -> Result<u64, DomainError> {
        validate::reverse(&req)?;
        let sequence = self.movement_sequence(id).ok_or_else(|| DomainError::not_found("stock movement"))?;
        let original =
            self.movements.get(position(sequence)).ok_or_else(|| DomainError::not_found("stock movement"))?;
        if let Some(by) = original.reversed_by {
            return Err(DomainError::new(
                ErrorKind::AlreadyReversed,
                format!("Movement {id} was already reversed by {}.", self.movement_id(by.get())),
            ));
        }
        let item_id = self.item_id(original.item);
        self.active::<Item>(&item_id, "item_id")?;
        let mut lines = Vec::with_capacity(2);
        for line in original.lines() {
            self.active::<Location>(&self.location_id(line.location), "location_id")?;
            lines.push((line.location, -line.delta));
        }
        let planned = Planned {
            kind: original.kind,
            item: original.item,
            lines,
            reference: original.reference().map(Box::from),
            reason: req.reason.map(String::into_boxed_str),
            metadata: None,
            reverses: NonZeroU64::new(sequence),
            allow_negative: req.allow_negative.unwrap_or(false),
        };
        self.check_stock(&planned, &mut HashMap::new())?;
        self.check_line_budget(planned.lines.len() as u64)?;
        Ok(self.commit(planned, now))
    }

    /// Renders the movement with this sequence (which must exist).
    pub fn movement(&self, sequence: u64) -> Movement {
        let Some(m) = self.movements.get(position(sequence)) else {
            return Movement {
                id: self.movement_id(sequence),
                sequence,
                type_: MovementType::Adjustment,
                item_id: String::new(),
                lines: Vec::new(),
                reference: None,
                reason: None,
                metadata: None,
                reverses: None,
                created_at: Timestamp::default(),
            };
        };
        Movement {
            id: self.movement_id(sequence),
            sequence,
            type_: m.kind,
            item_id: self.item_id(m.item),
            lines: m
                .lines()
                .map(|l| MovementLine {
                    location_id: self.location_id(l.location),
                    delta: l.delta,
                    quantity_after: l.quantity_after,
                })
                .collect(),
            reference: m.reference().map(str::to_owned),
            reason: m.extra.as_ref().and_then(|e| e.reason.as_deref()).map(str::to_owned),
            metadata: m.extra.as_ref().and_then(|e| e.metadata.clone()),
            reverses: m.reverses().map(|s| self.movement_id(s.get())),
            created_at: m.created_at,
        }
    }

    /// The version of the first level a movement changed, right after it (its `ETag`).
    pub fn movement_etag(&self, sequence: u64) -> u64 {
        self.movements.get(position(sequence)).map_or(0, |m| m.first.version_after)
    }

    /// `GET /v1/stock-movements/{id}`.
    pub fn movement_by_id(&self, id: &str) -> Result<Movement, DomainError> {
        let seq = self.movement_sequence(id).ok_or_else(|| DomainError::not_found("stock movement"))?;
        Ok(self.movement(seq))
    }

    /// Number of movements.
    pub fn movement_count(&self) -> u64 {
        self.movements.len() as u64
    }

    /// `GET /v1/stock-movements`.
    pub fn movements(&self, f: &MovementFilter, window: Window) -> Result<Page<Movement>, DomainError> {
        let item = match &f.item_id {
            Some(id) => match self.item_index(id) {
                Some(i) => Some(i),
                None => return Ok(Page { data: Vec::new(), next: None }),
            },
            None => None,
        };
        let location = match &f.location_id {
            Some(id) => match self.location_index(id) {
                Some(i) => Some(i),
                None => return Ok(Page { data: Vec::new(), next: None }),
            },
            None => None,
        };
        let mut start = window.start;
        if let Some(after) = f.after_sequence {
            start = start.max(usize::try_from(after).unwrap_or(usize::MAX));
        }
        if let Some(t) = f.created_after {
            start = start.max(self.movements.partition_point(|m| m.created_at <= t));
        }
        let end = match f.created_before {
            Some(t) => self.movements.partition_point(|m| m.created_at < t),
            None => self.movements.len(),
        };
        if start >= end {
            return Ok(Page { data: Vec::new(), next: None });
        }
        let none = crate::domain::index::Postings::default();
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(i) = item {
            lists.push(self.indexes.movements_by_item.get(i as usize).unwrap_or(&none));
        }
        if let Some(l) = location {
            lists.push(self.indexes.movements_by_location.get(l as usize).unwrap_or(&none));
        }
        if let Some(k) = f.kind {
            lists.push(&self.indexes.movements_by_type[type_slot(k)]);
        }
        let accept = |p: usize| {
            self.movements.get(p).is_some_and(|m| {
                item.is_none_or(|i| i == m.item)
                    && f.kind.is_none_or(|k| k == m.kind)
                    && location.is_none_or(|l| m.lines().any(|line| line.location == l))
            })
        };
        Ok(page(&mut lists, start, end, window.limit, accept, |p| Some(self.movement(p as u64 + 1))))
    }
}
