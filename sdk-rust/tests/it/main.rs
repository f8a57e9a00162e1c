//! Integration tests of the SDK, compiled as one binary (see STYLE.md).
//!
//! - `retries`, `headers`: against wiremock and raw sockets, for exact control of answers.
//! - `ledger`, `faults`, `concurrency`, `pagination`, `errors`: against the in-process emulator.
//! - `webhooks`: verification, and interoperation with the `standardwebhooks` crate;
//!   `webhook_endpoints`: endpoints, and verification of what the emulator itself sends.
//! - `billing`: plans, subscription, usage, invoices, reconciliations and jobs.
//! - `config`: construction and the environment; `forward_compat`: answers of a newer server.
//! - `dispatch`: the shared dispatch of the Python and Node packages.
//! - `handle`: the emulator handle's control plane, in-process and connected to a served one;
//!   `testing`: the hermetic helpers of `twh::testing`.

mod common;
mod config;
mod forward_compat;
mod headers;
mod retries;
mod webhooks;

#[cfg(feature = "emulator")]
mod billing;
#[cfg(all(feature = "emulator", feature = "dispatch"))]
mod call_control;
#[cfg(feature = "emulator")]
mod concurrency;
#[cfg(all(feature = "emulator", feature = "dispatch"))]
mod dispatch;
#[cfg(feature = "emulator")]
mod errors;
#[cfg(feature = "emulator")]
mod faults;
#[cfg(feature = "emulator")]
mod handle;
#[cfg(feature = "emulator")]
mod ledger;
#[cfg(feature = "emulator")]
mod pagination;
#[cfg(feature = "testing")]
mod testing;
#[cfg(feature = "emulator")]
mod webhook_endpoints;
