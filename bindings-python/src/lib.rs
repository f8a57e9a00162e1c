//! `twh._native`: the private native module under the `twh` Python package.
//!
//! The Python package (`python/twh`) is the public face; this module is deliberately small.
//! Each class wraps the Rust object (`Client { inner: twh::Client }`, `Emulator { inner }`), and
//! values cross the boundary as JSON text: the SDK's types are serde types already, so one
//! `serde_json` round trip in each direction gives Python exactly the API's JSON shapes (which
//! `twh.Model` then offers with attribute access and `.to_dict()`), with no per-type glue to keep
//! in step with the generated client.
//!
//! Threads: one process-wide tokio runtime runs every call. A blocking call waits for it with
//! the GIL released (`Python::detach`); an asyncio call (`call_async`) gets an awaitable from
//! pyo3-async-runtimes' generic bridge on this same runtime (`TwhRuntime`), whose future runs
//! without Python and only then attaches, on a blocking-pool thread, to resolve the asyncio
//! future through `loop.call_soon_threadsafe`. `shutdown()` (registered with `atexit` by the
//! package) stops the runtime and drains in-flight work, blocking-pool threads included, before
//! the interpreter finalises, so no runtime thread attaches to a finalising interpreter (the
//! hazard of PyO3/pyo3-async-runtimes#40); `tests/test_clean_exit.py` checks 50 exits with
//! blocking and asyncio calls in flight.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use tokio::runtime::{Handle, Runtime};
use twh::etag::ETag;
use twh::{
    EventQuery, InvoiceQuery, ItemQuery, LocationQuery, MovementQuery, ReconciliationQuery, StockLevelQuery,
    WebhookDeliveryQuery, WebhookEndpointQuery, types,
};

/// Largest time `shutdown()` waits for in-flight work, in milliseconds.
const SHUTDOWN_TIMEOUT_MS: u64 = 2_000;

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);
/// The runtime's handle, kept after shutdown: spawning on it then cancels the task at once.
static HANDLE: OnceLock<Handle> = OnceLock::new();
static SHUT_DOWN: Mutex<bool> = Mutex::new(false);

/// The runtime's handle, starting it on first use.
fn handle() -> PyResult<Handle> {
    if *SHUT_DOWN.lock().unwrap_or_else(|e| e.into_inner()) {
        return Err(PyRuntimeError::new_err("the twh runtime has been shut down (interpreter exit)"));
    }
    let mut slot = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_none() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("twh-tokio")
            .enable_all()
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("could not start the twh runtime: {e}")))?;
        let _ = HANDLE.set(rt.handle().clone());
        *slot = Some(rt);
    }
    Ok(slot.as_ref().map(|rt| rt.handle().clone()).expect("set above"))
}

/// Runs `fut` as a task of the runtime and waits for it with the GIL released. Only runtime
/// threads poll it, so a call still waiting when the runtime shuts down (a daemon thread at
/// interpreter exit) gets an error instead of polling timers of a dead runtime.
fn block_on<T: Send + 'static, F: Future<Output = T> + Send + 'static>(py: Python<'_>, fut: F) -> PyResult<T> {
    let handle = handle()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    py.detach(move || rx.blocking_recv())
        .map_err(|_| PyRuntimeError::new_err("the twh runtime shut down before the call finished (interpreter exit)"))
}

/// Runs a borrowing future on the calling thread (the runtime drives its I/O), GIL released.
fn block_on_here<T: Send, F: Future<Output = T> + Send>(py: Python<'_>, fut: F) -> PyResult<T> {
    let handle = handle()?;
    Ok(py.detach(move || handle.block_on(fut)))
}

/// The asyncio bridge (pyo3-async-runtimes' generic API) on this module's runtime, so that
/// `shutdown()` stops the very runtime the awaitables run on.
///
/// A call's future runs on the runtime; only when it is done does pyo3-async-runtimes attach
/// to Python (on a blocking-pool thread) to resolve the asyncio future through
/// `loop.call_soon_threadsafe`. The futures produce plain Rust values (no Python objects), and
/// an SDK error travels as JSON (`(false, details)`) to be raised as its exception class by
/// the Python package on the event loop's thread.
struct TwhRuntime;

tokio::task_local! {
    static TASK_LOCALS: std::cell::OnceCell<pyo3_async_runtimes::TaskLocals>;
}

