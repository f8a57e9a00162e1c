//! The domain: tenants, the ledger, idempotency records, webhooks, metering and billing,
//! reconciliation and import jobs. No HTTP in here; the HTTP layer maps
//! [`DomainError`] to problem+json in one place.

pub mod billing;
pub mod bounded;
pub mod chunked;
pub mod csv;
pub mod error;
pub mod fixtures;
pub mod idempotency;
pub mod index;
pub mod jobs;
pub mod ledger;
pub mod model;
pub mod paging;
pub mod reconcile;
pub mod registry;
pub mod validate;
pub mod webhooks;

pub use error::{DomainError, ErrorKind};
pub use ledger::{IfMatch, Ledger};
pub use paging::{Page, Window};
