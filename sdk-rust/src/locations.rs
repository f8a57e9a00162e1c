//! Locations (warehouses, stores, virtual places): create, read, update with `If-Match`,
//! archive, list.

use std::fmt::Display;

use futures::Stream;

use crate::etag::{ETag, ResponseValueExt, Versioned, read_modify_write};
use crate::idempotency::Post;
use crate::items::convert;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, Location};
use crate::{Client, Result};

/// Filters of [`Client::list_locations`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocationQuery {
    /// Only this code.
    pub code: Option<String>,
    /// Case-insensitive substring of code or name.
    pub q: Option<String>,
    /// Only active or only archived locations.
    pub status: Option<types::ListLocationsStatus>,
    /// Only this kind.
    pub kind: Option<types::ListLocationsKind>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// Creates a location: `types::CreateLocation::builder().code("WH-1").name("Main
    /// warehouse")`, or a `types::CreateLocation`. A taken code is
    /// [`Error::Conflict`](crate::Error::Conflict) `code_taken`.
    pub fn create_location<B>(&self, location: B) -> Post<'_, Versioned<Location>>
    where
        B: TryInto<types::CreateLocation>,
        B::Error: Display,
    {
        let body = convert(location);
        Post::new(move |key, _| async move {
            self.send(self.raw.create_location().idempotency_key(key).body(body?).send()).await?.into_versioned()
        })
    }

    /// Reads a location with its ETag.
    pub async fn get_location(&self, id: &str) -> Result<Versioned<Location>> {
        self.send(self.raw.get_location().id(id).send()).await?.into_versioned()
    }

    /// Reads a location unless it still has `etag` (then `None`: yours is current).
    pub async fn get_location_if_changed(&self, id: &str, etag: &ETag) -> Result<Option<Versioned<Location>>> {
        let answer = self.send_if_changed(self.raw.get_location().id(id).if_none_match(etag.as_str()).send()).await?;
        answer.map(ResponseValueExt::into_versioned).transpose()
    }

    /// Changes a location (JSON merge patch) if it still has `etag`. A stale ETag is
    /// [`Error::PreconditionFailed`](crate::Error::PreconditionFailed).
    pub async fn update_location<B>(&self, id: &str, etag: &ETag, patch: B) -> Result<Versioned<Location>>
    where
        B: TryInto<types::UpdateLocation>,
        B::Error: Display,
    {
        let patch: types::UpdateLocation = convert(patch)?;
        self.send(self.raw.update_location().id(id).if_match(etag.as_str()).body(patch).send()).await?.into_versioned()
    }

    /// Reads the location, applies `change` to it, and writes the patch it returns with
    /// `If-Match`; on 412 reads and re-applies (see [`crate::etag`]).
    pub async fn update_location_with<F, B>(&self, id: &str, mut change: F) -> Result<Versioned<Location>>
    where
        F: FnMut(&Location) -> B + Send,
        B: TryInto<types::UpdateLocation> + Send,
        B::Error: Display,
    {
        read_modify_write(
            || self.get_location(id),
            |location| change(location),
            |etag, patch| async move { self.update_location(id, &etag, patch).await },
        )
        .await
    }

    /// Archives a location if it still has `etag`: it stays readable with `status: archived`,
    /// and new movements at it are [`Error::Conflict`](crate::Error::Conflict)
    /// `location_archived`.
    pub async fn archive_location(&self, id: &str, etag: &ETag) -> Result<Versioned<Location>> {
        self.send(self.raw.archive_location().id(id).if_match(etag.as_str()).send()).await?.into_versioned()
    }

    /// One page of locations.
    pub async fn list_locations(&self, query: &LocationQuery) -> Result<Page<Location>> {
        let mut call = self.raw.list_locations();
        if let Some(v) = &query.code {
            call = call.code(v.clone());
        }
        if let Some(v) = query.kind {
            call = call.kind(v);
        }
        if let Some(v) = &query.q {
            call = call.q(v.clone());
        }
        if let Some(v) = query.status {
            call = call.status(v);
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

    /// Every location matching `query`, page after page.
    pub fn list_locations_stream(&self, query: LocationQuery) -> impl Stream<Item = Result<Location>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = LocationQuery { cursor, ..query.clone() };
            async move { self.list_locations(&page).await }
        })
    }
}