impl pyo3_async_runtimes::generic::Runtime for TwhRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle = tokio::task::JoinHandle<()>;

    fn spawn<F: Future<Output = ()> + Send + 'static>(fut: F) -> Self::JoinHandle {
        HANDLE.get().expect("call_async starts the runtime first").spawn(fut)
    }

    fn spawn_blocking<F: FnOnce() + Send + 'static>(f: F) -> Self::JoinHandle {
        HANDLE.get().expect("call_async starts the runtime first").spawn_blocking(f)
    }
}

impl pyo3_async_runtimes::generic::ContextExt for TwhRuntime {
    fn scope<F, T>(locals: pyo3_async_runtimes::TaskLocals, fut: F) -> Pin<Box<dyn Future<Output = T> + Send>>
    where
        F: Future<Output = T> + Send + 'static,
    {
        let cell = std::cell::OnceCell::new();
        let _ = cell.set(locals);
        Box::pin(TASK_LOCALS.scope(cell, fut))
    }

    fn get_task_locals() -> Option<pyo3_async_runtimes::TaskLocals> {
        TASK_LOCALS.try_with(|c| c.get().cloned()).unwrap_or_default()
    }
}

/// Stops the runtime, letting in-flight work finish for a bounded time. Idempotent.
#[pyfunction]
fn shutdown(py: Python<'_>) {
    *SHUT_DOWN.lock().unwrap_or_else(|e| e.into_inner()) = true;
    let rt = RUNTIME.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(rt) = rt {
        py.detach(move || rt.shutdown_timeout(Duration::from_millis(SHUTDOWN_TIMEOUT_MS)));
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Maps an error of the SDK to the exception class of its kind (defined in `twh._errors`),
/// keeping status, code, message, request id, field errors, retry-after and attempts.
trait IntoPyErr {
    fn into_py_err(self) -> PyErr;
}

/// The exception class (in `twh._errors`) of an SDK error, and its details as JSON: status,
/// code, message, request id, field errors, retry-after, attempts, current ETag.
fn error_details(e: &twh::Error) -> (&'static str, Value) {
    use twh::Error as E;
    let class = match e {
        E::Authentication(_) => "AuthenticationError",
        E::Permission(_) => "PermissionDeniedError",
        E::NotFound(_) => "NotFoundError",
        E::Conflict(_) => "ConflictError",
        E::IdempotencyKeyReused(_) => "IdempotencyKeyReusedError",
        E::Validation(_) => "ValidationError",
        E::PreconditionFailed(_) => "PreconditionFailedError",
        E::PreconditionRequired(_) => "PreconditionRequiredError",
        E::RateLimited(_) => "RateLimitedError",
        E::QuotaExceeded(_) => "QuotaExceededError",
        E::Server(_) => "ServerError",
        E::Api(_) => "APIStatusError",
        E::Connection { .. } => "APIConnectionError",
        E::Timeout { .. } => "APITimeoutError",
        E::UnexpectedResponse { .. } => "UnexpectedResponseError",
        E::InvalidRequest(_) => "InvalidRequestError",
        E::Configuration(_) => "ConfigurationError",
        E::WebhookVerification(_) => "WebhookVerificationError",
        _ => "TWHError",
    };
    let api = e.api_error();
    let details = json!({
        "class": class,
        "message": e.to_string(),
        "status": e.status(),
        "code": e.code(),
        "request_id": e.request_id(),
        "errors": e.errors(),
        "retry_after": e.retry_after().map(|d| d.as_secs_f64()),
        "attempts": e.attempts(),
        "current_etag": api.and_then(|a| a.current_etag.as_ref()).map(|e| e.as_str().to_owned()),
    });
    (class, details)
}

impl IntoPyErr for twh::Error {
    fn into_py_err(self) -> PyErr {
        let (class, details) = error_details(&self);
        Python::attach(|py| {
            let made = (|| -> PyResult<PyErr> {
                let errors = py.import("twh._errors")?;
                let cls = errors.getattr(class)?;
                let exc = cls.call_method1("_from_native", (details.to_string(),))?;
                Ok(PyErr::from_value(exc))
            })();
            made.unwrap_or_else(|e| e)
        })
    }
}

trait ResultExt<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> ResultExt<T> for twh::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(IntoPyErr::into_py_err)
    }
}

