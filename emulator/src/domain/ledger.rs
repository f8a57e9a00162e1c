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

use std::collections::HashMap;
use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::chunked::ChunkedVec;
use super::error::{DomainError, ErrorKind};
use super::idempotency::IdempotencyStore;
use super::model::*;
use super::paging::scan;
pub use super::paging::{PAGE_SCAN_MAX, Page, Window};
use super::validate;
pub use super::validate::QUANTITY_MAGNITUDE_MAX;
use crate::clock::Timestamp;
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

/// What an event carries, stored compactly and rendered on read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum EventData {
    /// The movement with this sequence.
    Movement(u64),
    /// The level written by line `line` of movement `sequence`.
    Level {
        /// Movement sequence.
        sequence: u64,
        /// Line index.
        line: u8,
    },
    /// A rendered resource (items, locations: rare, so kept whole).
    Snapshot(Box<Value>),
}

/// An event in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventRecord {
    /// Its type.
    pub kind: EventType,
    /// When.
    pub created_at: Timestamp,
    /// Its data.
    pub data: EventData,
}

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

/// Writes a stored movement as serialising [`Movement`] does, byte for byte, straight from the
/// record: the keys and most values need no escaping, so only free text goes through serde_json.
fn write_movement(out: &mut Vec<u8>, ledger: &Ledger, sequence: u64, r: &MovementRecord) -> serde_json::Result<()> {
    let id = |out: &mut Vec<u8>, prefix: &str, position: u64| {
        out.push(b'"');
        out.extend_from_slice(ids::IdText::new(prefix, &ledger.tag, position).as_str().as_bytes());
        out.push(b'"');
    };
    let extra = r.extra.as_deref();
    out.extend_from_slice(b"{\"id\":");
    id(out, "mov", sequence);
    out.extend_from_slice(b",\"sequence\":");
    serde_json::to_writer(&mut *out, &sequence)?;
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(r.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"item_id\":");
    id(out, "itm", u64::from(r.item) + 1);
    out.extend_from_slice(b",\"lines\":[");
    for (i, line) in r.lines().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"location_id\":");
        id(out, "loc", u64::from(line.location) + 1);
        out.extend_from_slice(b",\"delta\":");
        serde_json::to_writer(&mut *out, &line.delta)?;
        out.extend_from_slice(b",\"quantity_after\":");
        serde_json::to_writer(&mut *out, &line.quantity_after)?;
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"reference\":");
    serde_json::to_writer(&mut *out, &r.reference())?;
    out.extend_from_slice(b",\"reason\":");
    serde_json::to_writer(&mut *out, &extra.and_then(|e| e.reason.as_deref()))?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut *out, &extra.and_then(|e| e.metadata.as_ref()))?;
    out.extend_from_slice(b",\"reverses\":");
    match r.reverses() {
        Some(s) => id(out, "mov", s.get()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"created_at\":");
    serde_json::to_writer(&mut *out, &r.created_at)?;
    out.push(b'}');
    Ok(())
}

// The memory target (< 400 MB per million movements) depends on this staying small.
const _: () = assert!(std::mem::size_of::<MovementRecord>() <= 72);
const _: () = assert!(std::mem::size_of::<EventRecord>() <= 32);

impl MovementRecord {
    fn lines(&self) -> impl Iterator<Item = &LineRecord> {
        std::iter::once(&self.first).chain(self.second.as_deref())
    }
    fn reference(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.reference.as_deref())
    }
    fn reverses(&self) -> Option<NonZeroU64> {
        self.extra.as_ref().and_then(|e| e.reverses)
    }
}

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

/// Filters of `GET /v1/items` and `GET /v1/locations`.
#[derive(Clone, Debug, Default)]
pub struct CatalogueFilter {
    /// Exact `sku` / `code`.
    pub key: Option<String>,
    /// Case-insensitive substring of sku/code or name.
    pub q: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Location kind (locations only).
    pub kind: Option<LocationKind>,
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

/// One tenant's ledger state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ledger {
    /// The id tag of this incarnation (a reset draws a new one).
    pub tag: String,
    items: Vec<Item>,
    locations: Vec<Location>,
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
    #[serde(skip)]
    skus: HashMap<String, u32>,
    #[serde(skip)]
    codes: HashMap<String, u32>,
    /// Items and locations changed since the durable store last took them (`None`: not tracked,
    /// the in-memory default).
    #[serde(skip)]
    catalog_dirty: Option<Vec<CatalogRef>>,
}

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

