//! The resource representations of API v1: what requests carry and responses return.
//!
//! These types are the record: the OpenAPI document's schemas are generated from them (schemars),
//! and the HTTP layer serialises exactly these. Request types reject unknown fields so a typo is a
//! 422 naming the field instead of a silently ignored value.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Timestamp;

/// A field-level problem in a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldError {
    /// JSON path of the field, like `quantity` or `movements[3].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// RFC 9457 problem details, as every error response carries them.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Stable snake_case error code.
    pub code: String,
    /// The request id (also in `X-Request-Id`).
    pub request_id: String,
    /// Field problems (400/422); empty otherwise.
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// On 412: the resource's current ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<String>,
}

/// Billing plan of a sandbox.
///
/// - `free`: Hard quotas.
/// - `pro`: Higher quotas, overage billed per unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    #[default]
    Free,
    Pro,
}

/// What a new sandbox starts with.
///
/// - `demo`: A small catalogue: items, locations and movements.
/// - `empty`: Nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seed {
    Demo,
    #[default]
    Empty,
}

/// `POST /v1/sandboxes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    /// A name for people (1..=100 characters). Default `sandbox`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    /// `demo` or `empty` (default).
    #[serde(default)]
    pub seed: Option<Seed>,
    /// `free` (default) or `pro`.
    #[serde(default)]
    pub plan: Option<Plan>,
}

/// A sandbox (tenant).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Sandbox {
    /// `sbx_…`
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// When it was created.
    pub created_at: Timestamp,
}

/// A new sandbox with its keys: the only time the keys are shown.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SandboxCreated {
    /// `sbx_…`
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// `sk_test_…`: may do everything in this sandbox.
    pub secret_key: String,
    /// `rk_test_…`: may only read.
    pub restricted_key: String,
    /// When it was created.
    pub created_at: Timestamp,
}

/// `POST /v1/api-keys/roll`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ApiKeyRolled {
    /// The new secret key.
    pub secret_key: String,
    /// When the previous secret key stops working (emulator clock).
    pub previous_key_expires_at: Timestamp,
}

/// Whether an item or location takes new movements.
///
/// - `active`: Takes movements.
/// - `archived`: Readable, takes no new movements.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    Archived,
}

/// `POST /v1/items`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItem {
    /// Unique per sandbox, 1..=64 printable characters.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    pub sku: String,
    /// 1..=200 characters.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Unit of quantities (default `each`), 1..=32 characters.
    #[serde(default)]
    #[schemars(length(min = 1, max = 32))]
    pub unit: Option<String>,
    /// Free-form attributes (a JSON object, at most 50 keys and 8 KiB).
    #[serde(default)]
    pub attributes: Option<Map<String, Value>>,
    /// A level below this is "low stock" (0 or more).
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub low_stock_threshold: Option<i64>,
}

/// `PATCH /v1/items/{id}` (JSON merge patch): every field optional; `null` clears
/// `low_stock_threshold` and removes an attribute.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItem {
    /// New SKU (unique).
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    pub sku: Option<String>,
    /// New name.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub name: Option<String>,
    /// New unit.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 32))]
    pub unit: Option<String>,
    /// Merged into the attributes (RFC 7396).
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "Map<String, Value>")]
    pub attributes: Option<Map<String, Value>>,
    /// New threshold; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<i64>")]
    pub low_stock_threshold: Option<Option<i64>>,
}

/// An item (a SKU).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Item {
    /// `itm_…`
    pub id: String,
    /// Unique per sandbox.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Unit of quantities.
    pub unit: String,
    /// Free-form attributes.
    pub attributes: Map<String, Value>,
    /// Low-stock threshold, if any.
    pub low_stock_threshold: Option<i64>,
    /// `active` or `archived`.
    pub status: Status,
    /// Rises by one on every change; the ETag is `"<version>"`.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the last change.
    pub updated_at: Timestamp,
}

/// The kind of a location.
///
/// - `warehouse`: A warehouse.
/// - `store`: A store.
/// - `virtual`: A virtual location (in transit, returns, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocationKind {
    #[default]
    Warehouse,
    Store,
    Virtual,
}

/// `POST /v1/locations`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLocation {
    /// Unique per sandbox, 1..=64 printable characters.
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    pub code: String,
    /// 1..=200 characters.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Default `warehouse`.
    #[serde(default)]
    pub kind: Option<LocationKind>,
}

/// `PATCH /v1/locations/{id}` (JSON merge patch).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLocation {
    /// New code (unique).
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 64), regex(pattern = r"^\S+$"))]
    pub code: Option<String>,
    /// New name.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 200))]
    pub name: Option<String>,
    /// New kind.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "LocationKind")]
    pub kind: Option<LocationKind>,
}