/// A failure made where the GIL is released: turned into a Python exception only once the
/// caller holds the GIL again, so no exception is built on a thread that is not attached.
enum Fail {
    Sdk(twh::Error),
    Py(PyErr),
}

impl From<twh::Error> for Fail {
    fn from(e: twh::Error) -> Fail {
        Fail::Sdk(e)
    }
}

impl From<PyErr> for Fail {
    fn from(e: PyErr) -> Fail {
        Fail::Py(e)
    }
}

impl IntoPyErr for Fail {
    fn into_py_err(self) -> PyErr {
        match self {
            Fail::Sdk(e) => e.into_py_err(),
            Fail::Py(e) => e,
        }
    }
}

type R<T> = Result<T, Fail>;

fn invalid(message: impl std::fmt::Display) -> Fail {
    Fail::Sdk(twh::Error::InvalidRequest(message.to_string()))
}

fn invalid_py(message: impl std::fmt::Display) -> PyErr {
    invalid(message).into_py_err()
}

// ---------------------------------------------------------------------------------------------
// JSON across the boundary

fn parse_args(args: &str) -> R<Map<String, Value>> {
    match serde_json::from_str(args) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("arguments must be a JSON object")),
        Err(e) => Err(invalid(format!("arguments are not JSON: {e}"))),
    }
}

/// The argument `name`, absent or null as `None`.
fn opt<T: DeserializeOwned>(args: &Map<String, Value>, name: &str) -> R<Option<T>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| invalid(format!("{name}: {e}"))),
    }
}

fn req<T: DeserializeOwned>(args: &Map<String, Value>, name: &str) -> R<T> {
    opt(args, name)?.ok_or_else(|| invalid(format!("{name} is required")))
}

/// The argument `name` (an object) as a request body type.
fn body<T: DeserializeOwned>(args: &Map<String, Value>, name: &str) -> R<T> {
    let v = args.get(name).cloned().unwrap_or_else(|| Value::Object(Map::new()));
    serde_json::from_value(v).map_err(|e| invalid(format!("{name}: {e}")))
}

fn etag(args: &Map<String, Value>, name: &str) -> R<ETag> {
    let s: String = req(args, name)?;
    ETag::new(s).ok_or_else(|| invalid(format!("{name} is not an ETag")))
}

fn to_json<T: serde::Serialize>(value: &T) -> R<Value> {
    serde_json::to_value(value)
        .map_err(|e| Fail::Py(PyRuntimeError::new_err(format!("could not encode an answer: {e}"))))
}

fn versioned<T: serde::Serialize>(v: twh::Versioned<T>) -> R<Value> {
    Ok(json!({ "value": to_json(&v.value)?, "etag": v.etag.as_str() }))
}

/// A conditional read: `null` when the caller's copy is current (304).
fn maybe_versioned<T: serde::Serialize>(v: Option<twh::Versioned<T>>) -> R<Value> {
    v.map_or(Ok(Value::Null), versioned)
}

fn page<T: serde::Serialize>(p: twh::Page<T>) -> R<Value> {
    Ok(json!({ "data": to_json(&p.data)?, "next_cursor": p.next_cursor }))
}

fn key(args: &Map<String, Value>) -> R<Option<String>> {
    opt(args, "idempotency_key")
}

macro_rules! post {
    ($post:expr, $key:expr) => {{
        let post = $post;
        match $key {
            Some(k) => post.idempotency_key(k).await,
            None => post.await,
        }
    }};
}

