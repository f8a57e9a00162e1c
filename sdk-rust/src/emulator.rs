//! The emulator in-process (feature `emulator`): a whole TWH server in your test, whose
//! sandboxes come as ready [`Client`]s.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> twh::Result<()> {
//! use twh::emulator::{Config, Emulator};
//!
//! let emu = Emulator::start(Config::default()).await?;
//! let client = emu.create_sandbox()?;
//! assert_eq!(client.list_items(&Default::default()).await?.data.len(), 0);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The handle wraps [`twh_emulator::Emulator`] ([`Emulator::inner`] reaches everything else it
//! offers). The control plane is called in-process, not over HTTP, and takes the SDK's own
//! types ([`types::FaultSpec`], [`types::CreateSandbox`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use twh_emulator::Config;

use crate::sandboxes::SandboxCreated;
use crate::{Client, ClientBuilder, Error, Result, types};

/// The in-process emulator's settings as the Python and Node packages take them (each as
/// `twh-emulator serve` has it; unset: its default), read from JSON with snake_case names so
/// both packages share one reading of them. Unknown names are refused.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Port on 127.0.0.1 (default: any free port).
    pub port: Option<u16>,
    /// Sustained requests per second per API key (0 turns the rate limit off; default 1000).
    pub rate_limit_per_second: Option<u64>,
    /// Token-bucket size per API key (default 2000).
    pub rate_limit_burst: Option<u64>,
    /// Webhook retry delays, in seconds (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h).
    pub webhook_retry_schedule_seconds: Option<Vec<u64>>,
    /// Timeout of one webhook attempt, in milliseconds (default 15 000; more than 0).
    pub webhook_timeout_ms: Option<u64>,
    /// How long a rolled secret key keeps working, in seconds of emulator time (default 86 400).
    pub key_grace_seconds: Option<u32>,
    /// How long idempotency records live, in seconds of emulator time (default 86 400).
    pub idempotency_ttl_seconds: Option<u32>,
    /// Hard monthly quotas of the `free` plan, by meter (`api_requests`, `ledger_lines`,
    /// `webhook_attempts`).
    pub free_quotas: Option<std::collections::BTreeMap<String, u64>>,
    /// Keep the state in this directory and recover it on the next start (default: in memory).
    pub data_dir: Option<std::path::PathBuf>,
}

impl Options {
    /// Reads options from JSON text (an object; `null` values are unset).
    pub fn from_json(text: &str) -> Result<Options> {
        serde_json::from_str(text).map_err(|e| Error::InvalidRequest(format!("emulator options: {e}")))
    }

    /// The emulator configuration these options describe.
    pub fn into_config(self) -> Result<Config> {
        let invalid = |m: String| Error::InvalidRequest(format!("emulator options: {m}"));
        let mut config = Config::default();
        if let Some(port) = self.port {
            config.port = port;
        }
        if let Some(n) = self.rate_limit_per_second {
            config.http.rate_limit_per_second = n;
        }
        if let Some(n) = self.rate_limit_burst {
            config.http.rate_limit_burst = n;
        }
        if let Some(schedule) = self.webhook_retry_schedule_seconds {
            config.webhooks.retry_schedule_seconds = schedule;
        }
        if let Some(ms) = self.webhook_timeout_ms {
            if ms == 0 {
                return Err(invalid("webhook_timeout_ms must be more than 0".into()));
            }
            config.webhooks.timeout = Duration::from_millis(ms);
        }
        if let Some(s) = self.key_grace_seconds {
            config.settings.key_grace_seconds = i64::from(s);
        }
        if let Some(s) = self.idempotency_ttl_seconds {
            config.settings.idempotency_ttl_seconds = i64::from(s);
        }
        if let Some(dir) = self.data_dir {
            if dir.as_os_str().is_empty() {
                return Err(invalid("data_dir must not be empty".into()));
            }
            config.data_dir = Some(dir);
        }
        for (meter, limit) in self.free_quotas.unwrap_or_default() {
            let quotas = &mut config.settings.plans.free.quotas;
            match meter.as_str() {
                "api_requests" => quotas.api_requests = limit,
                "ledger_lines" => quotas.ledger_lines = limit,
                "webhook_attempts" => quotas.webhook_attempts = limit,
                other => return Err(invalid(format!("free_quotas: unknown meter {other:?}"))),
            }
        }
        Ok(config)
    }
}

/// A running emulator (docs/guide/testing-in-ci.md).
#[derive(Debug)]
pub struct Emulator {
    inner: twh_emulator::Emulator,
}

/// Converts between the SDK's and the emulator's types of the same JSON shape.
fn convert<A: serde::Serialize, B: serde::de::DeserializeOwned>(value: &A) -> Result<B> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::InvalidRequest(format!("the emulator does not take this value: {e}")))
}

impl Emulator {
    /// Binds a port (any free one by default) and starts serving.
    pub async fn start(config: Config) -> Result<Emulator> {
        let inner = twh_emulator::Emulator::start(config)
            .await
            .map_err(|e| Error::Configuration(format!("the emulator could not start: {e}")))?;
        Ok(Emulator { inner })
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }

    /// A client builder pointing at this emulator (no key yet): to set a timeout or retries
    /// before [`ClientBuilder::create_sandbox`].
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder().base_url(self.base_url())
    }

    /// Creates an empty sandbox on the free plan and returns a client using its secret key.
    pub fn create_sandbox(&self) -> Result<Client> {
        Ok(self.create_sandbox_with(&types::CreateSandbox::default())?.0)
    }

    /// Creates a sandbox (name, seed, plan) and returns a client using its secret key, and its
    /// details with both keys (a restricted client is
    /// `client.with_api_key(created.restricted_key.expose())`).
    pub fn create_sandbox_with(&self, request: &types::CreateSandbox) -> Result<(Client, SandboxCreated)> {
        let request: twh_emulator::domain::model::CreateSandbox = convert(request)?;
        let created = self.inner.create_sandbox(request).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let created: SandboxCreated = convert(&created)?;
        let client = self.client_builder().api_key(created.secret_key.expose()).build()?;
        Ok((client, created))
    }

    /// Moves the emulator clock forward, firing what became due (idempotency-key expiry,
    /// rolled-key grace periods, …). Returns the new emulator time.
    pub async fn advance_clock(&self, by: Duration) -> DateTime<Utc> {
        let now = self.inner.advance_clock(by).await;
        DateTime::from_timestamp_micros(now.micros()).unwrap_or_default()
    }

    /// Arms a fault (`error_before_commit`, `error_after_commit`, `delay`,
    /// `drop_connection_after_commit`) for the next `times` matching requests.
    pub fn inject_fault(&self, spec: &types::FaultSpec) -> Result<types::Fault> {
        let spec: twh_emulator::http::faults::FaultSpec = convert(spec)?;
        let fault = self.inner.inject_fault(spec).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        convert(&fault)
    }

    /// Disarms every fault.
    pub fn clear_faults(&self) {
        self.inner.state().faults.clear();
    }

    /// The wrapped emulator.
    pub fn inner(&self) -> &twh_emulator::Emulator {
        &self.inner
    }

    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }
}
