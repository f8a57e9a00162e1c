//! Running the emulator: `Emulator::start` binds a port and serves `app` until `shutdown`.
//!
//! The accept loop is hyper-util's, not `axum::serve`, for one reason: the fault
//! `drop_connection_after_commit` must close the connection with no response at all, which a
//! service can do by failing (hyper then aborts the connection); axum's own server only takes
//! infallible services. Shutdown is graceful: stop accepting, let in-flight requests finish
//! (bounded), then return.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::Service;

use crate::clock::Timestamp;
use crate::dispatch::WebhookSettings;
use crate::domain::DomainError;
use crate::domain::fixtures::{Fixtures, FixturesLoaded};
use crate::domain::model::{CreateSandbox, SandboxCreated};
use crate::domain::registry::{MemoryStore, Settings, World};
use crate::http::faults::{DropConnection, Fault, FaultSpec};
use crate::http::{self, AppState, HttpConfig};
use crate::store::DurableStore;

/// How long shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to start an emulator.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// Port to bind (default 0: any free port).
    pub port: u16,
    /// Domain settings.
    pub settings: Settings,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Webhook delivery settings.
    pub webhooks: WebhookSettings,
    /// Keep the state in this directory (created if needed) and recover it on start; `None`
    /// (the default) keeps it in memory only. See [`crate::store`].
    pub data_dir: Option<PathBuf>,
    /// Deterministic mode (`--deterministic SEED`): ids, keys, webhook secrets, request ids (when
    /// the client sends none) and retry jitter come from a generator seeded by this, and the
    /// clock starts at 2030-01-01T00:00:00Z and moves only when advanced, so the same sequence
    /// of requests answers the same bodies on every run (concurrent requests draw ids in the
    /// order they arrive). `None` (the default): random, and the clock follows the system's.
    pub deterministic: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            settings: Settings::default(),
            http: HttpConfig::default(),
            webhooks: WebhookSettings::default(),
            data_dir: None,
            deterministic: None,
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// OS priority (nice) of the webhook dispatcher's thread: the lowest, against the request path's 0.
const DISPATCHER_NICE: i32 = 19;

/// Runs the webhook dispatcher's loop on a thread of its own with a runtime of its own, at a
/// lower OS priority than the threads serving requests: a flood of delivery work (thousands of
/// attempts to a receiver that refuses at once) then takes only the CPU the request path leaves,
/// and ledger latency stays where it was (`twh-bench-webhooks` measures it). Resolves when the
/// loop has returned.
fn spawn_dispatcher(
    dispatcher: Arc<crate::dispatch::Dispatcher>,
    stop: watch::Receiver<bool>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (done, finished) = tokio::sync::oneshot::channel();
    let (fallback, fallback_stop) = (dispatcher.clone(), stop.clone());
    let spawned = std::thread::Builder::new().name("twh-webhooks".to_owned()).spawn(move || {
        lower_this_thread_priority();
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(dispatcher.run(stop)),
            Err(e) => tracing::error!(error = %e, "the webhook dispatcher could not start its runtime"),
        }
        let _ = done.send(());
    });
    if let Err(e) = spawned {
        // No thread to be had: run on the serving runtime, as one task among the others.
        tracing::warn!(error = %e, "the webhook dispatcher runs on the serving runtime");
        let (done, finished) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            fallback.run(fallback_stop).await;
            let _ = done.send(());
        });
        return finished;
    }
    finished
}

