//! Read-modify-write of the catalogue: `update_item_with` and `update_location_with` read the
//! resource, apply the caller's change, and write the patch it returns with `If-Match`; on 412
//! they read and re-apply (see [`crate::etag`]), so two writers racing on one item both get
//! their change in. (Creating, reading, updating, archiving and listing are generated.)

use std::fmt::Display;

use crate::etag::{Versioned, read_modify_write};
use crate::types::{self, Item, Location};
use crate::{Call, Client};

/// One read-modify-write method over a generated read and update.
macro_rules! update_with {
    ($(#[$doc:meta])* $name:ident: $get:ident, $update:ident, $value:ty, $patch:ty) => {
        $(#[$doc])*
        ///
        /// `.with_response()` gives the metadata of the answer to the write that succeeded.
        pub fn $name<'a, F, B>(&'a self, id: &'a str, mut change: F) -> Call<'a, Versioned<$value>>
        where
            F: FnMut(&$value) -> B + Send + 'a,
            B: TryInto<$patch> + Send + 'a,
            B::Error: Display,
        {
            Call::new(async move {
                read_modify_write(
                    || self.$get(id),
                    |current| change(current),
                    |etag, patch| async move { self.$update(id, &etag, patch).with_response().await },
                )
                .await
            })
        }
    };
}

impl Client {
    update_with! {
        /// Reads the item, applies `change` to it, and writes the patch it returns with
        /// `If-Match`; on 412 reads and re-applies (see [`crate::etag`]). Two writers racing on
        /// one item both get their change in.
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
        update_item_with: get_item, update_item, Item, types::UpdateItem
    }

    update_with! {
        /// Reads the location, applies `change` to it, and writes the patch it returns with
        /// `If-Match`; on 412 reads and re-applies (see [`crate::etag`]).
        update_location_with: get_location, update_location, Location, types::UpdateLocation
    }
}
