//! Items (SKUs): create, read, update with `If-Match`, archive, list.

use std::fmt::Display;

use futures::Stream;

use crate::etag::{ETag, ResponseValueExt, Versioned, read_modify_write};
use crate::idempotency::Post;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, Item};
use crate::{Client, Error, Result};

/// Filters of [`Client::list_items`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ItemQuery {
    /// Only this SKU.
    pub sku: Option<String>,
    /// Case-insensitive substring of SKU or name.
    pub q: Option<String>,
    /// Only active or only archived items.
    pub status: Option<types::ListItemsStatus>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

pub(crate) fn convert<T, B>(body: B) -> Result<T>
where
    B: TryInto<T>,
    B::Error: Display,
{
    body.try_into().map_err(|e| Error::InvalidRequest(e.to_string()))
}

impl Client {
    /// Creates an item: `types::CreateItem::builder().sku("MUG-BLU").name("Mug, blue")`, or a
    /// `types::CreateItem`. A taken SKU is [`Error::Conflict`] `sku_taken`.
    pub fn create_item<B>(&self, item: B) -> Post<'_, Versioned<Item>>
    where
        B: TryInto<types::CreateItem>,
        B::Error: Display,
    {
        let body = convert(item);
        Post::new(move |key, _| async move {
            self.send(self.raw.create_item().idempotency_key(key).body(body?).send()).await?.into_versioned()
        })
    }

    /// Reads an item with its ETag.
    pub async fn get_item(&self, id: &str) -> Result<Versioned<Item>> {
        self.send(self.raw.get_item().id(id).send()).await?.into_versioned()
    }

    /// Reads an item unless it still has `etag` (then `None`: yours is current).
    pub async fn get_item_if_changed(&self, id: &str, etag: &ETag) -> Result<Option<Versioned<Item>>> {
        let answer = self.send_if_changed(self.raw.get_item().id(id).if_none_match(etag.as_str()).send()).await?;
        answer.map(ResponseValueExt::into_versioned).transpose()
    }

    /// Changes an item (JSON merge patch) if it still has `etag`: `types::UpdateItem::builder()
    /// .name("Mug, navy")`. A stale ETag is [`Error::PreconditionFailed`].
    pub async fn update_item<B>(&self, id: &str, etag: &ETag, patch: B) -> Result<Versioned<Item>>
    where
        B: TryInto<types::UpdateItem>,
        B::Error: Display,
    {
        let patch: types::UpdateItem = convert(patch)?;
        self.send(self.raw.update_item().id(id).if_match(etag.as_str()).body(patch).send()).await?.into_versioned()
    }

    /// Reads the item, applies `change` to it, and writes the patch it returns with `If-Match`;
    /// on 412 reads and re-applies (see [`crate::etag`]). Two writers racing on one item both
    /// get their change in.
    ///
    /// ```no_run
    /// # async fn demo(client: &twh::Client) -> twh::Result<()> {
    /// let item = client
    ///     .update_item_with("itm_…", |item| {
    ///         // At least 10: the same result however often it is applied.
    ///         twh::types::UpdateItem::builder().low_stock_threshold(item.low_stock_threshold.map_or(10, |t| t.max(10)))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_item_with<F, B>(&self, id: &str, mut change: F) -> Result<Versioned<Item>>
    where
        F: FnMut(&Item) -> B + Send,
        B: TryInto<types::UpdateItem> + Send,
        B::Error: Display,
    {
        read_modify_write(
            || self.get_item(id),
            |item| change(item),
            |etag, patch| async move { self.update_item(id, &etag, patch).await },
        )
        .await
    }

    /// Archives an item if it still has `etag`: it stays readable with `status: archived`, and
    /// new movements for it are [`Error::Conflict`] `item_archived`.
    pub async fn archive_item(&self, id: &str, etag: &ETag) -> Result<Versioned<Item>> {
        self.send(self.raw.archive_item().id(id).if_match(etag.as_str()).send()).await?.into_versioned()
    }

    /// One page of items.
    pub async fn list_items(&self, query: &ItemQuery) -> Result<Page<Item>> {
        let mut call = self.raw.list_items();
        if let Some(v) = &query.sku {
            call = call.sku(v.clone());
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

    /// Every item matching `query`, page after page.
    pub fn list_items_stream(&self, query: ItemQuery) -> impl Stream<Item = Result<Item>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = ItemQuery { cursor, ..query.clone() };
            async move { self.list_items(&page).await }
        })
    }
}
