//! What the metering step hands a handler: the [`Admission`] (key, tenant, usage row), and how
//! both find the caller's key ([`bearer`]).
//!
//! Why a module of its own: the metering step makes admissions and reads the bearer token; the
//! `Auth` extractor takes admissions and reads the same token when there is none. With these two
//! here, below both, neither has to import the other (they used to import each other).

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use crate::domain::billing::RowRef;
use crate::domain::registry::{KeyGrant, Tenant};

/// What the layer decided, handed to the handler.
#[derive(Clone, Debug)]
pub struct Admission {
    /// The key's grant.
    pub grant: Arc<KeyGrant>,
    /// Its tenant.
    pub tenant: Arc<Tenant>,
    /// The request's usage row.
    pub row: RowRef,
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}
