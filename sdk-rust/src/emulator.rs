//! The emulator in-process (feature `emulator`): a whole TWH server in your test, whose
//! sandboxes come as ready [`Client`]s.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> twh::Result<()> {
//! use twh::emulator::{Config, Emulator};
//!
//! let emu = Emulator::start(Config::default()).await?;
//! let client = emu.create_sandbox().await?;
//! assert_eq!(client.list_items(&Default::default()).await?.data.len(), 0);
//! emu.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! One handle, two ways to get it: [`Emulator::start`] runs the server in this process;
//! [`Emulator::connect`] reaches one that another process serves (`twh-emulator serve`), with
//! its admin token if it has one. Either way every method talks HTTP to the emulator's control
//! plane (`/_emulator/…`) and to `POST /v1/sandboxes`, sending the admin token as
//! `Authorization: Bearer`, so the two behave the same; only [`Emulator::shutdown`] and
//! [`Emulator::inner`] differ (a connected handle stops nothing and wraps nothing). The calls
//! go through the SDK's own HTTP client: request ids, retries of connection errors and 5xx,
//! problem+json errors as [`Error`]. Values are the API document's types ([`types::FaultSpec`],
//! [`types::SinkEntry`], …) where it has them.
//!
//! Per-sandbox clocks make tests that share one emulator hermetic: advance a sandbox's clock with
//! [`Emulator::advance_sandbox_clock`], not the emulator's with [`Emulator::advance_clock`], and
//! scope faults to the sandbox (`sandbox_id` of [`types::FaultSpec`]). [`crate::testing`]
//! (feature `testing`) packages that.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use twh_emulator::Config;

use crate::config::ApiKey;
use crate::pagination::Page;
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
    /// Deterministic mode (`serve --deterministic SEED`): ids, keys, webhook secrets and request
    /// ids come from a generator seeded by this, and the clock starts at 2030-01-01T00:00:00Z and
    /// moves only when advanced, so the same requests get the same answers on every run.
    pub deterministic: Option<u64>,
    /// Most requests the request journal keeps (`serve --journal-size`; default 10 000); 0 turns
    /// it off.
    pub journal_size: Option<usize>,
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
        config.deterministic = self.deterministic;
        if let Some(n) = self.journal_size {
            config.http.journal_size = n;
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

/// Largest control-plane answer the handle reads, in bytes: a journal page of 100 entries with
/// both bodies at the journal's 64 KiB, or a full sink, fits well within it.
pub const CONTROL_BODY_BYTES_MAX: usize = 128 << 20;

/// Longest sink name, as the emulator takes them (`[A-Za-z0-9._-]`).
pub const SINK_NAME_LEN_MAX: usize = 64;

/// A running emulator (docs/guide/emulator.md): started in this process
/// ([`Emulator::start`]) or served by another ([`Emulator::connect`]).
#[derive(Debug)]
pub struct Emulator {
    /// The server, when this process runs it.
    server: Option<twh_emulator::Emulator>,
    base_url: String,
    /// The control plane's client: the admin token as its key, or no key.
    control: Client,
}

/// The filters and the page of [`Emulator::requests`] (each optional; `limit` 1..=100,
/// default 20). Read from JSON too (snake_case names, unknown ones refused), as the Python and
/// Node packages pass it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestsQuery {
    /// Only requests authenticated to this sandbox (`sbx_…`).
    pub sandbox_id: Option<String>,
    /// Only this method (`POST`).
    pub method: Option<String>,
    /// Only paths that start with this (`/v1/stock-movements`).
    pub path_prefix: Option<String>,
    /// Only answers with this status.
    pub status: Option<u16>,
    /// Only the attempts of one call (its `X-Request-Id`).
    pub request_id: Option<String>,
    /// Only requests with this `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where the page starts (a `next_cursor`).
    pub cursor: Option<String>,
}

