//! [`Patch`]: one field of a JSON merge patch that the server lets you clear.
//!
//! A merge patch (`PATCH /v1/items/{id}` and the like) tells three things apart for such a field:
//! leave it (the field is not sent), set it (a value) and clear it (`null`). `Option<T>` has only
//! two states, so the patch types ([`crate::types::UpdateItem`], …) hold their clearable fields
//! (`low_stock_threshold`, `description`, `retry_schedule_seconds`) as `Patch<T>`, and every other
//! optional field as `Option<T>` (not sent at `None`).
//!
//! ```
//! use twh::Patch;
//! use twh::types::UpdateItem;
//! let set = UpdateItem::builder().low_stock_threshold(5);
//! assert_eq!(serde_json::to_string(&set).unwrap(), r#"{"low_stock_threshold":5}"#);
//! // `None` (the field's own type is `Option<i64>`) or `Patch::Clear` clears it:
//! let clear = UpdateItem::builder().low_stock_threshold(None);
//! assert_eq!(serde_json::to_string(&clear).unwrap(), r#"{"low_stock_threshold":null}"#);
//! assert_eq!(clear.low_stock_threshold, Patch::Clear);
//! // Left alone, it is not sent:
//! assert_eq!(serde_json::to_string(&UpdateItem::builder().name("Mug")).unwrap(), r#"{"name":"Mug"}"#);
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One clearable field of a merge patch: [`Keep`](Patch::Keep) (not sent, the default),
/// [`Set`](Patch::Set) (sent) or [`Clear`](Patch::Clear) (sent as `null`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Patch<T> {
    /// Leave the field as it is: not sent.
    #[default]
    Keep,
    /// Set the field to this value.
    Set(T),
    /// Clear the field: sent as `null`.
    Clear,
}

impl<T> Patch<T> {
    /// Whether the field is left alone (and so not sent).
    pub fn is_keep(&self) -> bool {
        matches!(self, Patch::Keep)
    }
}

impl<T> From<T> for Patch<T> {
    fn from(value: T) -> Self {
        Patch::Set(value)
    }
}

/// `Some(v)` sets the field, `None` clears it: the field's own type on the resource is an
/// `Option`, and `None` is what it reads after a clear.
impl<T> From<Option<T>> for Patch<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Patch::Clear, Patch::Set)
    }
}

impl<T: Serialize> Serialize for Patch<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Patch::Set(value) => value.serialize(serializer),
            Patch::Keep | Patch::Clear => serializer.serialize_none(),
        }
    }
}

/// A present `null` is [`Patch::Clear`]; an absent field (with `#[serde(default)]`) is
/// [`Patch::Keep`].
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.into())
    }
}
