//! `twh._native`: the private native module under the `twh` Python package.
//!
//! The Python package (`python/twh`) is the public face; this module is deliberately small and
//! knows no operation. Every operation goes through the Rust SDK's shared dispatch
//! (`twh::dispatch::call`: retries, idempotency keys, request ids, typed errors): the Python
//! package's generated methods name the operation and pass its arguments as JSON and its body as
//! the JSON bytes to send; the answer comes back as the server sent it, `(status, etag, body)`,
//! for one `json.loads` in Python (so fields and enum values newer than this package are kept).
//! An error crosses as `twh::dispatch::error_details` JSON, which `twh._errors._from_details`
//! turns into the exception class of its kind. Each class wraps the Rust object
//! (`Client { inner: twh::Client }`, `Emulator { inner }`).
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

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use tokio::runtime::{Handle, Runtime};
use twh::types;

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

/// How often a blocking call looks for a signal (Ctrl-C) while it waits, in milliseconds.
const SIGNAL_CHECK_INTERVAL_MS: u64 = 50;

/// Runs `fut` as a task of the runtime and waits for it with the GIL released. Only runtime
/// threads poll it, so a call still waiting when the runtime shuts down (a daemon thread at
/// interpreter exit) gets an error instead of polling timers of a dead runtime.
///
/// The wait wakes every [`SIGNAL_CHECK_INTERVAL_MS`] to run Python's signal handlers: Ctrl-C
/// (SIGINT) raises `KeyboardInterrupt` in the caller at once and aborts the task, so its
/// request is dropped and no retry follows (SDK.md "Per-call control").
fn block_on<T: Send + 'static, F: Future<Output = T> + Send + 'static>(py: Python<'_>, fut: F) -> PyResult<T> {
    let handle = handle()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let interval = Duration::from_millis(SIGNAL_CHECK_INTERVAL_MS);
    let mut rx = rx;
    loop {
        // The receiver is `Send` but not `Sync`: it goes into the GIL-free closure and back.
        let (received, back) = py.detach(move || (rx.recv_timeout(interval), rx));
        rx = back;
        match received {
            Ok(value) => return Ok(value),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "the twh runtime shut down before the call finished (interpreter exit)",
                ));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = py.check_signals() {
                    task.abort();
                    return Err(e);
                }
            }
        }
    }
}

/// The asyncio bridge (pyo3-async-runtimes' generic API) on this module's runtime, so that
/// `shutdown()` stops the very runtime the awaitables run on.
///
/// A call's future runs on the runtime; only when it is done does pyo3-async-runtimes attach
/// to Python (on a blocking-pool thread) to resolve the asyncio future through
/// `loop.call_soon_threadsafe`. The futures produce plain Rust values (no Python objects), and
/// an SDK error travels as JSON (status 0, see [`Client::call_async`]) to be raised as its
/// exception class by the Python package on the event loop's thread.
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

/// The exception of an SDK error: `twh._errors._from_details` picks the class of its kind
/// (status, code, message, request id, field errors, retry-after, attempts, current ETag kept).
fn py_err(e: &twh::Error) -> PyErr {
    let details = twh::dispatch::error_details(e).to_string();
    Python::attach(|py| match py.import("twh._errors").and_then(|m| m.call_method1("_from_details", (details,))) {
        Ok(exception) => PyErr::from_value(exception),
        Err(e) => e,
    })
}

trait ResultExt<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> ResultExt<T> for twh::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(|e| py_err(&e))
    }
}

fn invalid(message: impl std::fmt::Display) -> PyErr {
    py_err(&twh::Error::InvalidRequest(message.to_string()))
}

/// JSON text from Python as a value of the SDK.
fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> PyResult<T> {
    serde_json::from_str(text).map_err(|e| invalid(format!("{what}: {e}")))
}