/// Runs one SDK operation named `op` with JSON arguments; answers JSON.
async fn dispatch(c: twh::Client, op: String, a: Map<String, Value>) -> R<Value> {
    let k = key(&a)?;
    match op.as_str() {
        // Sandboxes and keys
        "get_sandbox" => to_json(&c.get_sandbox().await?),
        "reset_sandbox" => to_json(&post!(c.reset_sandbox(), k)?),
        "delete_sandbox" => {
            c.delete_sandbox().await?;
            Ok(Value::Null)
        }
        "roll_api_key" => to_json(&post!(c.roll_api_key(), k)?),
        // Items
        "create_item" => versioned(post!(c.create_item(body::<types::CreateItem>(&a, "body")?), k)?),
        "get_item" => versioned(c.get_item(&req::<String>(&a, "id")?).await?),
        "get_item_if_changed" => {
            maybe_versioned(c.get_item_if_changed(&req::<String>(&a, "id")?, &etag(&a, "etag")?).await?)
        }
        "update_item" => {
            let patch = body::<types::UpdateItem>(&a, "body")?;
            versioned(c.update_item(&req::<String>(&a, "id")?, &etag(&a, "etag")?, patch).await?)
        }
        "archive_item" => versioned(c.archive_item(&req::<String>(&a, "id")?, &etag(&a, "etag")?).await?),
        "list_items" => {
            let q = ItemQuery {
                sku: opt(&a, "sku")?,
                q: opt(&a, "q")?,
                status: opt(&a, "status")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_items(&q).await?)
        }
        // Locations
        "create_location" => versioned(post!(c.create_location(body::<types::CreateLocation>(&a, "body")?), k)?),
        "get_location" => versioned(c.get_location(&req::<String>(&a, "id")?).await?),
        "get_location_if_changed" => {
            maybe_versioned(c.get_location_if_changed(&req::<String>(&a, "id")?, &etag(&a, "etag")?).await?)
        }
        "update_location" => {
            let patch = body::<types::UpdateLocation>(&a, "body")?;
            versioned(c.update_location(&req::<String>(&a, "id")?, &etag(&a, "etag")?, patch).await?)
        }
        "archive_location" => versioned(c.archive_location(&req::<String>(&a, "id")?, &etag(&a, "etag")?).await?),
        "list_locations" => {
            let q = LocationQuery {
                code: opt(&a, "code")?,
                q: opt(&a, "q")?,
                status: opt(&a, "status")?,
                kind: opt(&a, "kind")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_locations(&q).await?)
        }
        // Movements
        "create_movement" => {
            let m = body::<types::CreateMovement>(&a, "body")?;
            let if_match: Option<String> = opt(&a, "if_match")?;
            let v = match if_match {
                Some(e) => {
                    let e = ETag::new(e).ok_or_else(|| invalid("if_match is not an ETag"))?;
                    post!(c.create_movement_if_match(m, &e), k)
                }
                None => post!(c.create_movement(m), k),
            };
            versioned(v?)
        }
        "create_movement_batch" => {
            let ms: Vec<types::CreateMovement> = req(&a, "movements")?;
            to_json(&post!(c.create_movement_batch(ms), k)?)
        }
        "reverse_movement" => {
            let id: String = req(&a, "id")?;
            let r = body::<types::ReverseMovement>(&a, "body")?;
            versioned(post!(c.reverse_movement(&id, r), k)?)
        }
        "get_movement" => versioned(c.get_movement(&req::<String>(&a, "id")?).await?),
        "list_movements" => {
            let q = MovementQuery {
                item_id: opt(&a, "item_id")?,
                location_id: opt(&a, "location_id")?,
                type_: opt(&a, "type")?,
                after_sequence: opt(&a, "after_sequence")?,
                created_after: opt(&a, "created_after")?,
                created_before: opt(&a, "created_before")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_movements(&q).await?)
        }
        // Stock levels
        "get_stock_level" => {
            let (item, loc): (String, String) = (req(&a, "item_id")?, req(&a, "location_id")?);
            match opt::<chrono::DateTime<chrono::Utc>>(&a, "as_of")? {
                Some(t) => versioned(c.get_stock_level_as_of(&item, &loc, t).await?),
                None => versioned(c.get_stock_level(&item, &loc).await?),
            }
        }
        "get_stock_level_if_changed" => {
            let (item, loc): (String, String) = (req(&a, "item_id")?, req(&a, "location_id")?);
            maybe_versioned(c.get_stock_level_if_changed(&item, &loc, &etag(&a, "etag")?).await?)
        }
        "list_stock_levels" => {
            let q = StockLevelQuery {
                item_id: opt(&a, "item_id")?,
                location_id: opt(&a, "location_id")?,
                below_threshold: opt(&a, "below_threshold")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_stock_levels(&q).await?)
        }
        // Events
        "get_event" => versioned(c.get_event(&req::<String>(&a, "id")?).await?),
        "list_events" => {
            let q = EventQuery {
                type_: opt(&a, "type")?,
                after: opt(&a, "after")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_events(&q).await?)
        }
        // Webhook endpoints
        "create_webhook_endpoint" => {
            versioned(post!(c.create_webhook_endpoint(body::<types::CreateWebhookEndpoint>(&a, "body")?), k)?)
        }
        "get_webhook_endpoint" => versioned(c.get_webhook_endpoint(&req::<String>(&a, "id")?).await?),
        "update_webhook_endpoint" => {
            let patch = body::<types::UpdateWebhookEndpoint>(&a, "body")?;
            versioned(c.update_webhook_endpoint(&req::<String>(&a, "id")?, &etag(&a, "etag")?, patch).await?)
        }
        "delete_webhook_endpoint" => {
            c.delete_webhook_endpoint(&req::<String>(&a, "id")?, &etag(&a, "etag")?).await?;
            Ok(Value::Null)
        }
        "rotate_webhook_secret" => {
            let id: String = req(&a, "id")?;
            versioned(post!(c.rotate_webhook_secret(&id), k)?)
        }
        "test_webhook_endpoint" => {
            let id: String = req(&a, "id")?;
            to_json(&post!(c.test_webhook_endpoint(&id), k)?)
        }
        "replay_webhook_endpoint" => {
            let id: String = req(&a, "id")?;
            let r = body::<types::ReplayDeliveries>(&a, "body")?;
            to_json(&post!(c.replay_webhook_endpoint(&id, r), k)?)
        }
        "list_webhook_endpoints" => {
            let q = WebhookEndpointQuery { limit: opt(&a, "limit")?, cursor: opt(&a, "cursor")? };
            page(c.list_webhook_endpoints(&q).await?)
        }
        // Webhook deliveries
        "get_webhook_delivery" => to_json(&c.get_webhook_delivery(&req::<String>(&a, "id")?).await?),
        "replay_webhook_delivery" => {
            let id: String = req(&a, "id")?;
            to_json(&post!(c.replay_webhook_delivery(&id), k)?)
        }
        "list_webhook_deliveries" => {
            let q = WebhookDeliveryQuery {
                endpoint_id: opt(&a, "endpoint_id")?,
                event_id: opt(&a, "event_id")?,
                status: opt(&a, "status")?,
                limit: opt(&a, "limit")?,
                cursor: opt(&a, "cursor")?,
            };
            page(c.list_webhook_deliveries(&q).await?)
        }
        // Plans, subscription, usage, invoices
        "list_plans" => to_json(&c.list_plans().await?),
        "get_subscription" => to_json(&c.get_subscription().await?),
        "update_subscription" => to_json(&post!(c.update_subscription(req::<types::Plan>(&a, "plan")?), k)?),
        "get_usage" => to_json(&c.get_usage(opt::<String>(&a, "period")?.as_deref()).await?),
        "export_usage" => to_json(&c.export_usage(opt::<String>(&a, "period")?.as_deref()).await?),
        "export_usage_csv" => Ok(Value::String(c.export_usage_csv(opt::<String>(&a, "period")?.as_deref()).await?)),
        "list_invoices" => {
            let q = InvoiceQuery { limit: opt(&a, "limit")?, cursor: opt(&a, "cursor")? };
            page(c.list_invoices(&q).await?)
        }
        "get_invoice" => to_json(&c.get_invoice(&req::<String>(&a, "id")?).await?),
        "get_invoice_csv" => Ok(Value::String(c.get_invoice_csv(&req::<String>(&a, "id")?).await?)),
        // Reconciliations and jobs
        "create_reconciliation" => {
            to_json(&post!(c.create_reconciliation(body::<types::CreateReconciliation>(&a, "body")?), k)?)
        }
        "get_reconciliation" => to_json(&c.get_reconciliation(&req::<String>(&a, "id")?).await?),
        "get_reconciliation_csv" => Ok(Value::String(c.get_reconciliation_csv(&req::<String>(&a, "id")?).await?)),
        "list_reconciliations" => {
            let q = ReconciliationQuery { limit: opt(&a, "limit")?, cursor: opt(&a, "cursor")? };
            page(c.list_reconciliations(&q).await?)
        }
        "create_job" => to_json(&post!(c.create_job(body::<types::CreateJob>(&a, "body")?), k)?),
        "get_job" => to_json(&c.get_job(&req::<String>(&a, "id")?).await?),
        other => Err(Fail::Py(PyRuntimeError::new_err(format!("unknown operation {other:?}")))),
    }
}

