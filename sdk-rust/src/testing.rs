//! Hermetic tests against one emulator (feature `testing`).
//!
//! Each test binary starts one in-process emulator, on first use, and each test takes a fresh
//! sandbox on it with [`sandbox`]. Sandboxes share nothing: not their data, not their keys, and
//! not their time, since every sandbox has its own clock ([`Sandbox::advance_clock`] moves this
//! sandbox's only) and [`Sandbox::inject_fault`] arms faults that match this sandbox's requests
//! only. So tests may run in any order, in parallel, and still see only what they did.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> twh::Result<()> {
//! let sandbox = twh::testing::sandbox().await?;
//! let before = sandbox.clock().await?;
//! sandbox.advance_clock(std::time::Duration::from_secs(3600)).await?;
//! assert!(sandbox.clock().await? >= before + chrono::Duration::hours(1));
//! assert_eq!(sandbox.client.list_items(&Default::default()).await?.data.len(), 0);
//! # Ok(()) }
//! ```
//!
//! The emulator runs on a thread and runtime of its own, not on the test's: `#[tokio::test]`
//! gives every test its own runtime, and a server spawned on one would stop with its test. Each
//! [`Sandbox`] holds a handle ([`Emulator::connect`]-style, over HTTP) made on the caller's runtime.

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::emulator::{Config, Emulator, RequestsQuery};
use crate::sandboxes::SandboxCreated;
use crate::{Client, Error, Page, Result, types};

static SHARED: OnceLock<std::result::Result<String, String>> = OnceLock::new();

/// The base URL of this test binary's emulator, starting it on first use.
pub fn base_url() -> Result<String> {
    SHARED.get_or_init(start_shared).clone().map_err(Error::Configuration)
}

fn start_shared() -> std::result::Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("twh-testing-emulator".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(format!("the test emulator's runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            match Emulator::start(Config::default()).await {
                Ok(emu) => {
                    let _ = tx.send(Ok(emu.base_url()));
                    // Serves until the test binary exits.
                    std::future::pending::<()>().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
    });
    spawned.map_err(|e| format!("the test emulator's thread: {e}"))?;
    rx.recv().unwrap_or_else(|_| Err("the test emulator's thread ended".into()))
}

/// A handle of this test binary's emulator, usable on the caller's runtime.
pub async fn emulator() -> Result<Emulator> {
    Emulator::connect(base_url()?, None).await
}

/// A fresh empty sandbox on the free plan of this test binary's emulator.
pub async fn sandbox() -> Result<Sandbox> {
    sandbox_with(&types::CreateSandbox::default()).await
}

/// A fresh sandbox (name, seed, plan) of this test binary's emulator.
pub async fn sandbox_with(request: &types::CreateSandbox) -> Result<Sandbox> {
    let emulator = emulator().await?;
    let (client, details) = emulator.create_sandbox_with(request).await?;
    Ok(Sandbox { client, details, emulator })
}

/// One test's sandbox: a ready client with its secret key, its details (both keys), and the
/// emulator's handle, with the control-plane calls that concern this sandbox alone.
#[derive(Debug)]
pub struct Sandbox {
    /// A client using the sandbox's secret key.
    pub client: Client,
    /// Its id, name, plan and keys.
    pub details: SandboxCreated,
    /// The emulator's handle (for what is not this sandbox's: the shared sinks, say).
    pub emulator: Emulator,
}

impl Sandbox {
    /// `sbx_…`
    pub fn id(&self) -> &str {
        &self.details.id
    }

    /// This sandbox's time.
    pub async fn clock(&self) -> Result<DateTime<Utc>> {
        Ok(self.emulator.sandbox_clock(self.id()).await?.now)
    }

    /// Moves this sandbox's clock forward, firing what became due for it; no other sandbox
    /// sees it. Returns its new time.
    pub async fn advance_clock(&self, by: Duration) -> Result<DateTime<Utc>> {
        self.emulator.advance_sandbox_clock(self.id(), by).await
    }

    /// Arms a fault that matches this sandbox's requests only (its `sandbox_id` is set to this
    /// sandbox's).
    pub async fn inject_fault(&self, spec: &types::FaultSpec) -> Result<types::Fault> {
        let spec = types::FaultSpec { sandbox_id: Some(self.id().to_owned()), ..spec.clone() };
        self.emulator.inject_fault(&spec).await
    }

    /// A page of the request journal, this sandbox's requests only.
    pub async fn requests(&self, query: &RequestsQuery) -> Result<Page<types::JournalEntry>> {
        let query = RequestsQuery { sandbox_id: Some(self.id().to_owned()), ..query.clone() };
        self.emulator.requests(&query).await
    }
}
