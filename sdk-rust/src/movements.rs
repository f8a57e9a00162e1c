//! Stock movements, the ledger: record (one, a batch, a reversal), read, list.
//!
//! Ledger writes always carry an idempotency key (the API requires one; see
//! [`crate::idempotency`]), so a movement retried after a lost answer is recorded once.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use futures::Stream;

use crate::etag::{ETag, ResponseValueExt, Versioned};
use crate::idempotency::Post;
use crate::items::convert;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, CreateMovement, Movement, MovementType};
use crate::{Client, Error, Result};

/// Most movements in one batch (API.md: 1..=1000).
pub const BATCH_SIZE_MAX: usize = 1000;

/// Filters of [`Client::list_movements`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MovementQuery {
    /// Only this item.
    pub item_id: Option<String>,
    /// Only movements with a line at this location.
    pub location_id: Option<String>,
    /// Only this type.
    pub type_: Option<types::ListStockMovementsType>,
    /// Only sequences greater than this.
    pub after_sequence: Option<u64>,
    /// Only created strictly after.
    pub created_after: Option<DateTime<Utc>>,
    /// Only created strictly before.
    pub created_before: Option<DateTime<Utc>>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl CreateMovement {
    fn new(type_: MovementType, item_id: &str, quantity: i64) -> CreateMovement {
        CreateMovement {
            type_,
            item_id: item_id.to_owned(),
            quantity,
            allow_negative: None,
            from_location_id: None,
            location_id: None,
            metadata: None,
            reason: None,
            reference: None,
            to_location_id: None,
        }
    }

    /// Stock in: `+quantity` (positive) at a location.
    pub fn receipt(item_id: &str, location_id: &str, quantity: i64) -> CreateMovement {
        CreateMovement {
            location_id: Some(location_id.to_owned()),
            ..CreateMovement::new(MovementType::Receipt, item_id, quantity)
        }
    }

    /// Stock out: `-quantity` (positive) at a location.
    pub fn shipment(item_id: &str, location_id: &str, quantity: i64) -> CreateMovement {
        CreateMovement {
            location_id: Some(location_id.to_owned()),
            ..CreateMovement::new(MovementType::Shipment, item_id, quantity)
        }
    }

    /// A signed, non-zero correction at a location.
    pub fn adjustment(item_id: &str, location_id: &str, delta: i64) -> CreateMovement {
        CreateMovement {
            location_id: Some(location_id.to_owned()),
            ..CreateMovement::new(MovementType::Adjustment, item_id, delta)
        }
    }

    /// `quantity` (positive) from one location to another: two lines of one movement.
    pub fn transfer(item_id: &str, from_location_id: &str, to_location_id: &str, quantity: i64) -> CreateMovement {
        CreateMovement {
            from_location_id: Some(from_location_id.to_owned()),
            to_location_id: Some(to_location_id.to_owned()),
            ..CreateMovement::new(MovementType::Transfer, item_id, quantity)
        }
    }

    /// With your reference (an order number, …; at most 255 characters).
    pub fn with_reference(mut self, reference: &str) -> Result<CreateMovement> {
        self.reference = Some(reference.parse().map_err(|e| Error::InvalidRequest(format!("reference: {e}")))?);
        Ok(self)
    }

    /// With a reason (at most 500 characters).
    pub fn with_reason(mut self, reason: &str) -> Result<CreateMovement> {
        self.reason = Some(reason.parse().map_err(|e| Error::InvalidRequest(format!("reason: {e}")))?);
        Ok(self)
    }

    /// Lets the level go below zero instead of failing with `insufficient_stock`.
    pub fn allowing_negative(mut self) -> CreateMovement {
        self.allow_negative = Some(true);
        self
    }
}

impl Client {
    /// Records a movement. The answer carries the ETag of the (first) stock level it changed,
    /// ready for a following [`Client::create_movement_if_match`]. Not enough stock is
    /// [`Error::Conflict`] `insufficient_stock`, and nothing is written.
    pub fn create_movement<B>(&self, movement: B) -> Post<'_, Versioned<Movement>>
    where
        B: TryInto<CreateMovement>,
        B::Error: Display,
    {
        let body = convert(movement);
        Post::new(move |key, if_match: Option<ETag>| async move {
            let mut call = self.raw.create_stock_movement().idempotency_key(key).body(body?);
            if let Some(etag) = if_match {
                call = call.if_match(etag.as_str());
            }
            self.send(call.send()).await?.into_versioned()
        })
    }