#[cfg(target_os = "linux")]
fn lower_this_thread_priority() {
    // On Linux a nice value is per thread: this one only.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), DISPATCHER_NICE) {
        tracing::debug!(error = %e, "could not lower the webhook dispatcher's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread_priority() {
    let _ = DISPATCHER_NICE;
}

impl Emulator {
    /// Opens the data dir (if any; its errors name the file at fault), binds and starts serving.
    pub async fn start(mut config: Config) -> std::io::Result<Emulator> {
        // Open admin routes are safe only on this machine (API.md §5).
        if !config.host.is_loopback() && config.http.admin_token.is_none() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "--host {} is not a loopback address: set --admin-token too, or anyone who can reach it controls the emulator",
                    config.host
                ),
            ));
        }
        if config.http.host.is_none() {
            config.http.host = Some(SocketAddr::new(config.host, 0).to_string().trim_end_matches(":0").to_owned());
        }
        let seeded = |world: World| match config.deterministic {
            Some(seed) => world.deterministic(seed),
            None => world,
        };
        let world = match &config.data_dir {
            None => Arc::new(seeded(World::new(config.settings, Box::new(MemoryStore)))),
            Some(dir) => {
                let dir = dir.clone();
                let (store, recovered) = tokio::task::spawn_blocking(move || DurableStore::open(&dir))
                    .await
                    .map_err(std::io::Error::other)??;
                let world = Arc::new(seeded(World::new(config.settings, Box::new(store.clone()))));
                let recovered_count = recovered.sandbox_count();
                if let Err(e) = store.install(&world, recovered) {
                    let _ = store.shut();
                    return Err(e);
                }
                tracing::info!(data_dir = %store.dir().display(), sandboxes = recovered_count, "state recovered");
                world
            }
        };
        let listener = match TcpListener::bind((config.host, config.port)).await {
            Ok(l) => l,
            Err(e) => {
                let _ = world.store.close();
                return Err(e);
            }
        };
        let addr = listener.local_addr()?;
        let durable = world.store.is_durable();
        let state = Arc::new(AppState::new(world, config.http, config.webhooks));
        let (stop, stopped) = watch::channel(false);
        let dispatcher = spawn_dispatcher(state.dispatcher.clone(), stopped.clone());
        let jobs = tokio::spawn(state.jobs.clone().run(stopped.clone()));
        let flusher = durable.then(|| tokio::spawn(flush_loop(state.clone(), stopped.clone())));
        let server = tokio::spawn(serve(listener, http::app(state.clone()), state.config.clone(), stopped));
        let world = state.world.clone();
        let task = tokio::spawn(async move {
            let _ = server.await;
            let _ = dispatcher.await;
            let _ = jobs.await;
            if let Some(f) = flusher {
                let _ = f.await;
            }
            // In-flight requests are done: write what waits (reads' usage, the clock) and close.
            if durable {
                let closed = tokio::task::spawn_blocking(move || {
                    crate::store::flush_pending(&world);
                    world.store.close()
                })
                .await;
                match closed {
                    Ok(Ok(())) => tracing::info!("state written; data dir closed"),
                    Ok(Err(e)) => tracing::error!(error = %e, "closing the data dir failed"),
                    Err(e) => tracing::error!(error = %e, "closing the data dir failed"),
                }
            }
        });
        Ok(Emulator { addr, state, stop, task })
    }

    /// `http://host:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared state (for in-process inspection).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Creates a sandbox and returns its keys.
    pub fn create_sandbox(&self, req: CreateSandbox) -> Result<SandboxCreated, DomainError> {
        self.state.world.create_sandbox(req)
    }

    /// Creates the sandboxes of a fixtures document, all or none (see
    /// [`crate::domain::fixtures`]), and returns them with their keys.
    pub fn load_fixtures(&self, doc: Fixtures) -> Result<FixturesLoaded, DomainError> {
        let loaded = crate::domain::fixtures::load(&self.state.world, doc)?;
        self.state.dispatcher.wake(); // the fixtures' endpoints have deliveries waiting
        Ok(loaded)
    }

    /// Moves the clock forward, firing what became due on the way (webhook attempts, period ends
    /// and invoices, nightly reconciliations, expiries) in time order. Returns the new now.
    pub async fn advance_clock(&self, by: Duration) -> Timestamp {
        let micros = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let to = Timestamp(self.state.world.clock.now().micros().saturating_add(micros));
        self.state.advance_clock_to(to).await
    }

    /// Moves the clock of one sandbox forward (no other sandbox's), firing what became due in
    /// it on the way (at most ten years at once, as over HTTP); returns its new now, or `None`
    /// for an unknown sandbox.
    pub async fn advance_sandbox_clock(&self, sandbox_id: &str, by: Duration) -> Option<Timestamp> {
        let tenant = self.state.world.tenant(sandbox_id)?;
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX).min(http::control::ADVANCE_SECONDS_MAX);
        Some(self.state.dispatcher.advance_sandbox(&tenant, crate::dispatch::SandboxAdvance::By(seconds)).await)
    }

    /// Arms a fault.
    pub fn inject_fault(&self, spec: FaultSpec) -> Result<Fault, DomainError> {
        self.state.faults.add(spec, &self.state.world)
    }

    /// Stops accepting, lets in-flight requests finish (up to [`SHUTDOWN_GRACE`]), and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// With a data dir: every second, writes the changes that wait without a write of their own
/// (the usage rows of reads).
async fn flush_loop(state: Arc<AppState>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stopped.changed() => return,
        }
        let world = state.world.clone();
        let _ = tokio::task::spawn_blocking(move || crate::store::flush_pending(&world)).await;
    }
}

/// The next connection, once a slot of `connections_max` is free, with its slot.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<tokio::sync::Semaphore>,
) -> (std::io::Result<(tokio::net::TcpStream, SocketAddr)>, Option<tokio::sync::OwnedSemaphorePermit>) {
    let slot = slots.clone().acquire_owned().await.ok();
    (listener.accept().await, slot)
}

async fn serve(listener: TcpListener, app: http::App, limits: HttpConfig, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header timer also runs while a kept-alive connection waits for its next request, so
    // it is the idle timeout too; HTTP/2 connections are pinged as often and closed unanswered.
    let timeout = limits.header_read_timeout;
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(timeout);
    builder.http2().timer(hyper_util::rt::TokioTimer::new()).keep_alive_interval(timeout).keep_alive_timeout(timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.connections_max.max(1)));
    loop {
        tokio::select! {
            accepted = accept(&listener, &slots) => {
                let (accepted, slot) = accepted;
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let response = app.clone().call(req.map(Body::new));
                    async move {
                        let response = match response.await {
                            Ok(r) => r,
                            Err(never) => match never {},
                        };
                        if response.extensions().get::<DropConnection>().is_some() {
                            return Err(Dropped);
                        }
                        Ok(response)
                    }
                });
                let (builder, watcher, mut stop) = (builder.clone(), graceful.watcher(), stopped.clone());
                tokio::spawn(async move {
                    // Until its first byte the connection is in hyper-util's protocol sniffing,
                    // which has no timer of its own: a connection that never sends is closed
                    // here (and at once on shutdown, which would otherwise wait for it).
                    let mut first = [0u8; 1];
                    let sent = tokio::select! {
                        peeked = tokio::time::timeout(timeout, stream.peek(&mut first)) => matches!(peeked, Ok(Ok(1..))),
                        _ = stop.changed() => false,
                    };
                    if !sent {
                        drop(slot);
                        return;
                    }
                    let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                    let _ = watcher.watch(connection).await;
                    drop(slot);
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
}
