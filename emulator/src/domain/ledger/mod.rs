//! One tenant's inventory: items, locations, the append-only movement ledger, the stock-level
//! snapshots, and the event log. No HTTP here.
//!
//! Every operation either fails having written nothing, or writes all of its effects at once:
//! the movement, each level it changes, and its events (the outbox the webhook worker reads).
//! The caller holds the tenant lock across an operation and the idempotency record it answers,
//! which is what makes them one commit.
//!
//! Invariant, for every (item, location) pair: `quantity == Σ delta` of its lines and
//! `version == number of its lines` (checked in debug builds after each movement, and by the
//! property test).
//!
//! A folder, one concern a file, because one file held all of it (1,600 lines). This file holds
//! the [`Ledger`] itself (its state and its ids), the wire types other modules pass in and get
//! back, and the re-exports that keep `domain::ledger::…` the one path to all of it. Each file
//! below adds its own `impl Ledger` block; none imports another that imports it:
//!
//! - [`catalogue`]: items and locations, one implementation for both;
//! - [`movements`]: planning, checking and committing movements, and reading them back;
//! - [`movement_json`]: the write path's byte-exact rendering of a movement;
//! - [`levels`]: stock levels, their history, and the invariants;
//! - [`events`]: the event log (the webhook outbox);
//! - [`indexes`]: the secondary indexes the lists answer from;
//! - [`reconcile`]: levels recomputed from the lines, and injected corruptions;
//! - [`persistence`]: what the durable store reads and restores.

pub mod catalogue;
pub mod events;
pub mod indexes;
pub mod levels;
pub mod movement_json;
pub mod movements;
pub mod persistence;
pub mod reconcile;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use self::catalogue::{Catalogue, CatalogueFilter, CatalogueKind, Catalogued};
pub use self::events::{EventData, EventRecord};
pub use self::indexes::LedgerIndexes;
pub use self::levels::LevelRecord;
pub use self::movements::{LineRecord, MovementExtra, MovementFilter, MovementRecord};
pub use self::persistence::{CatalogEntry, CatalogRef, Skew};
use super::chunked::ChunkedVec;
use super::error::DomainError;
use super::idempotency::IdempotencyStore;
use super::model::{FieldError, Item, Location};
pub use super::paging::{Page, Window};
pub use super::validate::QUANTITY_MAGNITUDE_MAX;
use crate::ids;

/// What an `If-Match` header asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: any existing resource.
    Any,
    /// One or more strong ETags (versions). Weak tags never match and are left out.
    Versions(Vec<u64>),
}

impl IfMatch {
    /// Ok when the precondition holds for a resource at version `current`.
    pub fn check(&self, current: u64) -> Result<(), DomainError> {
        match self {
            IfMatch::Any => Ok(()),
            IfMatch::Versions(v) if v.contains(&current) => Ok(()),
            IfMatch::Versions(_) => Err(DomainError::stale(current)),
        }
    }
}

/// Event types written by the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// `item.created`
    #[serde(rename = "item.created")]
    ItemCreated,
    /// `item.updated`
    #[serde(rename = "item.updated")]
    ItemUpdated,
    /// `item.archived`
    #[serde(rename = "item.archived")]
    ItemArchived,
    /// `location.created`
    #[serde(rename = "location.created")]
    LocationCreated,
    /// `location.updated`
    #[serde(rename = "location.updated")]
    LocationUpdated,
    /// `location.archived`
    #[serde(rename = "location.archived")]
    LocationArchived,
    /// `stock_movement.created`
    #[serde(rename = "stock_movement.created")]
    MovementCreated,
    /// `stock_level.updated`
    #[serde(rename = "stock_level.updated")]
    LevelUpdated,
    /// `stock_level.below_threshold`
    #[serde(rename = "stock_level.below_threshold")]
    LevelBelowThreshold,
    /// `webhook_endpoint.disabled`
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled,
    /// `webhook_delivery.exhausted`
    #[serde(rename = "webhook_delivery.exhausted")]
    WebhookDeliveryExhausted,
    /// `invoice.created`
    #[serde(rename = "invoice.created")]
    InvoiceCreated,
    /// `usage.quota_exceeded`
    #[serde(rename = "usage.quota_exceeded")]
    UsageQuotaExceeded,
    /// `reconciliation.completed`
    #[serde(rename = "reconciliation.completed")]
    ReconciliationCompleted,
    /// `ping` (sent by `POST /v1/webhook-endpoints/{id}/test`)
    #[serde(rename = "ping")]
    Ping,
}