impl RequestsQuery {
    fn pairs(&self) -> Result<Vec<(&'static str, String)>> {
        let limit = crate::pagination::limit(self.limit)?;
        let fields = [
            ("sandbox_id", self.sandbox_id.clone()),
            ("method", self.method.clone()),
            ("path_prefix", self.path_prefix.clone()),
            ("status", self.status.map(|s| s.to_string())),
            ("request_id", self.request_id.clone()),
            ("idempotency_key", self.idempotency_key.clone()),
            ("limit", limit.map(|n| n.to_string())),
            ("cursor", self.cursor.clone()),
        ];
        Ok(fields.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }
}

/// A sink name as one path segment: refused before anything is sent if the emulator would
/// refuse it (or if it could change the path).
fn sink_name(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= SINK_NAME_LEN_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && name.bytes().any(|b| b != b'.');
    if ok {
        Ok(name)
    } else {
        Err(Error::InvalidRequest(format!("{name:?} is not a sink name (1..={SINK_NAME_LEN_MAX} of [A-Za-z0-9._-])")))
    }
}

impl Emulator {
    /// Binds a port (any free one by default) and starts serving.
    pub async fn start(config: Config) -> Result<Emulator> {
        let server = twh_emulator::Emulator::start(config)
            .await
            .map_err(|e| Error::Configuration(format!("the emulator could not start: {e}")))?;
        let base_url = server.base_url();
        let mut emu = Emulator::handle(&base_url, None)?;
        emu.server = Some(server);
        Ok(emu)
    }

    /// The handle of an emulator that another process serves (`twh-emulator serve`), at
    /// `base_url`, sending `admin_token` (its `--admin-token`) if given. It checks that an
    /// emulator answers there (`GET /_emulator/health`) and that the token is accepted.
    /// [`Emulator::shutdown`] of this handle stops nothing.
    pub async fn connect(base_url: impl Into<String>, admin_token: Option<&str>) -> Result<Emulator> {
        let emu = Emulator::handle(&base_url.into(), admin_token)?;
        let _: serde_json::Value = emu.call(reqwest::Method::GET, "/_emulator/health", &[], None).await?;
        // Health may be open; the clock needs the token when the emulator requires one.
        emu.clock().await?;
        Ok(emu)
    }