fn position(id: u64) -> usize {
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
            items: Vec::new(),
            locations: Vec::new(),
            movements: ChunkedVec::default(),
            levels: HashMap::new(),
            level_order: Vec::new(),
            events: ChunkedVec::default(),
            idempotency: IdempotencyStore::default(),
            corruptions: 0,
            line_budget: None,
            skus: HashMap::new(),
            codes: HashMap::new(),
            catalog_dirty: None,
        }
    }

    /// Rebuilds derived indexes after deserialisation and checks the invariants.
    pub fn rebuild(&mut self) -> Result<(), String> {
        self.skus = self.items.iter().enumerate().map(|(i, it)| (it.sku.clone(), i as u32)).collect();
        self.codes = self.locations.iter().enumerate().map(|(i, l)| (l.code.clone(), i as u32)).collect();
        self.check_invariants()
    }

    // ---- ids -------------------------------------------------------------------------------

    fn item_id(&self, index: u32) -> String {
        ids::format("itm", &self.tag, u64::from(index) + 1)
    }
    fn location_id(&self, index: u32) -> String {
        ids::format("loc", &self.tag, u64::from(index) + 1)
    }
    /// The id of the movement with this sequence.
    pub fn movement_id(&self, sequence: u64) -> String {
        ids::format("mov", &self.tag, sequence)
    }
    fn event_id(&self, position: usize) -> String {
        ids::format("evt", &self.tag, position as u64 + 1)
    }

    fn item_index(&self, id: &str) -> Option<u32> {
        let p = ids::parse("itm", &self.tag, id)?;
        (p <= self.items.len() as u64).then(|| (p - 1) as u32)
    }
    fn location_index(&self, id: &str) -> Option<u32> {
        let p = ids::parse("loc", &self.tag, id)?;
        (p <= self.locations.len() as u64).then(|| (p - 1) as u32)
    }
    /// The sequence of a movement id of this tenant.
    pub fn movement_sequence(&self, id: &str) -> Option<u64> {
        ids::parse("mov", &self.tag, id).filter(|s| *s <= self.movements.len() as u64)
    }
    /// The log position of an event id of this tenant.
    pub fn event_position(&self, id: &str) -> Option<usize> {
        ids::parse("evt", &self.tag, id).map(position).filter(|p| *p < self.events.len())
    }

    // ---- events ----------------------------------------------------------------------------

    fn emit(&mut self, kind: EventType, data: EventData, now: Timestamp) {
        self.events.push(EventRecord { kind, created_at: now, data });
    }

    /// Number of events in the log.
    pub fn event_count(&self) -> usize {
        self.events.len()
    }

    /// Writes an event whose data is a rendered resource (webhook and billing events).
    pub fn emit_snapshot(&mut self, kind: EventType, data: Value, now: Timestamp) {
        self.emit(kind, EventData::Snapshot(Box::new(data)), now);
    }

    /// The id and type of the event at `position`.
    pub fn event_head(&self, position: usize) -> Option<(String, String)> {
        let e = self.events.get(position)?;
        Some((self.event_id(position), e.kind.as_str().to_owned()))
    }

    /// The `endpoint_id` an event's data names, if any (webhook events).
    pub fn event_endpoint(&self, position: usize) -> Option<String> {
        match &self.events.get(position)?.data {
            EventData::Snapshot(v) => v.get("endpoint_id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }

    /// The event at `position`, rendered.
    pub fn event_at(&self, position: usize) -> Option<Event> {
        self.events.get(position).map(|e| self.render_event(position, e))
    }

    fn render_event(&self, position: usize, e: &EventRecord) -> Event {
        let data = match &e.data {
            EventData::Movement(seq) => serde_json::to_value(self.movement(*seq)),
            EventData::Level { sequence, line } => serde_json::to_value(self.level_from_line(*sequence, *line)),
            EventData::Snapshot(v) => Ok((**v).clone()),
        };
        Event {
            id: self.event_id(position),
            type_: e.kind.as_str().to_owned(),
            created_at: e.created_at,
            data: data.unwrap_or(Value::Null),
        }
    }

    /// `GET /v1/events/{id}`.
    pub fn event(&self, id: &str) -> Result<Event, DomainError> {
        let p = self.event_position(id).ok_or_else(|| DomainError::not_found("event"))?;
        let e = self.events.get(p).ok_or_else(|| DomainError::not_found("event"))?;
        Ok(self.render_event(p, e))
    }

    /// `GET /v1/events`: `after` is an event id to start after.
    pub fn events(&self, kind: Option<&str>, after: Option<&str>, window: Window) -> Result<Page<Event>, DomainError> {
        let mut start = window.start;
        if let Some(after) = after {
            let p = self
                .event_position(after)
                .ok_or_else(|| DomainError::validation(vec![FieldError::new("after", "no such event")]))?;
            start = start.max(p + 1);
        }
        let kind = match kind {
            Some(k) => Some(
                EventType::parse(k)
                    .ok_or_else(|| DomainError::validation(vec![FieldError::new("type", "unknown event type")]))?,
            ),
            None => None,
        };
        Ok(scan(self.events.iter_from(start), start, window.limit, |p, e| {
            (kind.is_none_or(|k| k == e.kind)).then(|| self.render_event(p, e))
        }))
    }

    // ---- items -----------------------------------------------------------------------------

    /// `POST /v1/items`.
    pub fn create_item(&mut self, req: CreateItem, now: Timestamp) -> Result<Item, DomainError> {
        validate::create_item(&req)?;
        if self.skus.contains_key(&req.sku) {
            return Err(DomainError::new(ErrorKind::SkuTaken, format!("SKU {:?} is already used.", req.sku)));
        }
        let index = self.items.len() as u32;
        let item = Item {
            id: self.item_id(index),
            sku: req.sku,
            name: req.name,
            unit: req.unit.unwrap_or_else(|| "each".to_owned()),
            attributes: req.attributes.unwrap_or_default(),
            low_stock_threshold: req.low_stock_threshold,
            status: Status::Active,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.skus.insert(item.sku.clone(), index);
        self.items.push(item.clone());
        self.touch(CatalogRef::Item(index));
        self.emit(EventType::ItemCreated, snapshot(&item), now);
        Ok(item)
    }

    /// `GET /v1/items/{id}`.
    pub fn item(&self, id: &str) -> Result<&Item, DomainError> {
        self.item_index(id).map(|i| &self.items[i as usize]).ok_or_else(|| DomainError::not_found("item"))
    }

    /// `PATCH /v1/items/{id}`.
    pub fn update_item(
        &mut self,
        id: &str,
        patch: UpdateItem,
        if_match: &IfMatch,
        now: Timestamp,
    ) -> Result<Item, DomainError> {
        let index = self.item_index(id).ok_or_else(|| DomainError::not_found("item"))?;
        if_match.check(self.items[index as usize].version)?;
        validate::update_item(&patch)?;
        if let Some(sku) = &patch.sku {
            if self.skus.get(sku).is_some_and(|i| *i != index) {
                return Err(DomainError::new(ErrorKind::SkuTaken, format!("SKU {sku:?} is already used.")));
            }
        }
        let mut item = self.items[index as usize].clone();
        if let Some(sku) = patch.sku {
            self.skus.remove(&item.sku);
            self.skus.insert(sku.clone(), index);
            item.sku = sku;
        }
        if let Some(name) = patch.name {
            item.name = name;
        }
        if let Some(unit) = patch.unit {
            item.unit = unit;
        }
        if let Some(attrs) = patch.attributes {
            merge_patch(&mut item.attributes, attrs);
            validate::attributes("attributes", &item.attributes)?;
        }
        if let Some(t) = patch.low_stock_threshold {
            item.low_stock_threshold = t;
        }
        if item == self.items[index as usize] {
            return Ok(item); // nothing changed: no new version, no event
        }
        item.version += 1;
        item.updated_at = now;
        self.items[index as usize] = item.clone();
        self.touch(CatalogRef::Item(index));
        self.emit(EventType::ItemUpdated, snapshot(&item), now);
        Ok(item)
    }

    /// `DELETE /v1/items/{id}`: archives. Archiving an archived item changes nothing.
    pub fn archive_item(&mut self, id: &str, if_match: &IfMatch, now: Timestamp) -> Result<Item, DomainError> {
        let index = self.item_index(id).ok_or_else(|| DomainError::not_found("item"))? as usize;
        if_match.check(self.items[index].version)?;
        if self.items[index].status == Status::Active {
            let item = &mut self.items[index];
            item.status = Status::Archived;
            item.version += 1;
            item.updated_at = now;
            let data = snapshot(&*item);
            self.emit(EventType::ItemArchived, data, now);
            self.touch(CatalogRef::Item(index as u32));
        }
        Ok(self.items[index].clone())
    }

    /// `GET /v1/items`.
    pub fn items(&self, f: &CatalogueFilter, window: Window) -> Page<Item> {
        let q = f.q.as_deref().map(str::to_lowercase);
        scan(self.items.iter().skip(window.start), window.start, window.limit, |_, it| {
            (f.key.as_ref().is_none_or(|s| *s == it.sku)
                && f.status.is_none_or(|s| s == it.status)
                && q.as_ref().is_none_or(|q| contains_ci(&it.sku, q) || contains_ci(&it.name, q)))
            .then(|| it.clone())
        })
    }

    // ---- locations -------------------------------------------------------------------------

    /// `POST /v1/locations`.
    pub fn create_location(&mut self, req: CreateLocation, now: Timestamp) -> Result<Location, DomainError> {
        validate::create_location(&req)?;
        if self.codes.contains_key(&req.code) {
            return Err(DomainError::new(ErrorKind::CodeTaken, format!("Code {:?} is already used.", req.code)));
        }
        let index = self.locations.len() as u32;
        let loc = Location {
            id: self.location_id(index),
            code: req.code,
            name: req.name,
            kind: req.kind.unwrap_or_default(),
            status: Status::Active,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.codes.insert(loc.code.clone(), index);
        self.locations.push(loc.clone());
        self.touch(CatalogRef::Location(index));
        self.emit(EventType::LocationCreated, snapshot(&loc), now);
        Ok(loc)
    }

    /// `GET /v1/locations/{id}`.
    pub fn location(&self, id: &str) -> Result<&Location, DomainError> {
        self.location_index(id).map(|i| &self.locations[i as usize]).ok_or_else(|| DomainError::not_found("location"))
    }

    /// `PATCH /v1/locations/{id}`.
    pub fn update_location(
        &mut self,
        id: &str,
        patch: UpdateLocation,
        if_match: &IfMatch,
        now: Timestamp,
    ) -> Result<Location, DomainError> {
        let index = self.location_index(id).ok_or_else(|| DomainError::not_found("location"))?;
        if_match.check(self.locations[index as usize].version)?;
        validate::update_location(&patch)?;
        if let Some(code) = &patch.code {
            if self.codes.get(code).is_some_and(|i| *i != index) {
                return Err(DomainError::new(ErrorKind::CodeTaken, format!("Code {code:?} is already used.")));
            }
        }
        let mut loc = self.locations[index as usize].clone();
        if let Some(code) = patch.code {
            self.codes.remove(&loc.code);
            self.codes.insert(code.clone(), index);
            loc.code = code;
        }
        if let Some(name) = patch.name {
            loc.name = name;
        }
        if let Some(kind) = patch.kind {
            loc.kind = kind;
        }
        if loc == self.locations[index as usize] {
            return Ok(loc); // nothing changed: no new version, no event
        }
        loc.version += 1;
        loc.updated_at = now;
        self.locations[index as usize] = loc.clone();
        self.touch(CatalogRef::Location(index));
        self.emit(EventType::LocationUpdated, snapshot(&loc), now);
        Ok(loc)
    }

    /// `DELETE /v1/locations/{id}`: archives.
    pub fn archive_location(&mut self, id: &str, if_match: &IfMatch, now: Timestamp) -> Result<Location, DomainError> {
        let index = self.location_index(id).ok_or_else(|| DomainError::not_found("location"))? as usize;
        if_match.check(self.locations[index].version)?;
        if self.locations[index].status == Status::Active {
            let loc = &mut self.locations[index];
            loc.status = Status::Archived;
            loc.version += 1;
            loc.updated_at = now;
            let data = snapshot(&*loc);
            self.emit(EventType::LocationArchived, data, now);
            self.touch(CatalogRef::Location(index as u32));
        }
        Ok(self.locations[index].clone())
    }

    /// `GET /v1/locations`.
    pub fn locations(&self, f: &CatalogueFilter, window: Window) -> Page<Location> {
        let q = f.q.as_deref().map(str::to_lowercase);
        scan(self.locations.iter().skip(window.start), window.start, window.limit, |_, l| {
            (f.key.as_ref().is_none_or(|s| *s == l.code)
                && f.status.is_none_or(|s| s == l.status)
                && f.kind.is_none_or(|k| k == l.kind)
                && q.as_ref().is_none_or(|q| contains_ci(&l.code, q) || contains_ci(&l.name, q)))
            .then(|| l.clone())
        })
    }

    // ---- movements -------------------------------------------------------------------------

    fn active_item(&self, id: &str, field: &str) -> Result<u32, DomainError> {
        let index = self.item_index(id).ok_or_else(|| not_found_field("item", field))?;
        if self.items[index as usize].status == Status::Archived {
            return Err(DomainError::new(ErrorKind::ItemArchived, format!("Item {id} is archived.")));
        }
        Ok(index)
    }

    fn active_location(&self, id: &str, field: &str) -> Result<u32, DomainError> {
        let index = self.location_index(id).ok_or_else(|| not_found_field("location", field))?;
        if self.locations[index as usize].status == Status::Archived {
            return Err(DomainError::new(ErrorKind::LocationArchived, format!("Location {id} is archived.")));
        }
        Ok(index)
    }

    fn plan(&self, req: CreateMovement) -> Result<Planned, DomainError> {
        validate::create_movement(&req)?;
        let item = self.active_item(&req.item_id, "item_id")?;
        let lines = match req.type_ {
            MovementType::Transfer => {
                let from =
                    self.active_location(req.from_location_id.as_deref().unwrap_or_default(), "from_location_id")?;
                let to = self.active_location(req.to_location_id.as_deref().unwrap_or_default(), "to_location_id")?;
                vec![(from, -req.quantity), (to, req.quantity)]
            }
            kind => {
                let at = self.active_location(req.location_id.as_deref().unwrap_or_default(), "location_id")?;
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

    fn quantity(&self, pair: (u32, u32)) -> i64 {
        self.levels.get(&pair).map_or(0, |l| l.quantity)
    }

    fn version(&self, pair: (u32, u32)) -> u64 {
        self.levels.get(&pair).map_or(0, |l| l.history.len() as u64)
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
        let threshold = self.items[p.item as usize].low_stock_threshold;
        let mut lines = Vec::with_capacity(2);
        for (location, delta) in &p.lines {
            let pair = (p.item, *location);
            let level = self.levels.entry(pair).or_insert_with(|| {
                self.level_order.push(pair);
                LevelRecord::default()
            });
            let before = level.quantity;
            level.quantity += delta;
            level.history.push(sequence);
            let crossed = threshold.is_some_and(|t| before >= t && level.quantity < t);
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
        self.active_item(&item_id, "item_id")?;
        let mut lines = Vec::with_capacity(2);
        for line in original.lines() {
            self.active_location(&self.location_id(line.location), "location_id")?;
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

    /// The movement with this sequence as JSON, byte for byte what serialising
    /// [`Ledger::movement`] writes, without building it (the write path renders one per write).
    pub fn movement_json(&self, sequence: u64) -> String {
        let mut out = Vec::with_capacity(384);
        let written = match self.movements.get(position(sequence)) {
            Some(record) => write_movement(&mut out, self, sequence, record),
            None => serde_json::to_writer(&mut out, &self.movement(sequence)),
        };
        // serde_json writes UTF-8 only.
        written.ok().and_then(|()| String::from_utf8(out).ok()).unwrap_or_default()
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
        Ok(scan(self.movements.iter_from(start).take(end - start), start, window.limit, |p, m| {
            (item.is_none_or(|i| i == m.item)
                && f.kind.is_none_or(|k| k == m.kind)
                && location.is_none_or(|l| m.lines().any(|line| line.location == l)))
            .then(|| self.movement(p as u64 + 1))
        }))
    }

    // ---- levels ----------------------------------------------------------------------------

    fn level_from_line(&self, sequence: u64, line: u8) -> StockLevel {
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

    fn render_level(&self, pair: (u32, u32), level: Option<&LevelRecord>) -> StockLevel {
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
        scan(self.level_order.iter().skip(window.start), window.start, window.limit, |_, pair| {
            let level = self.levels.get(pair)?;
            let threshold = self.items[pair.0 as usize].low_stock_threshold;
            (item.is_none_or(|i| i == Some(pair.0))
                && location.is_none_or(|l| l == Some(pair.1))
                && (!below_threshold || threshold.is_some_and(|t| level.snapshot_quantity() < t)))
            .then(|| self.render_level(*pair, Some(level)))
        })
    }

    // ---- reconciliation --------------------------------------------------------------------

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
        Ok((level.snapshot_quantity(), level.quantity))
    }

    // ---- the durable store's view ----------------------------------------------------------

    fn touch(&mut self, r: CatalogRef) {
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
                CatalogRef::Item(i) => self.items.get(i as usize).map(|v| (r, CatalogEntry::Item(v.clone()))),
                CatalogRef::Location(i) => {
                    self.locations.get(i as usize).map(|v| (r, CatalogEntry::Location(v.clone())))
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
            (CatalogRef::Item(i), CatalogEntry::Item(v)) => put(&mut self.items, i, v),
            (CatalogRef::Location(i), CatalogEntry::Location(v)) => put(&mut self.locations, i, v),
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
        if m.item as usize >= self.items.len() {
            return Err(format!("movement {sequence} names item #{} which does not exist", m.item + 1));
        }
        for line in m.lines() {
            if line.location as usize >= self.locations.len() {
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

    // ---- invariants ------------------------------------------------------------------------

    #[cfg(debug_assertions)]
    fn debug_assert_pair(&self, pair: (u32, u32)) {
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
        for (p, m) in self.movements.iter_from(0).enumerate() {
            for l in m.lines() {
                let e = sums.entry((m.item, l.location)).or_default();
                e.0 += l.delta;
                e.1 += 1;
                if e.0 != l.quantity_after || e.1 != l.version_after {
                    return Err(format!("movement {} line at location {} is inconsistent", p + 1, l.location));
                }
            }
        }
        for (pair, level) in &self.levels {
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

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

fn not_found_field(what: &str, field: &str) -> DomainError {
    let mut e = DomainError::not_found(what);
    e.errors.push(FieldError::new(field, format!("no such {what}")));
    e
}

fn snapshot<T: Serialize>(v: &T) -> EventData {
    EventData::Snapshot(Box::new(serde_json::to_value(v).unwrap_or(Value::Null)))
}

fn contains_ci(haystack: &str, needle_lower: &str) -> bool {
    haystack.to_lowercase().contains(needle_lower)
}

/// RFC 7396 merge of `patch` into `target`.
fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        match v {
            Value::Null => {
                target.remove(&k);
            }
            Value::Object(inner) => {
                let slot = target.entry(k).or_insert_with(|| Value::Object(Map::new()));
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                if let Value::Object(t) = slot {
                    merge_patch(t, inner);
                }
            }
            other => {
                target.insert(k, other);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn req<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("a valid request")
    }

    /// The write path's rendering equals serialising the `Movement`, for every shape.
    #[test]
    fn movement_json_is_the_movement_serialised() {
        let now = Timestamp(1_700_000_000_123_456);
        let mut ledger = Ledger::with_tag("0a1b2c3d".to_owned());
        let item = ledger.create_item(req(json!({"sku": "s", "name": "n"})), now).unwrap().id;
        let a = ledger.create_location(req(json!({"code": "a", "name": "A"})), now).unwrap().id;
        let b = ledger.create_location(req(json!({"code": "b", "name": "B"})), now).unwrap().id;
        let bodies = [
            json!({"type": "receipt", "item_id": item, "location_id": a, "quantity": 5}),
            json!({"type": "transfer", "item_id": item, "from_location_id": a, "to_location_id": b, "quantity": 2,
                   "reference": "PO \"7\"\n", "metadata": {"z": 1, "a": [true, null, "é"]}}),
            json!({"type": "adjustment", "item_id": item, "location_id": b, "quantity": -1, "reason": "count"}),
        ];
        let mut sequences = Vec::new();
        for body in bodies {
            sequences.push(ledger.create_movement(req(body), None, now).unwrap());
        }
        let first_id = ledger.movement_id(sequences[0]);
        sequences.push(ledger.reverse(&first_id, req(json!({"reason": "oops", "allow_negative": true})), now).unwrap());
        for s in sequences.into_iter().chain([999]) {
            assert_eq!(ledger.movement_json(s), serde_json::to_string(&ledger.movement(s)).unwrap(), "sequence {s}");
        }
    }
}
