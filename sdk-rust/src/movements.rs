//! Stock movements, the ledger: the request constructors (`CreateMovement::receipt`, …), the
//! conditional write, and batches. (Recording one, reversing, reading and listing are generated.)
//!
//! Ledger writes always carry an idempotency key (the API requires one; see
//! [`crate::idempotency`]), so a movement retried after a lost answer is recorded once.

use std::fmt::Display;

use crate::etag::{ETag, Versioned};
use crate::idempotency::Post;
use crate::response::IntoResponse;
use crate::types::{self, CreateMovement, Movement, MovementType};
use crate::{Client, Error, Result};

/// Most movements in one batch (the API's bound: 1..=1000).
pub const BATCH_SIZE_MAX: usize = 1000;

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
                .into_response()
                .map(|list| list.data))
        })
    }
}
