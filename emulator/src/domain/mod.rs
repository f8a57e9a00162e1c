//! The domain: tenants, the ledger, idempotency records. No HTTP in here; the HTTP layer maps
//! [`DomainError`] to problem+json in one place.

pub mod chunked;
pub mod error;
pub mod idempotency;
pub mod ledger;
pub mod model;
pub mod registry;
pub mod validate;
pub mod webhooks;

pub use error::{DomainError, ErrorKind};
pub use ledger::{IfMatch, Ledger, Page, Window};