/// A location.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Location {
    /// `loc_…`
    pub id: String,
    /// Unique per sandbox.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: LocationKind,
    /// `active` or `archived`.
    pub status: Status,
    /// Rises by one on every change.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the last change.
    pub updated_at: Timestamp,
}

/// The type of a stock movement.
///
/// - `receipt`: Stock in: `+quantity`.
/// - `shipment`: Stock out: `-quantity`.
/// - `adjustment`: A signed, non-zero correction.
/// - `transfer`: From one location to another: two lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MovementType {
    Receipt,
    Shipment,
    Adjustment,
    Transfer,
}

impl MovementType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementType::Receipt => "receipt",
            MovementType::Shipment => "shipment",
            MovementType::Adjustment => "adjustment",
            MovementType::Transfer => "transfer",
        }
    }
}

/// `POST /v1/stock-movements` (and one entry of a batch).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMovement {
    /// `receipt`, `shipment`, `adjustment` or `transfer`.
    #[serde(rename = "type")]
    pub type_: MovementType,
    /// The item moved.
    pub item_id: String,
    /// For receipt, shipment and adjustment.
    #[serde(default)]
    pub location_id: Option<String>,
    /// For transfer: where it leaves.
    #[serde(default)]
    pub from_location_id: Option<String>,
    /// For transfer: where it arrives.
    #[serde(default)]
    pub to_location_id: Option<String>,
    /// Positive, except adjustments (signed, non-zero). At most 10^15 in magnitude.
    #[schemars(range(min = -1_000_000_000_000_000i64, max = 1_000_000_000_000_000i64))]
    pub quantity: i64,
    /// Your reference (order number, …), at most 255 characters.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub reference: Option<String>,
    /// Why, at most 500 characters.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    /// Free-form JSON object, at most 50 keys and 8 KiB.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Let the level go below zero.
    #[serde(default)]
    pub allow_negative: Option<bool>,
}

/// `POST /v1/stock-movements/batch`: all or nothing.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMovementBatch {
    /// 1..=1000 movements, committed in this order.
    #[schemars(length(min = 1, max = 1000))]
    pub movements: Vec<CreateMovement>,
}

/// `POST /v1/stock-movements/{id}/reverse`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseMovement {
    /// Why, at most 500 characters.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    /// Let a level go below zero.
    #[serde(default)]
    pub allow_negative: Option<bool>,
}

/// One line of a movement: the change at one location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MovementLine {
    /// Where.
    pub location_id: String,
    /// Signed change.
    pub delta: i64,
    /// The level's quantity right after this line.
    pub quantity_after: i64,
}

/// A stock movement: an immutable ledger entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Movement {
    /// `mov_…`
    pub id: String,
    /// Per sandbox, gap-free, strictly increasing in commit order.
    pub sequence: u64,
    /// Its type.
    #[serde(rename = "type")]
    pub type_: MovementType,
    /// The item moved.
    pub item_id: String,
    /// One line, or two for a transfer.
    pub lines: Vec<MovementLine>,
    /// Your reference.
    pub reference: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Free-form metadata.
    pub metadata: Option<Map<String, Value>>,
    /// The movement this one undoes, if it is a reversal.
    pub reverses: Option<String>,
    /// Commit time.
    pub created_at: Timestamp,
}

/// A stock level: the snapshot of one (item, location) pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StockLevel {
    /// The item.
    pub item_id: String,
    /// The location.
    pub location_id: String,
    /// Σ delta of its ledger lines.
    pub quantity: i64,
    /// Number of its ledger lines; the ETag is `"<version>"`.
    pub version: u64,
    /// The movement of its last line, if any.
    pub last_movement_id: Option<String>,
    /// Time of its last line, if any.
    pub updated_at: Option<Timestamp>,
}

/// An event: something that changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// `evt_…`
    pub id: String,
    /// Like `stock_movement.created`.
    #[serde(rename = "type")]
    pub type_: String,
    /// When (emulator clock).
    pub created_at: Timestamp,
    /// The resource as of the change.
    pub data: Value,
}

macro_rules! list_type {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
        pub struct $name {
            /// This page, in creation order.
            pub data: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }
    };
}

list_type!(/// A page of items.
    ItemList, Item);
list_type!(/// A page of locations.
    LocationList, Location);
list_type!(/// A page of movements.
    MovementList, Movement);
list_type!(/// A page of stock levels.
    StockLevelList, StockLevel);
list_type!(/// A page of events.
    EventList, Event);

/// The movements a batch created, in order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MovementBatch {
    /// The committed movements.
    pub data: Vec<Movement>,
}

/// Tells a present `null` apart from an absent field (merge patch).
pub(crate) fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A merge-patch field that cannot be cleared: absent leaves it, a value sets it, and `null` is
/// refused (422 naming the field) instead of being read as "absent". The document marks such
/// fields not nullable.
pub(crate) fn not_null<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("cannot be null: leave the field out to keep its value")),
    }
}
