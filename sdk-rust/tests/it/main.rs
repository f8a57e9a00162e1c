//! Integration tests of the SDK, compiled as one binary (see STYLE.md).
//!
//! - `retries`, `headers`: against wiremock and raw sockets, for exact control of answers.
//! - `ledger`, `faults`, `concurrency`, `pagination`, `errors`: against the in-process emulator.
//! - `webhooks`: verification, and interoperation with the `standardwebhooks` crate;
//!   `webhook_endpoints`: endpoints, and verification of what the emulator itself sends.
//! - `billing`: plans, subscription, usage, invoices, reconciliations and jobs.
//! - `config`: construction and the environment.

mod common;
mod config;
mod headers;
mod retries;
mod webhooks;

#[cfg(feature = "emulator")]
mod billing;
#[cfg(feature = "emulator")]
mod concurrency;
#[cfg(feature = "emulator")]
mod errors;
#[cfg(feature = "emulator")]
mod faults;
#[cfg(feature = "emulator")]
mod ledger;
#[cfg(feature = "emulator")]
mod pagination;
#[cfg(feature = "emulator")]
mod webhook_endpoints;
