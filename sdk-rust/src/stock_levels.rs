//! Stock levels as of a past time. (The current level, its conditional read and the list are
//! generated.)

use chrono::{DateTime, Utc};

use crate::etag::{ResponseValueExt, Versioned};
use crate::types::StockLevel;
use crate::{Client, Result};

impl Client {
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
}