    fn handle(base_url: &str, admin_token: Option<&str>) -> Result<Emulator> {
        let admin_token = admin_token.map(ApiKey::new).transpose()?;
        let control = Client::builder().base_url(base_url).build_with(admin_token)?;
        Ok(Emulator { server: None, base_url: control.base_url().to_owned(), control })
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Whether this handle was made by [`Emulator::connect`] (the server runs elsewhere).
    pub fn is_connected(&self) -> bool {
        self.server.is_none()
    }

    /// A client builder pointing at this emulator (no key yet): to set a timeout or retries
    /// before [`ClientBuilder::create_sandbox`].
    pub fn client_builder(&self) -> ClientBuilder {
        Client::builder().base_url(self.base_url())
    }

    /// Calls the control plane: `path` with `query`, sending `body` as JSON; answers the body
    /// (`None` for an empty one, like a 204's), at most [`CONTROL_BODY_BYTES_MAX`] bytes.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<Option<bytes::Bytes>> {
        use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
        let raw = &self.control.raw;
        let mut builder = raw
            .client()
            .request(method, format!("{}{path}", self.base_url))
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &body {
            builder = builder.json(body);
        }
        let mut request = builder.build().map_err(|e| Error::InvalidRequest(e.to_string()))?;
        let (attempts, call) = crate::retry::counted(async move {
            crate::idempotency::prepare(&mut request);
            raw.exec(request, &OperationInfo { operation_id: "emulator_control" }).await
        });
        let mut response = match call.await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => return Err(Error::from_answer(crate::error::api_error_from_response(r, attempts.get()).await)),
            Err(e) => return Err(Error::transport(e, attempts.get())),
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::transport(e, attempts.get()))? {
            if bytes.len() + chunk.len() > CONTROL_BODY_BYTES_MAX {
                return Err(Error::UnexpectedResponse {
                    status: Some(response.status().as_u16()),
                    message: format!("the emulator answered more than {CONTROL_BODY_BYTES_MAX} bytes"),
                    attempts: attempts.get(),
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((!bytes.is_empty()).then(|| bytes::Bytes::from(bytes)))
    }

    /// [`Emulator::send`], reading the answer as a `T`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<T> {
        let bytes = self.send(method, path, query, body).await?.unwrap_or_default();
        serde_json::from_slice(&bytes).map_err(|e| Error::UnexpectedResponse {
            status: None,
            message: format!("the emulator's answer to {path} is not what the SDK expects: {e}"),
            attempts: 1,
        })
    }

    /// Creates an empty sandbox on the free plan and returns a client using its secret key.
    pub async fn create_sandbox(&self) -> Result<Client> {
        Ok(self.create_sandbox_with(&types::CreateSandbox::default()).await?.0)
    }

    /// Creates a sandbox (name, seed, plan) and returns a client using its secret key, and its
    /// details with both keys (a restricted client is
    /// `client.with_api_key(created.restricted_key.expose())`).
    pub async fn create_sandbox_with(&self, request: &types::CreateSandbox) -> Result<(Client, SandboxCreated)> {
        let created = self.control.create_sandbox(request.clone()).await?;
        let client = self.client_builder().api_key(created.secret_key.expose()).build()?;
        Ok((client, created))
    }

    /// The emulator clock (`GET /_emulator/clock`): the time of sandboxes whose clock was
    /// never advanced on its own.
    pub async fn clock(&self) -> Result<types::ClockState> {
        self.call(reqwest::Method::GET, "/_emulator/clock", &[], None).await
    }

    /// The body of an advance by `by`: whole seconds as `{seconds}`, else `{to}` from `now`.
    async fn advance_body(
        &self,
        by: Duration,
        now: impl Future<Output = Result<DateTime<Utc>>>,
    ) -> Result<serde_json::Value> {
        if by.subsec_nanos() == 0 {
            let seconds = i64::try_from(by.as_secs()).map_err(|_| Error::InvalidRequest("advance: too far".into()))?;
            return Ok(serde_json::json!({ "seconds": seconds }));
        }
        let by = chrono::Duration::from_std(by).map_err(|_| Error::InvalidRequest("advance: too far".into()))?;
        let to = now.await? + by;
        Ok(serde_json::json!({ "to": to.to_rfc3339_opts(chrono::SecondsFormat::Micros, true) }))
    }

    /// Moves the emulator clock, and so every sandbox's, forward by `by`
    /// (`POST /_emulator/clock/advance`), firing what became due (webhook retries, invoices,
    /// idempotency-key expiry, rolled-key grace periods, …). Returns the new emulator time.
    /// Tests that share an emulator advance their own sandbox's instead
    /// ([`Emulator::advance_sandbox_clock`]).
    pub async fn advance_clock(&self, by: Duration) -> Result<DateTime<Utc>> {
        let body = self.advance_body(by, async { Ok(self.clock().await?.now) }).await?;
        let state: types::ClockState =
            self.call(reqwest::Method::POST, "/_emulator/clock/advance", &[], Some(body)).await?;
        Ok(state.now)
    }

    /// One sandbox's clock (`GET /_emulator/sandboxes/{id}/clock`): the emulator clock plus
    /// the sandbox's own offset.
    pub async fn sandbox_clock(&self, sandbox_id: &str) -> Result<types::ClockState> {
        let path = format!("/_emulator/sandboxes/{}/clock", crate::client::path_segment(sandbox_id)?);
        self.call(reqwest::Method::GET, &path, &[], None).await
    }

    /// Moves one sandbox's clock forward by `by`
    /// (`POST /_emulator/sandboxes/{id}/clock/advance`), firing what became due for it alone
    /// (its webhook retries, billing periods, idempotency-key expiry, …); other sandboxes do not
    /// see it. Returns the sandbox's new time.
    pub async fn advance_sandbox_clock(&self, sandbox_id: &str, by: Duration) -> Result<DateTime<Utc>> {
        let path = format!("/_emulator/sandboxes/{}/clock/advance", crate::client::path_segment(sandbox_id)?);
        let body = self.advance_body(by, async { Ok(self.sandbox_clock(sandbox_id).await?.now) }).await?;
        let state: types::ClockState = self.call(reqwest::Method::POST, &path, &[], Some(body)).await?;
        Ok(state.now)
    }

    /// Arms a fault (`error_before_commit`, `error_after_commit`, `delay`,
    /// `drop_connection_after_commit`) for the next `times` matching requests
    /// (`POST /_emulator/faults`).
    pub async fn inject_fault(&self, spec: &types::FaultSpec) -> Result<types::Fault> {
        let body = serde_json::to_value(spec).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        self.call(reqwest::Method::POST, "/_emulator/faults", &[], Some(body)).await
    }

    /// The armed faults, with the `times` each has left (`GET /_emulator/faults`).
    pub async fn faults(&self) -> Result<Vec<types::Fault>> {
        let list: types::FaultList = self.call(reqwest::Method::GET, "/_emulator/faults", &[], None).await?;
        Ok(list.data)
    }

    /// Disarms every fault (`DELETE /_emulator/faults`).
    pub async fn clear_faults(&self) -> Result<()> {
        self.send(reqwest::Method::DELETE, "/_emulator/faults", &[], None).await.map(drop)
    }

    /// What the built-in webhook sink `name` received (`GET /_emulator/sink/{name}`), oldest
    /// first: point an endpoint at `{base_url}/_emulator/sink/{name}` to test deliveries with
    /// no server of your own.
    pub async fn sink(&self, name: &str) -> Result<Vec<types::SinkEntry>> {
        let path = format!("/_emulator/sink/{}", sink_name(name)?);
        let list: types::SinkList = self.call(reqwest::Method::GET, &path, &[], None).await?;
        Ok(list.data)
    }

    /// Forgets what sink `name` received (`DELETE /_emulator/sink/{name}`).
    pub async fn clear_sink(&self, name: &str) -> Result<()> {
        let path = format!("/_emulator/sink/{}", sink_name(name)?);
        self.send(reqwest::Method::DELETE, &path, &[], None).await.map(drop)
    }

    /// One page of the request journal (`GET /_emulator/requests`), oldest first, filtered by
    /// `query`. Every attempt of one SDK call shares its `request_id` and idempotency key, so
    /// `request_id` shows each attempt of a call and which one was replayed.
    pub async fn requests(&self, query: &RequestsQuery) -> Result<Page<types::JournalEntry>> {
        let page: types::JournalPage =
            self.call(reqwest::Method::GET, "/_emulator/requests", &query.pairs()?, None).await?;
        Ok(Page { data: page.data, next_cursor: page.next_cursor })
    }

    /// Every journal entry matching `query` from its `cursor` on, a page at a time.
    pub fn requests_stream(
        &self,
        query: RequestsQuery,
    ) -> impl futures::Stream<Item = Result<types::JournalEntry>> + Send + '_ {
        crate::pagination::paginate(query.cursor.clone(), move |cursor| {
            let query = RequestsQuery { cursor, ..query.clone() };
            async move { self.requests(&query).await }
        })
    }

    /// One journal entry by its id (`GET /_emulator/requests/{id}`).
    pub async fn request(&self, id: &str) -> Result<types::JournalEntry> {
        let path = format!("/_emulator/requests/{}", crate::client::path_segment(id)?);
        self.call(reqwest::Method::GET, &path, &[], None).await
    }

    /// Empties the request journal (`DELETE /_emulator/requests`).
    pub async fn clear_requests(&self) -> Result<()> {
        self.send(reqwest::Method::DELETE, "/_emulator/requests", &[], None).await.map(drop)
    }

    /// Creates the sandboxes of a fixtures document (`POST /_emulator/fixtures`, the document
    /// `twh-emulator serve --fixtures FILE` reads: `{"sandboxes": [{"name", "plan"?,
    /// "secret_key"?, "restricted_key"?, "items", "locations", "movements",
    /// "webhook_endpoints"}]}`, [`types::Fixtures`] or any value of that JSON), all or nothing,
    /// and returns each with a ready client using its secret key, in the document's order.
    pub async fn load_fixtures<T: Serialize + ?Sized>(&self, document: &T) -> Result<Vec<(Client, SandboxCreated)>> {
        let body = serde_json::to_value(document).map_err(|e| Error::InvalidRequest(format!("fixtures: {e}")))?;
        let loaded: types::FixturesLoaded =
            self.call(reqwest::Method::POST, "/_emulator/fixtures", &[], Some(body)).await?;
        loaded
            .sandboxes
            .into_iter()
            .map(|s| Ok((self.client_builder().api_key(s.secret_key.expose()).build()?, s)))
            .collect()
    }

    /// The wrapped emulator: `None` for a handle made by [`Emulator::connect`].
    pub fn inner(&self) -> Option<&twh_emulator::Emulator> {
        self.server.as_ref()
    }

    /// Stops accepting, lets in-flight requests finish, and returns. A connected handle
    /// ([`Emulator::connect`]) stops nothing: the other process serves on.
    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}