    /// Records a movement only if the stock level it changes (single item and location) still
    /// has `level_etag`, as read with [`Client::get_stock_level`]: "sell only if the count is
    /// still what I saw". A stale ETag is [`Error::PreconditionFailed`] and nothing is written.
    pub fn create_movement_if_match<B>(&self, movement: B, level_etag: &ETag) -> Post<'_, Versioned<Movement>>
    where
        B: TryInto<CreateMovement>,
        B::Error: Display,
    {
        self.create_movement(movement).with_if_match(level_etag.clone())
    }

    /// Records 1..=1000 movements, all or nothing, in order. A failing entry is named in the
    /// error's field problems (`movements[3].quantity`).
    pub fn create_movement_batch(
        &self,
        movements: impl IntoIterator<Item = CreateMovement>,
    ) -> Post<'_, Vec<Movement>> {
        let movements: Vec<CreateMovement> = movements.into_iter().collect();
        let size = movements.len();
        Post::new(move |key, _| async move {
            if !(1..=BATCH_SIZE_MAX).contains(&size) {
                return Err(Error::InvalidRequest(format!("a batch holds 1..={BATCH_SIZE_MAX} movements, not {size}")));
            }
            let body = types::CreateMovementBatch { movements };
            Ok(self
                .send(self.raw.create_stock_movement_batch().idempotency_key(key).body(body).send())
                .await?
                .into_inner()
                .data)
        })
    }

    /// Records the movement that undoes `id` (`reverses: id`). Reversing twice is
    /// [`Error::Conflict`] `already_reversed`. `reverse` is `types::ReverseMovement::default()` or
    /// its builder (`reason`, `allow_negative`).
    pub fn reverse_movement<'a, B>(&'a self, id: &'a str, reverse: B) -> Post<'a, Versioned<Movement>>
    where
        B: TryInto<types::ReverseMovement>,
        B::Error: Display,
    {
        let body = convert(reverse);
        Post::new(move |key, _| async move {
            self.send(self.raw.reverse_stock_movement().id(id).idempotency_key(key).body(body?).send())
                .await?
                .into_versioned()
        })
    }

    /// Reads a movement (movements never change; the ETag is the API's uniform one).
    pub async fn get_movement(&self, id: &str) -> Result<Versioned<Movement>> {
        self.send(self.raw.get_stock_movement().id(id).send()).await?.into_versioned()
    }

    /// Reads a movement unless it still has `etag` (then `None`: yours is current).
    pub async fn get_movement_if_changed(&self, id: &str, etag: &ETag) -> Result<Option<Versioned<Movement>>> {
        let answer =
            self.send_if_changed(self.raw.get_stock_movement().id(id).if_none_match(etag.as_str()).send()).await?;
        answer.map(ResponseValueExt::into_versioned).transpose()
    }

    /// One page of movements, in sequence order.
    pub async fn list_movements(&self, query: &MovementQuery) -> Result<Page<Movement>> {
        let mut call = self.raw.list_stock_movements();
        if let Some(v) = &query.item_id {
            call = call.item_id(v.clone());
        }
        if let Some(v) = &query.location_id {
            call = call.location_id(v.clone());
        }
        if let Some(v) = query.type_ {
            call = call.type_(v);
        }
        if let Some(v) = query.after_sequence {
            let v = i64::try_from(v).map_err(|_| Error::InvalidRequest("after_sequence is too large".to_owned()))?;
            call = call.after_sequence(v);
        }
        if let Some(v) = query.created_after {
            call = call.created_after(v);
        }
        if let Some(v) = query.created_before {
            call = call.created_before(v);
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

    /// Every movement matching `query`, page after page.
    pub fn list_movements_stream(&self, query: MovementQuery) -> impl Stream<Item = Result<Movement>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = MovementQuery { cursor, ..query.clone() };
            async move { self.list_movements(&page).await }
        })
    }
}
