//! Domain errors: what the ledger decides, with no notion of HTTP. The HTTP layer maps each kind
//! to a status code in one place (`http::error`).

use super::model::FieldError;

/// The kinds of domain failure; each has a stable `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The resource does not exist (or belongs to another tenant).
    NotFound,
    /// The request breaks the schema or a rule about its own values.
    Validation,
    /// `sku` already used in this tenant.
    SkuTaken,
    /// Location `code` already used in this tenant.
    CodeTaken,
    /// The item is archived and takes no movements.
    ItemArchived,
    /// The location is archived and takes no movements.
    LocationArchived,
    /// The change would drive a level below zero.
    InsufficientStock,
    /// The movement was already reversed.
    AlreadyReversed,
    /// `If-Match` does not match the current version.
    PreconditionFailed,
    /// `If-Match` is required and missing.
    PreconditionRequired,
    /// The webhook endpoint is disabled.
    EndpointDisabled,
    /// An attempt of the webhook delivery is under way.
    DeliveryInFlight,
    /// A hard quota of the plan is used up for this billing period.
    QuotaExceeded,
    /// The sandbox already has the most import jobs waiting or running.
    TooManyJobs,
    /// A given API key is already in use (fixtures).
    KeyTaken,
}

impl ErrorKind {
    /// The stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Validation => "validation_failed",
            ErrorKind::SkuTaken => "sku_taken",
            ErrorKind::CodeTaken => "code_taken",
            ErrorKind::ItemArchived => "item_archived",
            ErrorKind::LocationArchived => "location_archived",
            ErrorKind::InsufficientStock => "insufficient_stock",
            ErrorKind::AlreadyReversed => "already_reversed",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::PreconditionRequired => "precondition_required",
            ErrorKind::EndpointDisabled => "endpoint_disabled",
            ErrorKind::DeliveryInFlight => "delivery_in_flight",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::TooManyJobs => "too_many_jobs",
            ErrorKind::KeyTaken => "key_taken",
        }
    }
}

/// A domain failure: nothing was written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.code())]
pub struct DomainError {
    /// What kind.
    pub kind: ErrorKind,
    /// A sentence for people.
    pub detail: String,
    /// Field problems, when the failure is about fields.
    pub errors: Vec<FieldError>,
    /// For `PreconditionFailed`: the current version.
    pub current_version: Option<u64>,
}

impl DomainError {
    /// A failure with a detail and no field errors.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> DomainError {
        DomainError { kind, detail: detail.into(), errors: Vec::new(), current_version: None }
    }

    /// `not_found` for a resource named like "item".
    pub fn not_found(what: &str) -> DomainError {
        DomainError::new(ErrorKind::NotFound, format!("No such {what}."))
    }

    /// `validation_failed` with field errors.
    pub fn validation(errors: Vec<FieldError>) -> DomainError {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} fields are invalid.", errors.len()),
        };
        DomainError { kind: ErrorKind::Validation, detail, errors, current_version: None }
    }

    /// `precondition_failed` carrying the current version.
    pub fn stale(current_version: u64) -> DomainError {
        DomainError {
            kind: ErrorKind::PreconditionFailed,
            detail: format!("If-Match does not match the current ETag \"{current_version}\"."),
            errors: Vec::new(),
            current_version: Some(current_version),
        }
    }

    /// The same failure, with every field error's path put under `prefix` (batch entries).
    pub fn within(mut self, prefix: &str) -> DomainError {
        if self.errors.is_empty() {
            self.errors.push(FieldError::new(prefix, self.detail.clone()));
        } else {
            for e in &mut self.errors {
                e.field = format!("{prefix}.{}", e.field);
            }
        }
        self.detail = format!("{prefix}: {}", self.detail);
        self
    }
}