// ---------------------------------------------------------------------------------------------
// Classes

/// A client builder with the Python package's User-Agent product and the given settings.
fn builder(
    api_key: Option<String>,
    base_url: Option<String>,
    timeout: Option<f64>,
    max_retries: Option<u32>,
    user_agent_suffix: Option<String>,
) -> PyResult<twh::ClientBuilder> {
    let mut b = twh::Client::builder().product(concat!("twh-python/", env!("CARGO_PKG_VERSION")));
    if let Some(v) = api_key {
        b = b.api_key(v);
    }
    if let Some(v) = base_url {
        b = b.base_url(v);
    }
    if let Some(v) = timeout {
        let d = Duration::try_from_secs_f64(v).map_err(|e| invalid_py(format!("timeout: {e}")))?;
        b = b.timeout(d);
    }
    if let Some(v) = max_retries {
        b = b.max_retries(v);
    }
    if let Some(v) = user_agent_suffix {
        b = b.user_agent_suffix(v);
    }
    Ok(b)
}

/// A TWH API client (wraps `twh::Client`).
#[pyclass(module = "twh._native", frozen)]
struct Client {
    inner: twh::Client,
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (api_key=None, base_url=None, timeout=None, max_retries=None, user_agent_suffix=None))]
    fn new(
        api_key: Option<String>,
        base_url: Option<String>,
        timeout: Option<f64>,
        max_retries: Option<u32>,
        user_agent_suffix: Option<String>,
    ) -> PyResult<Client> {
        let b = builder(api_key, base_url, timeout, max_retries, user_agent_suffix)?;
        Ok(Client { inner: b.build().py()? })
    }

    /// Creates a sandbox on the server at `base_url` (`api_key` is the admin token, where one
    /// is required); answers a client with its secret key and its details JSON.
    #[staticmethod]
    #[pyo3(signature = (args, api_key=None, base_url=None, timeout=None, max_retries=None, user_agent_suffix=None))]
    fn create_sandbox(
        py: Python<'_>,
        args: &str,
        api_key: Option<String>,
        base_url: Option<String>,
        timeout: Option<f64>,
        max_retries: Option<u32>,
        user_agent_suffix: Option<String>,
    ) -> PyResult<(Client, String)> {
        let request: types::CreateSandbox =
            serde_json::from_str(args).map_err(|e| invalid_py(format!("create_sandbox: {e}")))?;
        let b = builder(api_key, base_url, timeout, max_retries, user_agent_suffix)?;
        let (client, created) = block_on(py, b.create_sandbox(request))?.py()?;
        let created = to_json(&created).map_err(IntoPyErr::into_py_err)?;
        Ok((Client { inner: client }, created.to_string()))
    }

    /// `create_sandbox` as an awaitable of `(client, details JSON)` or `(None, error JSON)`.
    #[staticmethod]
    #[pyo3(signature = (args, api_key=None, base_url=None, timeout=None, max_retries=None, user_agent_suffix=None))]
    fn create_sandbox_async<'py>(
        py: Python<'py>,
        args: &str,
        api_key: Option<String>,
        base_url: Option<String>,
        timeout: Option<f64>,
        max_retries: Option<u32>,
        user_agent_suffix: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request: types::CreateSandbox =
            serde_json::from_str(args).map_err(|e| invalid_py(format!("create_sandbox: {e}")))?;
        let b = builder(api_key, base_url, timeout, max_retries, user_agent_suffix)?;
        handle()?;
        pyo3_async_runtimes::generic::future_into_py::<TwhRuntime, _, (Option<Client>, String)>(py, async move {
            match b.create_sandbox(request).await {
                Ok((client, created)) => {
                    let created = serde_json::to_string(&created)
                        .map_err(|e| PyRuntimeError::new_err(format!("could not encode an answer: {e}")))?;
                    Ok((Some(Client { inner: client }), created))
                }
                Err(e) => Ok((None, error_details(&e).1.to_string())),
            }
        })
    }

    #[getter]
    fn base_url(&self) -> String {
        self.inner.base_url().to_owned()
    }

    fn with_api_key(&self, api_key: String) -> PyResult<Client> {
        Ok(Client { inner: self.inner.with_api_key(api_key).py()? })
    }

    /// Runs operation `op` with JSON arguments `args`, blocking (GIL released); answers JSON.
    fn call(&self, py: Python<'_>, op: String, args: &str) -> PyResult<String> {
        let a = parse_args(args).map_err(IntoPyErr::into_py_err)?;
        let c = self.inner.clone();
        let v = block_on(py, dispatch(c, op, a))?.map_err(IntoPyErr::into_py_err)?;
        Ok(v.to_string())
    }

    /// Runs operation `op` with JSON arguments `args` on the runtime; answers an awaitable of
    /// `(True, answer JSON)` or `(False, error details JSON)`.
    fn call_async<'py>(&self, py: Python<'py>, op: String, args: &str) -> PyResult<Bound<'py, PyAny>> {
        let a = parse_args(args).map_err(IntoPyErr::into_py_err)?;
        handle()?;
        let c = self.inner.clone();
        pyo3_async_runtimes::generic::future_into_py::<TwhRuntime, _, (bool, String)>(py, async move {
            match dispatch(c, op, a).await {
                Ok(v) => Ok((true, v.to_string())),
                Err(Fail::Sdk(e)) => Ok((false, error_details(&e).1.to_string())),
                Err(Fail::Py(e)) => Err(e),
            }
        })
    }

    fn __repr__(&self) -> String {
        format!("Client(base_url={:?})", self.inner.base_url())
    }
}

