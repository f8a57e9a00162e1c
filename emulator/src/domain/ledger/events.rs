//! The event log: what each write emits, stored compactly (a movement or a level is named by
//! its sequence, not copied) and rendered on read; it is the outbox the webhook worker reads.
//!
//! Why a file of its own: every other concern writes events and the webhook and billing code
//! read them; kept apart, the log's shape and its rendering are in one place.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EventType, Ledger, position};
use crate::clock::Timestamp;
use crate::domain::error::DomainError;
use crate::domain::index::{Seek, page};
use crate::domain::model::{Event, FieldError};
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
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(k) = kind {
            lists.push(&self.indexes.events_by_type[k as usize]);
        }
        let accept = |p: usize| self.events.get(p).is_some_and(|e| kind.is_none_or(|k| k == e.kind));
        let render = |p: usize| self.event_at(p);
        Ok(page(&mut lists, start, self.events.len(), window.limit, accept, render))
    }
}
