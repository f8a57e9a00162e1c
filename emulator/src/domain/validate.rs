//! Rules about a request's own values (422 `validation_failed`), each with its bound.
//!
//! The bounds live here, with the rules that enforce them, and the ledger imports them: this
//! module imports nothing of the ledger's, so the two never import each other.

use serde_json::{Map, Value};

use super::error::DomainError;
use super::model::*;

/// Largest magnitude of a movement quantity.
pub const QUANTITY_MAGNITUDE_MAX: i64 = 1_000_000_000_000_000;
/// Most movements in one batch.
pub const BATCH_LEN_MAX: usize = 1000;
/// Longest SKU or location code, in characters.
pub const KEY_LEN_MAX: usize = 64;
/// Longest name, in characters.
pub const NAME_LEN_MAX: usize = 200;
/// Longest unit, in characters.
pub const UNIT_LEN_MAX: usize = 32;
/// Longest movement reference, in characters.
pub const REFERENCE_LEN_MAX: usize = 255;
/// Longest reason, in characters.
pub const REASON_LEN_MAX: usize = 500;
/// Most keys in an attributes or metadata object.
pub const OBJECT_KEYS_MAX: usize = 50;
/// Largest attributes or metadata object, serialised, in bytes.
pub const OBJECT_BYTES_MAX: usize = 8 * 1024;

struct Check(Vec<FieldError>);

impl Check {
    fn new() -> Check {
        Check(Vec::new())
    }
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
    fn text(&mut self, field: &str, value: &str, max: usize, printable_only: bool) {
        let n = value.chars().count();
        if n == 0 || n > max {
            self.fail(field, format!("must be 1..={max} characters"));
        } else if value.trim().is_empty() {
            self.fail(field, "must not be blank");
        } else if printable_only && value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            self.fail(field, "must be printable characters without spaces");
        } else if value.chars().any(char::is_control) {
            self.fail(field, "must not contain control characters");
        }
    }
    fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value {
            if v.chars().count() > max {
                self.fail(field, format!("must be at most {max} characters"));
            } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                self.fail(field, "must not contain control characters");
            }
        }
    }
    fn object(&mut self, field: &str, value: &Map<String, Value>) {
        if value.len() > OBJECT_KEYS_MAX {
            self.fail(field, format!("must have at most {OBJECT_KEYS_MAX} keys"));
        } else if serde_json::to_vec(value).map_or(usize::MAX, |v| v.len()) > OBJECT_BYTES_MAX {
            self.fail(field, format!("must be at most {OBJECT_BYTES_MAX} bytes as JSON"));
        }
    }
    fn done(self) -> Result<(), DomainError> {
        if self.0.is_empty() { Ok(()) } else { Err(DomainError::validation(self.0)) }
    }
}

/// Attributes after a merge.
pub fn attributes(field: &str, value: &Map<String, Value>) -> Result<(), DomainError> {
    let mut c = Check::new();
    c.object(field, value);
    c.done()
}

/// `POST /v1/sandboxes`.
pub fn create_sandbox(req: &CreateSandbox) -> Result<(), DomainError> {
    let mut c = Check::new();
    if let Some(name) = &req.name {
        c.text("name", name, NAME_LEN_MAX, false);
    }
    c.done()
}

/// `POST /v1/items`.
pub fn create_item(req: &CreateItem) -> Result<(), DomainError> {
    let mut c = Check::new();
    c.text("sku", &req.sku, KEY_LEN_MAX, true);
    c.text("name", &req.name, NAME_LEN_MAX, false);
    if let Some(unit) = &req.unit {
        c.text("unit", unit, UNIT_LEN_MAX, false);
    }
    if let Some(a) = &req.attributes {
        c.object("attributes", a);
    }
    if req.low_stock_threshold.is_some_and(|t| t < 0) {
        c.fail("low_stock_threshold", "must be 0 or more");
    }
    c.done()
}

/// `PATCH /v1/items/{id}`.
pub fn update_item(req: &UpdateItem) -> Result<(), DomainError> {
    let mut c = Check::new();
    if let Some(v) = &req.sku {
        c.text("sku", v, KEY_LEN_MAX, true);
    }
    if let Some(v) = &req.name {
        c.text("name", v, NAME_LEN_MAX, false);
    }
    if let Some(v) = &req.unit {
        c.text("unit", v, UNIT_LEN_MAX, false);
    }
    if let Some(Some(t)) = req.low_stock_threshold {
        if t < 0 {
            c.fail("low_stock_threshold", "must be 0 or more");
        }
    }
    c.done()
}

/// `POST /v1/locations`.
pub fn create_location(req: &CreateLocation) -> Result<(), DomainError> {
    let mut c = Check::new();
    c.text("code", &req.code, KEY_LEN_MAX, true);
    c.text("name", &req.name, NAME_LEN_MAX, false);
    c.done()
}

/// `PATCH /v1/locations/{id}`.
pub fn update_location(req: &UpdateLocation) -> Result<(), DomainError> {
    let mut c = Check::new();
    if let Some(v) = &req.code {
        c.text("code", v, KEY_LEN_MAX, true);
    }
    if let Some(v) = &req.name {
        c.text("name", v, NAME_LEN_MAX, false);
    }
    c.done()
}

/// One movement (single or in a batch).
pub fn create_movement(req: &CreateMovement) -> Result<(), DomainError> {
    let mut c = Check::new();
    let q = req.quantity;
    if q.unsigned_abs() > QUANTITY_MAGNITUDE_MAX.unsigned_abs() {
        c.fail("quantity", format!("must be at most {QUANTITY_MAGNITUDE_MAX} in magnitude"));
    } else if req.type_ == MovementType::Adjustment {
        if q == 0 {
            c.fail("quantity", "must not be 0 for an adjustment");
        }
    } else if q <= 0 {
        c.fail("quantity", format!("must be greater than 0 for a {}", req.type_.as_str()));
    }
    if req.type_ == MovementType::Transfer {
        if req.location_id.is_some() {
            c.fail("location_id", "a transfer takes from_location_id and to_location_id");
        }
        match (&req.from_location_id, &req.to_location_id) {
            (Some(a), Some(b)) if a == b => c.fail("to_location_id", "must differ from from_location_id"),
            (Some(_), Some(_)) => {}
            (from, to) => {
                if from.is_none() {
                    c.fail("from_location_id", "is required for a transfer");
                }
                if to.is_none() {
                    c.fail("to_location_id", "is required for a transfer");
                }
            }
        }
    } else {
        if req.location_id.is_none() {
            c.fail("location_id", format!("is required for a {}", req.type_.as_str()));
        }
        if req.from_location_id.is_some() {
            c.fail("from_location_id", "only a transfer takes from_location_id");
        }
        if req.to_location_id.is_some() {
            c.fail("to_location_id", "only a transfer takes to_location_id");
        }
    }
    c.optional_text("reference", req.reference.as_deref(), REFERENCE_LEN_MAX);
    c.optional_text("reason", req.reason.as_deref(), REASON_LEN_MAX);
    if let Some(m) = &req.metadata {
        c.object("metadata", m);
    }
    c.done()
}

/// `POST /v1/stock-movements/{id}/reverse`.
pub fn reverse(req: &ReverseMovement) -> Result<(), DomainError> {
    let mut c = Check::new();
    c.optional_text("reason", req.reason.as_deref(), REASON_LEN_MAX);
    c.done()
}