/// The emulator in-process (wraps `twh::emulator::Emulator`).
#[pyclass(module = "twh._native", frozen)]
struct Emulator {
    inner: Mutex<Option<twh::emulator::Emulator>>,
    base_url: String,
}

impl Emulator {
    fn with<T>(&self, f: impl FnOnce(&twh::emulator::Emulator) -> PyResult<T>) -> PyResult<T> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(emu) => f(emu),
            None => Err(twh::Error::Configuration("the emulator is stopped".into()).into_py_err()),
        }
    }
}

#[pymethods]
impl Emulator {
    #[new]
    #[pyo3(signature = (
        port=None, rate_limit_per_second=None, rate_limit_burst=None, data_dir=None,
        webhook_retry_schedule_seconds=None, webhook_timeout_ms=None, key_grace_seconds=None,
        idempotency_ttl_seconds=None, free_quotas=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        port: Option<u16>,
        rate_limit_per_second: Option<u64>,
        rate_limit_burst: Option<u64>,
        data_dir: Option<std::path::PathBuf>,
        webhook_retry_schedule_seconds: Option<Vec<u64>>,
        webhook_timeout_ms: Option<u64>,
        key_grace_seconds: Option<u32>,
        idempotency_ttl_seconds: Option<u32>,
        free_quotas: Option<HashMap<String, u64>>,
    ) -> PyResult<Emulator> {
        let mut config = twh::emulator::Config::default();
        config.data_dir = data_dir;
        if let Some(p) = port {
            config.port = p;
        }
        if let Some(n) = rate_limit_per_second {
            config.http.rate_limit_per_second = n;
        }
        if let Some(n) = rate_limit_burst {
            config.http.rate_limit_burst = n;
        }
        if let Some(schedule) = webhook_retry_schedule_seconds {
            config.webhooks.retry_schedule_seconds = schedule;
        }
        if let Some(ms) = webhook_timeout_ms {
            if ms == 0 {
                return Err(invalid_py("webhook_timeout_ms must be more than 0"));
            }
            config.webhooks.timeout = Duration::from_millis(ms);
        }
        if let Some(s) = key_grace_seconds {
            config.settings.key_grace_seconds = i64::from(s);
        }
        if let Some(s) = idempotency_ttl_seconds {
            config.settings.idempotency_ttl_seconds = i64::from(s);
        }
        for (meter, limit) in free_quotas.unwrap_or_default() {
            let quotas = &mut config.settings.plans.free.quotas;
            match meter.as_str() {
                "api_requests" => quotas.api_requests = limit,
                "ledger_lines" => quotas.ledger_lines = limit,
                "webhook_attempts" => quotas.webhook_attempts = limit,
                other => return Err(invalid_py(format!("free_quotas: unknown meter {other:?}"))),
            }
        }
        let emu = block_on(py, twh::emulator::Emulator::start(config))?.py()?;
        let base_url = emu.base_url();
        Ok(Emulator { inner: Mutex::new(Some(emu)), base_url })
    }

    #[getter]
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Creates a sandbox; answers `(client, details JSON)`.
    #[pyo3(signature = (args="{}"))]
    fn create_sandbox(&self, args: &str) -> PyResult<(Client, String)> {
        let request: types::CreateSandbox =
            serde_json::from_str(args).map_err(|e| invalid_py(format!("create_sandbox: {e}")))?;
        let (client, created) = self.with(|emu| emu.create_sandbox_with(&request).py())?;
        let created = to_json(&created).map_err(IntoPyErr::into_py_err)?;
        Ok((Client { inner: client }, created.to_string()))
    }

    /// Moves the emulator clock forward by `seconds`; answers the new time (RFC 3339).
    fn advance_clock(&self, py: Python<'_>, seconds: f64) -> PyResult<String> {
        let by = Duration::try_from_secs_f64(seconds).map_err(|e| invalid_py(format!("advance_clock: {e}")))?;
        // The handle is not `Clone`: hold the lock only to reach the inner emulator's state.
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let emu =
            guard.as_ref().ok_or_else(|| twh::Error::Configuration("the emulator is stopped".into()).into_py_err())?;
        let now = block_on_here(py, emu.advance_clock(by))?;
        Ok(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }

    /// Arms a fault (FaultSpec JSON); answers the Fault JSON.
    fn inject_fault(&self, spec: &str) -> PyResult<String> {
        let spec: types::FaultSpec =
            serde_json::from_str(spec).map_err(|e| invalid_py(format!("inject_fault: {e}")))?;
        let fault = self.with(|emu| emu.inject_fault(&spec).py())?;
        Ok(to_json(&fault).map_err(IntoPyErr::into_py_err)?.to_string())
    }

    fn clear_faults(&self) -> PyResult<()> {
        self.with(|emu| {
            emu.clear_faults();
            Ok(())
        })
    }

    /// Stops the emulator (idempotent): stops accepting and lets in-flight requests finish.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let emu = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(emu) = emu {
            // After interpreter-exit shutdown the runtime is gone, and so is the server.
            if let Ok(h) = handle() {
                py.detach(move || h.block_on(emu.shutdown()));
            }
        }
        Ok(())
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

