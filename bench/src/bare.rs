//! The baseline: a bare hyper server that reads the request body and answers a fixed JSON body
//! shaped like the emulator's `201` for a movement (same size, same headers).
//!
//! Its accept loop copies the emulator's (`emulator/src/server.rs`): hyper-util's `auto`
//! builder on a multi-threaded Tokio runtime, `TCP_NODELAY`, one task per connection. The
//! difference between the two servers is therefore the emulator's own work: routing,
//! middleware, auth, JSON parsing and validation, idempotency, the ledger and rendering.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The fixed body: a real `POST /v1/stock-movements` answer of the emulator (270 bytes).
pub const BODY: &str = concat!(
    r#"{"id":"mov_d9b435cf000009","sequence":9,"type":"receipt","item_id":"itm_d9b435cf000005","#,
    r#""lines":[{"location_id":"loc_d9b435cf000004","delta":1,"quantity_after":1}],"reference":null,"#,
    r#""reason":null,"metadata":null,"reverses":null,"created_at":"2026-11-22T19:55:20.953870Z"}"#
);

/// `GET` anything → `200 {"status":"ok"}` (the start-time probe); any other method → `201` and
/// [`BODY`].
async fn answer(req: hyper::Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == http::Method::GET {
        let mut r = Response::new(Full::new(Bytes::from_static(br#"{"status":"ok"}"#)));
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(r);
    }
    // Read the whole request body, as the emulator does.
    let _ = req.into_body().collect().await;
    let mut r = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    *r.status_mut() = StatusCode::CREATED;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::ETAG, HeaderValue::from_static("\"1\""));
    h.insert(header::LOCATION, HeaderValue::from_static("/v1/stock-movements/mov_d9b435cf000009"));
    h.insert("x-request-id", HeaderValue::from_static("req_syrqiuaia80fxg5rzv4isjsa"));
    Ok(r)
}

/// Binds `addr` and serves until the task is dropped; returns the bound address.
pub async fn start(addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(serve(listener))))
}

/// The accept loop.
pub async fn serve(listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection =
            builder.serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer)).into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