/// A value of the SDK as JSON text for Python.
fn to_json<T: serde::Serialize>(value: &T) -> PyResult<String> {
    serde_json::to_string(value).map_err(|e| PyRuntimeError::new_err(format!("could not encode an answer: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Client

/// A successful call as Python receives it: status, `ETag` (if any), body bytes, and the headers
/// as `name: value` lines (`twh::dispatch::headers_text`; parsed in Python only if asked for).
type Reply = (u16, Option<String>, Cow<'static, [u8]>, String);

/// Calls operation `op` through the shared dispatch.
async fn dispatch(client: twh::Client, op: String, args: String, body: Option<Vec<u8>>) -> twh::Result<Reply> {
    let args: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&args)
        .map_err(|e| twh::Error::InvalidRequest(format!("{op}: the arguments are not a JSON object: {e}")))?;
    let answer = twh::dispatch::call(&client, &op, &args, body.map(bytes::Bytes::from)).await?;
    let etag = answer.etag().map(str::to_owned);
    let headers = answer.headers_text();
    Ok((answer.status, etag, Cow::Owned(answer.body.into()), headers))
}

/// A client's settings as the Python package passes them (JSON; `null` or absent: the default,
/// read from the environment where SDK.md says so).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    api_key: Option<String>,
    base_url: Option<String>,
    /// Seconds per attempt.
    timeout: Option<f64>,
    max_retries: Option<u32>,
    user_agent_suffix: Option<String>,
}

impl Settings {
    /// A client builder with these settings and the Python package's User-Agent product.
    fn builder(text: &str) -> PyResult<twh::ClientBuilder> {
        let s: Settings = from_json(text, "client settings")?;
        let mut b = twh::Client::builder().product(concat!("twh-python/", env!("CARGO_PKG_VERSION")));
        b = match s.timeout.map(Duration::try_from_secs_f64) {
            Some(Ok(d)) => b.timeout(d),
            Some(Err(e)) => return Err(invalid(format!("timeout: {e}"))),
            None => b,
        };
        b = s.api_key.into_iter().fold(b, twh::ClientBuilder::api_key);
        b = s.base_url.into_iter().fold(b, twh::ClientBuilder::base_url);
        b = s.max_retries.into_iter().fold(b, twh::ClientBuilder::max_retries);
        Ok(s.user_agent_suffix.into_iter().fold(b, twh::ClientBuilder::user_agent_suffix))
    }
}

/// A TWH API client (wraps `twh::Client`).
#[pyclass(module = "twh._native", frozen)]
struct Client {
    inner: twh::Client,
}

#[pymethods]
impl Client {
    /// A client of `settings` (see [`Settings`]); a missing key or a malformed URL fails here.
    #[new]
    #[pyo3(signature = (settings="{}"))]
    fn new(settings: &str) -> PyResult<Client> {
        Ok(Client { inner: Settings::builder(settings)?.build().py()? })
    }

    /// Creates a sandbox (`args`: `CreateSandbox` JSON) on the server of `settings` (whose
    /// `api_key` is sent as the admin token, where one is required); answers a client with its
    /// secret key and the sandbox's details JSON.
    #[staticmethod]
    fn create_sandbox(py: Python<'_>, args: &str, settings: &str) -> PyResult<(Client, String)> {
        let request: types::CreateSandbox = from_json(args, "create_sandbox")?;
        let b = Settings::builder(settings)?;
        let (client, created) = block_on(py, b.create_sandbox(request))?.py()?;
        Ok((Client { inner: client }, to_json(&created)?))
    }

    /// `create_sandbox` as an awaitable of `(client, details JSON)` or `(None, error JSON)`.
    #[staticmethod]
    fn create_sandbox_async<'py>(py: Python<'py>, args: &str, settings: &str) -> PyResult<Bound<'py, PyAny>> {
        let request: types::CreateSandbox = from_json(args, "create_sandbox")?;
        let b = Settings::builder(settings)?;
        handle()?;
        pyo3_async_runtimes::generic::future_into_py::<TwhRuntime, _, (Option<Client>, String)>(py, async move {
            Ok(match b.create_sandbox(request).await {
                Ok((client, created)) => (Some(Client { inner: client }), to_json(&created)?),
                Err(e) => (None, twh::dispatch::error_details(&e).to_string()),
            })
        })
    }

    #[getter]
    fn base_url(&self) -> String {
        self.inner.base_url().to_owned()
    }

    fn with_api_key(&self, api_key: String) -> PyResult<Client> {
        Ok(Client { inner: self.inner.with_api_key(api_key).py()? })
    }

    /// A client sharing this one's connection pool with other settings (`options`: JSON
    /// `{timeout, max_retries, headers}`, each optional) and, if given, an `observer` called once
    /// before and once after each attempt with `(event, method, url, attempt, request_id,
    /// idempotency_key, status, elapsed_seconds)` (`event` is `"request"` or `"response"`).
    #[pyo3(signature = (options="{}", observer=None))]
    fn with_options(&self, options: &str, observer: Option<Py<PyAny>>) -> PyResult<Client> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Options {
            timeout: Option<f64>,
            max_retries: Option<u32>,
            #[serde(default)]
            headers: std::collections::BTreeMap<String, String>,
        }
        let o: Options = from_json(options, "with_options")?;
        let mut r = twh::RequestOptions::new();
        if let Some(t) = o.timeout {
            r = r.timeout(Duration::try_from_secs_f64(t).map_err(|e| invalid(format!("timeout: {e}")))?);
        }
        if let Some(n) = o.max_retries {
            r = r.max_retries(n);
        }
        for (name, value) in o.headers {
            r = r.header(name, value);
        }
        if let Some(observer) = observer {
            let observer = std::sync::Arc::new(observer);
            let notify = move |event: &'static str| {
                let observer = observer.clone();
                move |a: &twh::Attempt| {
                    Python::attach(|py| {
                        let args = (
                            event,
                            a.method.as_str(),
                            a.url.as_str(),
                            a.attempt,
                            a.request_id.as_deref(),
                            a.idempotency_key.as_deref(),
                            a.status,
                            a.elapsed.map(|d| d.as_secs_f64()),
                        );
                        // A hook that raises must not break the call: Python reports it as
                        // unraisable (to `sys.unraisablehook`).
                        if let Err(e) = observer.call1(py, args) {
                            e.write_unraisable(py, None);
                        }
                    });
                }
            };
            r = r.on_request(notify("request")).on_response(notify("response"));
        }
        Ok(Client { inner: self.inner.with_options(r).py()? })
    }

    /// Calls the SDK method `op` (`twh::dispatch`: `args` a JSON object of its parameters,
    /// `body` the JSON to send), blocking with the GIL released; answers `(status, etag, body)`.
    #[pyo3(signature = (op, args, body=None))]
    fn call(&self, py: Python<'_>, op: String, args: String, body: Option<&[u8]>) -> PyResult<Reply> {
        block_on(py, dispatch(self.inner.clone(), op, args, body.map(<[u8]>::to_vec)))?.py()
    }

    /// `call` on the runtime: an awaitable of `(status, etag, body)`, or of `(0, None, error
    /// details JSON)` (raised as its exception class by the Python package, on its loop).
    #[pyo3(signature = (op, args, body=None))]
    fn call_async<'py>(
        &self,
        py: Python<'py>,
        op: String,
        args: String,
        body: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyAny>> {
        handle()?;
        let (client, body) = (self.inner.clone(), body.map(<[u8]>::to_vec));
        pyo3_async_runtimes::generic::future_into_py::<TwhRuntime, _, Reply>(py, async move {
            Ok(dispatch(client, op, args, body).await.unwrap_or_else(|e| {
                (0, None, Cow::Owned(twh::dispatch::error_details(&e).to_string().into_bytes()), String::new())
            }))
        })
    }

    fn __repr__(&self) -> String {
        format!("Client(base_url={:?})", self.inner.base_url())
    }
}

