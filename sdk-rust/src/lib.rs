#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

// The progenitor client of `openapi/openapi.json`, written by `cargo xtask generate`: never
// edited by hand (and not reformatted: `--check` compares it byte for byte). Its lints are its
// generator's business.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications, unreachable_pub)]
#[rustfmt::skip]
pub mod generated;

mod billing;
pub mod call;
mod catalogue;
mod client;
mod config;
// Generated beside the client, not formatted: `--check` compares it byte for byte.
#[rustfmt::skip]
pub mod enums;
#[cfg(feature = "dispatch")]
pub mod dispatch;
pub mod error;
pub mod etag;
pub mod hooks;
pub mod idempotency;
// Generated from the document, not formatted: `--check` compares it byte for byte.
#[rustfmt::skip]
mod methods;
mod jobs;
mod movements;
pub mod pagination;
pub mod patch;
mod patches;
pub mod response;
pub mod retry;
mod sandboxes;
mod stock_levels;
mod webhook_endpoints;
pub mod webhooks;

#[cfg(feature = "emulator")]
pub mod emulator;
#[cfg(feature = "testing")]
pub mod testing;

pub use call::Call;
pub use client::Client;
pub use config::{
    API_KEY_ENV, ApiKey, BASE_URL_ENV, ClientBuilder, DEFAULT_BASE_URL, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT,
    RequestOptions, USER_AGENT,
};
pub use error::{ApiError, Error, ErrorKind, Result};
pub use etag::{ETag, ResponseValueExt, Versioned};
/// The API's types: the generated client's, with the open enumerations of [`enums`] in place
/// of closed ones.
pub mod types {
    pub use crate::enums::*;
    pub use crate::generated::types::*;
    pub use crate::patches::*;
}
pub use hooks::{Attempt, Hooks};
pub use idempotency::Post;
pub use methods::*;
pub use movements::BATCH_SIZE_MAX;
pub use pagination::Page;
pub use patch::Patch;
pub use response::{RateLimit, Response, ResponseMeta};
pub use sandboxes::{ApiKeyRolled, SandboxCreated};
pub use webhook_endpoints::{WebhookEndpointSecret, WebhookEndpointWithSecret};
