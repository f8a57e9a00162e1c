//! `twh-emulator`: a complete, stateful, in-process emulator of the TWH API.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use twh_emulator::{Config, Emulator};
//! let emu = Emulator::start(Config::default()).await?;
//! let sandbox = emu.create_sandbox(Default::default()).expect("sandbox");
//! println!("{} {}", emu.base_url(), sandbox.secret_key);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Layout: [`domain`] holds the ledger, tenants and idempotency records with no HTTP in it;
//! [`http`] maps it to API v1 ([`app`] is the router tests drive in-process); [`clock`] is the
//! one source of "now"; [`openapi`] generates the document from these types.

pub mod api;
pub mod cli;
pub mod clock;
pub mod dispatch;
pub mod domain;
pub mod http;
pub mod ids;
pub mod openapi;
pub mod runner;
mod server;
pub mod store;

pub use dispatch::WebhookSettings;
pub use http::{App, AppState, HttpConfig, app};
pub use server::{Config, Emulator, SHUTDOWN_GRACE};
