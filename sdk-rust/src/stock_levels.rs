//! Stock levels, the snapshot of the ledger per (item, location): read (now or as of a time),
//! list.

use chrono::{DateTime, Utc};
use futures::Stream;

use crate::etag::{ETag, ResponseValueExt, Versioned};
use crate::pagination::{Page, limit, paginate};
use crate::types::StockLevel;
use crate::{Client, Result};

/// Filters of [`Client::list_stock_levels`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StockLevelQuery {
    /// Only this item.
    pub item_id: Option<String>,
    /// Only this location.
    pub location_id: Option<String>,
    /// Only levels below their item's `low_stock_threshold`.
    pub below_threshold: Option<bool>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// Reads the level of an item at a location, with the ETag a conditional movement takes
    /// ([`Client::create_movement_if_match`]). A pair never moved reads quantity 0, version 0.
    pub async fn get_stock_level(&self, item_id: &str, location_id: &str) -> Result<Versioned<StockLevel>> {
        self.send(self.raw.get_stock_level().item_id(item_id).location_id(location_id).send()).await?.into_versioned()
    }

    /// Reads the level unless it still has `etag` (then `None`: yours is current).
    pub async fn get_stock_level_if_changed(
        &self,
        item_id: &str,
        location_id: &str,
        etag: &ETag,
    ) -> Result<Option<Versioned<StockLevel>>> {
        let call = self.raw.get_stock_level().item_id(item_id).location_id(location_id).if_none_match(etag.as_str());
        self.send_if_changed(call.send()).await?.map(ResponseValueExt::into_versioned).transpose()
    }

    /// The level as the ledger had it at `as_of` (emulator clock).
    pub async fn get_stock_level_as_of(
        &self,
        item_id: &str,
        location_id: &str,
        as_of: DateTime<Utc>,
    ) -> Result<Versioned<StockLevel>> {
        let call = self.raw.get_stock_level().item_id(item_id).location_id(location_id).as_of(as_of);
        self.send(call.send()).await?.into_versioned()
    }

    /// One page of stock levels.
    pub async fn list_stock_levels(&self, query: &StockLevelQuery) -> Result<Page<StockLevel>> {
        let mut call = self.raw.list_stock_levels();
        if let Some(v) = &query.item_id {
            call = call.item_id(v.clone());
        }
        if let Some(v) = &query.location_id {
            call = call.location_id(v.clone());
        }
        if let Some(v) = query.below_threshold {
            call = call.below_threshold(v);
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

    /// Every stock level matching `query`, page after page.
    pub fn list_stock_levels_stream(
        &self,
        query: StockLevelQuery,
    ) -> impl Stream<Item = Result<StockLevel>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = StockLevelQuery { cursor, ..query.clone() };
            async move { self.list_stock_levels(&page).await }
        })
    }
}
