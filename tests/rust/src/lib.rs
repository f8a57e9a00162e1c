//! The kitchen sink's own webhook receiver (tests/KITCHEN_SINK.md step 4): a small HTTP server
//! that records every request it gets, with a path that answers 500 until told otherwise.
//!
//! The scenario itself is `kitchen_sink.rs` (`cargo nextest run -p twh-kitchen-sink`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Requests kept; later ones are counted in [`Receiver::dropped`] but not kept.
pub const RECORDED_MAX: usize = 10_000;

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// `good` or `flaky`.
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body, as received.
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    recorded: Mutex<Vec<Received>>,
    dropped: AtomicU64,
    flaky_ok: AtomicBool,
}

/// A running receiver: `POST /good` answers 204, `POST /flaky` answers 500 until
/// [`Receiver::heal_flaky`], then 200.
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

async fn receive(
    State(s): State<Arc<Shared>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let status = match path.as_str() {
        "good" => StatusCode::NO_CONTENT,
        "flaky" if s.flaky_ok.load(Ordering::SeqCst) => StatusCode::OK,
        "flaky" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::NOT_FOUND,
    };
    let mut recorded = s.recorded.lock();
    if recorded.len() < RECORDED_MAX {
        recorded.push(Received { path, headers, body, status: status.as_u16() });
    } else {
        s.dropped.fetch_add(1, Ordering::Relaxed);
    }
    status
}

impl Receiver {
    /// Binds 127.0.0.1 on a free port and serves.
    pub async fn start() -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = Router::new().route("/{path}", post(receive)).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Receiver { addr, shared, stop: Some(stop), task: Some(task) })
    }

    /// The URL of a path: `http://127.0.0.1:<port>/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Everything recorded so far.
    pub fn recorded(&self) -> Vec<Received> {
        self.shared.recorded.lock().clone()
    }

    /// Requests not kept because [`RECORDED_MAX`] were.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// `/flaky` answers 200 from now on.
    pub fn heal_flaky(&self) {
        self.shared.flaky_ok.store(true, Ordering::SeqCst);
    }

    /// Stops accepting, finishes in-flight requests, and returns the server's result.
    pub async fn stop(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}
