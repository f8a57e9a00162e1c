//! The event log: what each write emits, stored compactly (a movement or a level is named by
//! its sequence, not copied) and rendered on read; it is the outbox the webhook worker reads.
//!
//! Why a file of its own: every other concern writes events and the webhook and billing code
//! read them; kept apart, the log's shape and its rendering are in one place.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::movement_json::MovementRef;
use super::{EventType, Ledger, position};
use crate::clock::Timestamp;
use crate::domain::error::DomainError;
use crate::domain::index::{Seek, page};
use crate::domain::model::{Event, FieldError, Movement, StockLevel};
use crate::domain::paging::{Page, Window};
use crate::ids;

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

/// An event rendered for a response, borrowing from the log: serializes to exactly the JSON of
/// its [`Event`] (same fields, same order), without building the data as a `serde_json::Value`
/// first or cloning a stored snapshot.
///
/// Why: `GET /v1/events` rendered each event's data into a `Value` (a map per object, a string
/// per key) and then serialized that: a page of 20 movement events cost about four times a page
/// of the same 20 movements, and every page of snapshot events deep-copied its snapshots
/// (`twh-bench-scale`, the events rows).
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    /// `evt_…`
    pub id: String,
    /// Like `stock_movement.created`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// When.
    pub created_at: Timestamp,
    /// The resource as of the change.
    pub data: EventBody<'a>,
}

/// The data of an [`EventView`].
#[derive(Debug)]
pub enum EventBody<'a> {
    /// A movement, borrowed from the ledger.
    Movement(MovementRef<'a>),
    /// A movement the ledger does not hold (rendered as [`Ledger::movement`] does).
    Missing(Box<Movement>),
    /// A level.
    Level(StockLevel),
    /// A stored snapshot.
    Snapshot(&'a Value),
}

impl Serialize for EventBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EventBody::Movement(m) => m.serialize(s),
            EventBody::Missing(m) => m.serialize(s),
            EventBody::Level(l) => l.serialize(s),
            EventBody::Snapshot(v) => v.serialize(s),
        }
    }
}

impl EventView<'_> {
    /// The owned [`Event`] (data as a `Value`).
    pub fn into_event(self) -> Event {
        let data = match self.data {
            EventBody::Movement(m) => serde_json::to_value(m),
            EventBody::Missing(m) => serde_json::to_value(*m),
            EventBody::Level(l) => serde_json::to_value(l),
            EventBody::Snapshot(v) => Ok(v.clone()),
        };
        Event {
            id: self.id,
            type_: self.type_.to_owned(),
            created_at: self.created_at,
            data: data.unwrap_or(Value::Null),
        }
    }
}

impl Ledger {
    fn event_id(&self, position: usize) -> String {
        ids::format("evt", &self.tag, position as u64 + 1)
    }

    /// The log position of an event id of this tenant.
    pub fn event_position(&self, id: &str) -> Option<usize> {
        ids::parse("evt", &self.tag, id).map(position).filter(|p| *p < self.events.len())
    }

    #[inline]
    pub(super) fn emit(&mut self, kind: EventType, data: EventData, now: Timestamp) {
        self.indexes.events_by_type[kind as usize].push(self.events.len() as u32);
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

    pub(super) fn render_event(&self, position: usize, e: &EventRecord) -> Event {
        self.view_event(position, e).into_event()
    }

    fn view_event<'a>(&'a self, position: usize, e: &'a EventRecord) -> EventView<'a> {
        let data = match &e.data {
            EventData::Movement(seq) => match self.movement_ref(*seq) {
                Some(m) => EventBody::Movement(m),
                None => EventBody::Missing(Box::new(self.movement(*seq))),
            },
            EventData::Level { sequence, line } => EventBody::Level(self.level_from_line(*sequence, *line)),
            EventData::Snapshot(v) => EventBody::Snapshot(v),
        };
        EventView { id: self.event_id(position), type_: e.kind.as_str(), created_at: e.created_at, data }
    }

    /// `GET /v1/events/{id}`.
    pub fn event(&self, id: &str) -> Result<Event, DomainError> {
        let p = self.event_position(id).ok_or_else(|| DomainError::not_found("event"))?;
        let e = self.events.get(p).ok_or_else(|| DomainError::not_found("event"))?;
        Ok(self.render_event(p, e))
    }

    /// `GET /v1/events`: `after` is an event id to start after.
    pub fn events(&self, kind: Option<&str>, after: Option<&str>, window: Window) -> Result<Page<Event>, DomainError> {
        let p = self.event_views(kind, after, window)?;
        Ok(Page { data: p.data.into_iter().map(EventView::into_event).collect(), next: p.next })
    }

    /// [`Ledger::events`] as views that borrow from the log (what the handler serializes).
    pub fn event_views(
        &self,
        kind: Option<&str>,
        after: Option<&str>,
        window: Window,
    ) -> Result<Page<EventView<'_>>, DomainError> {
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
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(k) = kind {
            lists.push(&self.indexes.events_by_type[k as usize]);
        }
        let accept = |p: usize| self.events.get(p).is_some_and(|e| kind.is_none_or(|k| k == e.kind));
        let render = |p: usize| self.events.get(p).map(|e| self.view_event(p, e));
        Ok(page(&mut lists, start, self.events.len(), window.limit, accept, render))
    }
}