// ---------------------------------------------------------------------------------------------
// Emulator

/// The emulator handle (wraps `twh::emulator::Emulator`): one started in this process, or one
/// that another process serves (`connect`). Every method talks HTTP to the emulator's control
/// plane through the Rust handle, blocking with the GIL released; values cross as JSON.
#[pyclass(module = "twh._native", frozen)]
struct Emulator {
    inner: Mutex<Option<Arc<twh::emulator::Emulator>>>,
    base_url: String,
    connected: bool,
}

/// Longest `stop()` waits for calls still in flight, in milliseconds.
const STOP_WAIT_MS: u64 = 5_000;

impl Emulator {
    /// The handle, for a call (a clone, so `stop()` can wait for calls in flight).
    fn handle(&self) -> PyResult<Arc<twh::emulator::Emulator>> {
        match self.inner.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(emu) => Ok(emu.clone()),
            None => Err(py_err(&twh::Error::Configuration("the emulator is stopped".into()))),
        }
    }

    /// Runs `f(handle)` on the runtime, blocking with the GIL released.
    fn run<T, F, Fut>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<twh::emulator::Emulator>) -> Fut,
        Fut: Future<Output = twh::Result<T>> + Send + 'static,
    {
        let emu = self.handle()?;
        block_on(py, f(emu))?.py()
    }

    fn wrap(emu: twh::emulator::Emulator) -> Emulator {
        let (base_url, connected) = (emu.base_url(), emu.is_connected());
        Emulator { inner: Mutex::new(Some(Arc::new(emu))), base_url, connected }
    }
}