/// Verifies a webhook delivery; answers the event JSON.
#[pyfunction]
#[pyo3(signature = (payload, headers, secret, tolerance_seconds=None))]
fn verify_webhook(
    payload: &[u8],
    headers: HashMap<String, String>,
    secret: &str,
    tolerance_seconds: Option<f64>,
) -> PyResult<String> {
    let secret = twh::webhooks::Secret::parse(secret).map_err(|e| twh::Error::from(e).into_py_err())?;
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        let name =
            http::HeaderName::try_from(k.to_ascii_lowercase()).map_err(|e| invalid_py(format!("header name: {e}")))?;
        let value = http::HeaderValue::try_from(v).map_err(|e| invalid_py(format!("header value: {e}")))?;
        map.insert(name, value);
    }
    let tolerance = match tolerance_seconds {
        Some(s) => Duration::try_from_secs_f64(s).map_err(|e| invalid_py(format!("tolerance: {e}")))?,
        None => twh::webhooks::DEFAULT_TOLERANCE,
    };
    let event = twh::webhooks::verify(payload, &map, &secret, tolerance).py()?;
    Ok(to_json(&event).map_err(IntoPyErr::into_py_err)?.to_string())
}

/// Signs a payload the way the emulator signs deliveries (one `v1,` signature per secret);
/// answers the three headers.
#[pyfunction]
fn sign_webhook(
    secrets: Vec<String>,
    msg_id: &str,
    timestamp: i64,
    payload: &[u8],
) -> PyResult<HashMap<&'static str, String>> {
    if secrets.is_empty() {
        return Err(invalid_py("sign: at least one secret"));
    }
    let parsed = secrets
        .iter()
        .map(|s| twh::webhooks::Secret::parse(s).map_err(|e| twh::Error::from(e).into_py_err()))
        .collect::<PyResult<Vec<_>>>()?;
    let refs: Vec<&twh::webhooks::Secret> = parsed.iter().collect();
    Ok(twh::webhooks::sign_with(&refs, msg_id, timestamp, payload).to_pairs().into_iter().collect())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()?;
    m.add_class::<Emulator>()?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(verify_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(sign_webhook, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
