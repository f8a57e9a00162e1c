//! Events: what changed, in commit order (`item.created`, `stock_movement.created`, …).

use futures::Stream;

use crate::etag::{ETag, ResponseValueExt, Versioned};
use crate::pagination::{Page, limit, paginate};
use crate::types::Event;
use crate::{Client, Result};

/// Filters of [`Client::list_events`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// Only this type (`stock_level.updated`, …).
    pub type_: Option<String>,
    /// Only events after this event id.
    pub after: Option<String>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// Reads an event.
    pub async fn get_event(&self, id: &str) -> Result<Versioned<Event>> {
        self.send(self.raw.get_event().id(id).send()).await?.into_versioned()
    }

    /// Reads an event unless it still has `etag` (then `None`: yours is current).
    pub async fn get_event_if_changed(&self, id: &str, etag: &ETag) -> Result<Option<Versioned<Event>>> {
        let answer = self.send_if_changed(self.raw.get_event().id(id).if_none_match(etag.as_str()).send()).await?;
        answer.map(ResponseValueExt::into_versioned).transpose()
    }

    /// One page of events.
    pub async fn list_events(&self, query: &EventQuery) -> Result<Page<Event>> {
        let mut call = self.raw.list_events();
        if let Some(v) = &query.type_ {
            call = call.type_(v.clone());
        }
        if let Some(v) = &query.after {
            call = call.after(v.clone());
        }
        if let Some(v) = limit(query.limit)? {
            call = call.limit(v);
        }
        if let Some(v) = &query.cursor {
            call = call.cursor(v.clone());
        }
        let list = self.send(call.send()).await?.into_inner();
        Ok(Page { data: list.data, next_cursor: list.next_cursor })
    }

    /// Every event matching `query`, page after page.
    pub fn list_events_stream(&self, query: EventQuery) -> impl Stream<Item = Result<Event>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = EventQuery { cursor, ..query.clone() };
            async move { self.list_events(&page).await }
        })
    }
}