fn seconds(value: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|e| invalid(format!("{what}: {e}")))
}

#[pymethods]
impl Emulator {
    /// Starts an emulator with `options`: `twh::emulator::Options` as JSON (snake_case).
    #[new]
    #[pyo3(signature = (options="{}"))]
    fn new(py: Python<'_>, options: &str) -> PyResult<Emulator> {
        let config = twh::emulator::Options::from_json(options).py()?.into_config().py()?;
        Ok(Emulator::wrap(block_on(py, twh::emulator::Emulator::start(config))?.py()?))
    }

    /// The handle of an emulator another process serves, at `base_url`, with its admin token.
    #[staticmethod]
    #[pyo3(signature = (base_url, admin_token=None))]
    fn connect(py: Python<'_>, base_url: String, admin_token: Option<String>) -> PyResult<Emulator> {
        let emu = block_on(py, async move { twh::emulator::Emulator::connect(base_url, admin_token.as_deref()).await })?;
        Ok(Emulator::wrap(emu.py()?))
    }

    #[getter]
    fn base_url(&self) -> String {
        self.base_url.clone()
    }

    #[getter]
    fn connected(&self) -> bool {
        self.connected
    }

    /// Creates a sandbox; answers `(client, details JSON)`.
    #[pyo3(signature = (args="{}"))]
    fn create_sandbox(&self, py: Python<'_>, args: &str) -> PyResult<(Client, String)> {
        let request: types::CreateSandbox = from_json(args, "create_sandbox")?;
        let (client, created) = self.run(py, |emu| async move { emu.create_sandbox_with(&request).await })?;
        Ok((Client { inner: client }, to_json(&created)?))
    }

    /// The emulator clock, or `sandbox`'s; answers the ClockState JSON.
    #[pyo3(signature = (sandbox=None))]
    fn clock(&self, py: Python<'_>, sandbox: Option<String>) -> PyResult<String> {
        to_json(&self.run(py, |emu| async move {
            match sandbox {
                Some(id) => emu.sandbox_clock(&id).await,
                None => emu.clock().await,
            }
        })?)
    }

    /// Moves the emulator clock, or only `sandbox`'s, forward by `seconds`; answers the new
    /// time (RFC 3339).
    #[pyo3(signature = (seconds, sandbox=None))]
    fn advance_clock(&self, py: Python<'_>, seconds: f64, sandbox: Option<String>) -> PyResult<String> {
        let by = self::seconds(seconds, "advance_clock")?;
        let now = self.run(py, |emu| async move {
            match sandbox {
                Some(id) => emu.advance_sandbox_clock(&id, by).await,
                None => emu.advance_clock(by).await,
            }
        })?;
        Ok(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }

    /// Arms a fault (FaultSpec JSON); answers the Fault JSON.
    fn inject_fault(&self, py: Python<'_>, spec: &str) -> PyResult<String> {
        let spec: types::FaultSpec = from_json(spec, "inject_fault")?;
        to_json(&self.run(py, |emu| async move { emu.inject_fault(&spec).await })?)
    }

    /// The armed faults as a JSON list.
    fn faults(&self, py: Python<'_>) -> PyResult<String> {
        to_json(&self.run(py, |emu| async move { emu.faults().await })?)
    }

    fn clear_faults(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |emu| async move { emu.clear_faults().await })
    }

    /// What sink `name` received, as a JSON list of SinkEntry.
    fn sink(&self, py: Python<'_>, name: String) -> PyResult<String> {
        to_json(&self.run(py, |emu| async move { emu.sink(&name).await })?)
    }

    fn clear_sink(&self, py: Python<'_>, name: String) -> PyResult<()> {
        self.run(py, |emu| async move { emu.clear_sink(&name).await })
    }

    /// A page of the request journal (`query`: the filters, `limit` and `cursor` as JSON);
    /// answers `{data, next_cursor}` JSON.
    #[pyo3(signature = (query="{}"))]
    fn requests(&self, py: Python<'_>, query: &str) -> PyResult<String> {
        let query: twh::emulator::RequestsQuery = from_json(query, "requests")?;
        let page = self.run(py, |emu| async move { emu.requests(&query).await })?;
        to_json(&serde_json::json!({ "data": page.data, "next_cursor": page.next_cursor }))
    }

