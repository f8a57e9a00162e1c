//! Stock levels as of a past time. (The current level, its conditional read and the list are
//! generated.)

use chrono::{DateTime, Utc};

use crate::Client;
use crate::call::Call;
use crate::etag::Versioned;
use crate::response::IntoResponse;
use crate::types::StockLevel;

impl Client {
    /// The level as the ledger had it at `as_of` (emulator clock).
    pub fn get_stock_level_as_of(
        &self,
        item_id: &str,
        location_id: &str,
        as_of: DateTime<Utc>,
    ) -> Call<'_, Versioned<StockLevel>> {
        let call = self.raw.get_stock_level().item_id(item_id).location_id(location_id).as_of(as_of);
        Call::new(async move { self.send(call.send()).await?.into_response().versioned() })
    }
}
