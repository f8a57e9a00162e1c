//! One-shot HTTP requests: setup calls (async, hyper) and the start-time probe (blocking, std).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// Sends one request on a fresh connection and returns the status and body.
pub async fn send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let bytes = match body {
        Some(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(v)?)
        }
        None => Bytes::new(),
    };
    let response = sender.send_request(req.body(Full::new(bytes))?).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok((status, body))
}

/// Sends a JSON request and expects `2xx`; returns the parsed body.
pub async fn json(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let (status, bytes) = send(addr, method.clone(), path, headers, Some(body)).await?;
    if !(200..300).contains(&status) {
        bail!("{method} {path} answered {status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes)?)
}

/// Polls `addr` until `GET path` answers `200` or `timeout` passes. Connection attempts are
/// retried every `poll` (a refused connect on loopback fails in microseconds). Returns the time
/// from `since` to the moment the `200` status line was read.
pub fn wait_for_200(
    addr: SocketAddr,
    path: &str,
    since: Instant,
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    loop {
        if since.elapsed() > timeout {
            bail!("no 200 from http://{addr}{path} within {timeout:?}");
        }
        let Ok(mut stream) = TcpStream::connect(addr) else {
            std::thread::sleep(poll);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(timeout));
        if stream.write_all(request.as_bytes()).is_err() {
            std::thread::sleep(poll);
            continue;
        }
        // The status line is in the first bytes of the answer.
        let mut head = [0u8; 12];
        let mut got = 0;
        while got < head.len() {
            match stream.read(&mut head[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        if got == head.len() && &head[..9] == b"HTTP/1.1 " && &head[9..12] == b"200" {
            return Ok(since.elapsed());
        }
        std::thread::sleep(poll);
    }
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