    /// One journal entry (JSON).
    fn request(&self, py: Python<'_>, id: String) -> PyResult<String> {
        to_json(&self.run(py, |emu| async move { emu.request(&id).await })?)
    }

    fn clear_requests(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |emu| async move { emu.clear_requests().await })
    }

    /// Loads a fixtures document (JSON); answers `(client, sandbox JSON)` per sandbox.
    fn load_fixtures(&self, py: Python<'_>, document: &str) -> PyResult<Vec<(Client, String)>> {
        let document: serde_json::Value = from_json(document, "load_fixtures")?;
        let loaded = self.run(py, |emu| async move { emu.load_fixtures(&document).await })?;
        loaded.into_iter().map(|(client, s)| Ok((Client { inner: client }, to_json(&s)?))).collect()
    }

    /// Stops the emulator (idempotent): stops accepting and lets in-flight requests finish. A
    /// connected handle stops nothing; it is only closed.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let Some(mut emu) = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take() else { return Ok(()) };
        // After interpreter-exit shutdown the runtime is gone, and so is the server.
        let Ok(h) = handle() else { return Ok(()) };
        py.detach(move || {
            // Calls still in flight hold a clone: wait for them, bounded.
            let deadline = std::time::Instant::now() + Duration::from_millis(STOP_WAIT_MS);
            loop {
                match Arc::try_unwrap(emu) {
                    Ok(emu) => return h.block_on(emu.shutdown()),
                    Err(shared) if std::time::Instant::now() < deadline => {
                        emu = shared;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // Still in use: the server stops when the last call ends.
                    Err(_) => return,
                }
            }
        });
        Ok(())
    }

    #[getter]
    fn running(&self) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks

fn parse_secret(text: &str) -> PyResult<twh::webhooks::Secret> {
    twh::webhooks::Secret::parse(text).map_err(|e| py_err(&twh::Error::from(e)))
}

/// Verifies a webhook delivery (raises otherwise); the Python package parses the payload.
#[pyfunction]
#[pyo3(signature = (payload, headers, secret, tolerance_seconds=None))]
fn verify_webhook(
    payload: &[u8],
    headers: HashMap<String, String>,
    secret: &str,
    tolerance_seconds: Option<f64>,
) -> PyResult<()> {
    let tolerance = match tolerance_seconds {
        Some(s) => Duration::try_from_secs_f64(s).map_err(|e| invalid(format!("tolerance: {e}")))?,
        None => twh::webhooks::DEFAULT_TOLERANCE,
    };
    twh::webhooks::verify(payload, &headers, &parse_secret(secret)?, tolerance).py()?;
    Ok(())
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
        return Err(invalid("sign: at least one secret"));
    }
    let parsed = secrets.iter().map(|s| parse_secret(s)).collect::<PyResult<Vec<_>>>()?;
    let refs: Vec<&twh::webhooks::Secret> = parsed.iter().collect();
    Ok(twh::webhooks::sign_with(&refs, msg_id, timestamp, payload).to_pairs().into_iter().collect())
}

// ---------------------------------------------------------------------------------------------
// The `twh-emulator` command

/// Runs the `twh-emulator` command line (`twh_emulator::cli::run`, the Rust binary's very
/// function) with `args` (the program name first) until it ends, with the GIL released, and
/// answers its exit status. The package's console script (`twh._cli`) calls it after giving
/// SIGINT back to the operating system's default, so Ctrl-C reaches the emulator's own handler
/// (tokio's), which stops it cleanly; Python's handler would only record the signal for later.
#[pyfunction]
fn run_cli(py: Python<'_>, args: Vec<std::ffi::OsString>) -> u8 {
    let code = py.detach(move || twh_emulator::cli::run(args));
    exit_status(code)
}

/// The number of an [`std::process::ExitCode`] (the standard library compares them but does not
/// hand the number back).
fn exit_status(code: std::process::ExitCode) -> u8 {
    (0..=u8::MAX).find(|&n| std::process::ExitCode::from(n) == code).unwrap_or(1)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()?;
    m.add_class::<Emulator>()?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(verify_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(sign_webhook, m)?)?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