impl EventType {
    /// Every type the ledger writes.
    pub const ALL: [EventType; 15] = [
        EventType::ItemCreated,
        EventType::ItemUpdated,
        EventType::ItemArchived,
        EventType::LocationCreated,
        EventType::LocationUpdated,
        EventType::LocationArchived,
        EventType::MovementCreated,
        EventType::LevelUpdated,
        EventType::LevelBelowThreshold,
        EventType::WebhookEndpointDisabled,
        EventType::WebhookDeliveryExhausted,
        EventType::InvoiceCreated,
        EventType::UsageQuotaExceeded,
        EventType::ReconciliationCompleted,
        EventType::Ping,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ItemCreated => "item.created",
            EventType::ItemUpdated => "item.updated",
            EventType::ItemArchived => "item.archived",
            EventType::LocationCreated => "location.created",
            EventType::LocationUpdated => "location.updated",
            EventType::LocationArchived => "location.archived",
            EventType::MovementCreated => "stock_movement.created",
            EventType::LevelUpdated => "stock_level.updated",
            EventType::LevelBelowThreshold => "stock_level.below_threshold",
            EventType::WebhookEndpointDisabled => "webhook_endpoint.disabled",
            EventType::WebhookDeliveryExhausted => "webhook_delivery.exhausted",
            EventType::InvoiceCreated => "invoice.created",
            EventType::UsageQuotaExceeded => "usage.quota_exceeded",
            EventType::ReconciliationCompleted => "reconciliation.completed",
            EventType::Ping => "ping",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// A pair whose snapshot disagrees with its ledger lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Discrepancy {
    /// The item.
    pub item_id: String,
    /// The location.
    pub location_id: String,
    /// What the snapshot reads.
    pub snapshot_quantity: i64,
    /// Σ delta of the pair's ledger lines.
    pub ledger_quantity: i64,
    /// `snapshot_quantity - ledger_quantity`.
    pub difference: i64,
}

/// What a reconciliation of the snapshot against the ledger found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileResult {
    /// Pairs compared.
    pub checked: u64,
    /// Pairs that disagree (all of them; the caller bounds what it keeps).
    pub discrepancies: Vec<Discrepancy>,
}

/// One tenant's ledger state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ledger {
    /// The id tag of this incarnation (a reset draws a new one).
    pub tag: String,
    items: Catalogue<Item>,
    locations: Catalogue<Location>,
    movements: ChunkedVec<MovementRecord>,
    #[serde(with = "pairs")]
    levels: HashMap<(u32, u32), LevelRecord>,
    level_order: Vec<(u32, u32)>,
    events: ChunkedVec<EventRecord>,
    /// Idempotency records.
    pub idempotency: IdempotencyStore,
    /// How many corruptions were injected (reconciliation results are cached on it).
    #[serde(default)]
    corruptions: u64,
    /// Most ledger lines the current operation may write (a hard quota), set by the caller.
    #[serde(skip)]
    line_budget: Option<u64>,
    /// Items and locations changed since the durable store last took them (`None`: not tracked,
    /// the in-memory default).
    #[serde(skip)]
    catalog_dirty: Option<Vec<CatalogRef>>,
    /// Secondary indexes of movements, events and levels; derived, rebuilt on load.
    #[serde(skip)]
    indexes: LedgerIndexes,
}

mod pairs {
    use super::*;
    pub fn serialize<S: serde::Serializer>(m: &HashMap<(u32, u32), LevelRecord>, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<_> = m.iter().collect();
        v.sort_by_key(|(k, _)| **k);
        s.collect_seq(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HashMap<(u32, u32), LevelRecord>, D::Error> {
        Ok(Vec::<((u32, u32), LevelRecord)>::deserialize(d)?.into_iter().collect())
    }
}

#[inline]
pub(super) fn position(id: u64) -> usize {
    usize::try_from(id - 1).unwrap_or(usize::MAX)
}

impl Ledger {
    /// An empty ledger with a fresh id tag.
    pub fn new() -> Ledger {
        Ledger::with_tag(ids::new_tag())
    }

    /// An empty ledger with this tag.
    pub fn with_tag(tag: String) -> Ledger {
        Ledger {
            tag,
            items: Catalogue::default(),
            locations: Catalogue::default(),
            movements: ChunkedVec::default(),
            levels: HashMap::new(),
            level_order: Vec::new(),
            events: ChunkedVec::default(),
            idempotency: IdempotencyStore::default(),
            corruptions: 0,
            line_budget: None,
            catalog_dirty: None,
            indexes: LedgerIndexes::default(),
        }
    }

    /// Rebuilds derived indexes after deserialisation and checks the invariants.
    pub fn rebuild(&mut self) -> Result<(), String> {
        self.items.index_keys();
        self.locations.index_keys();
        self.rebuild_indexes();
        self.check_invariants()
    }

    /// Heap bytes held by the secondary indexes (catalogue and ledger).
    pub fn index_bytes(&self) -> usize {
        self.indexes.bytes() + self.items.index_bytes() + self.locations.index_bytes()
    }
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

pub(super) fn not_found_field(what: &str, field: &str) -> DomainError {
    let mut e = DomainError::not_found(what);
    e.errors.push(FieldError::new(field, format!("no such {what}")));
    e
}
