//! The retry policy against scripted answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use twh::Error;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{item_json, item_response, mock_client, new_item, problem_response};

fn keys(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn two_503s_then_201_succeeds_with_one_idempotency_key_on_all_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/items"))
        .respond_with(problem_response(503, "unavailable"))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/items"))
        .respond_with(item_response(201, "itm_1"))
        .with_priority(2)
        .mount(&server)
        .await;

    let item = mock_client(&server, 3).create_item(new_item("A")).await.expect("created after two 503s");
    assert_eq!(item.id, "itm_1");
    assert_eq!(item.etag().as_str(), "\"1\"");

    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 3);
    let keys = keys(&requests);
    assert!(!keys[0].is_empty(), "an Idempotency-Key is sent");
    assert!(keys.iter().all(|k| *k == keys[0]), "one key on every attempt: {keys:?}");
    let ids: Vec<_> = requests.iter().map(|r| r.headers.get("x-request-id").cloned()).collect();
    assert!(ids.iter().all(|id| id.is_some() && *id == ids[0]), "one request id per call: {ids:?}");
    assert!(requests.iter().all(|r| r.body == requests[0].body), "the same body every time");
}

#[tokio::test]
async fn a_429_with_retry_after_2_waits_about_2_seconds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/items/itm_1"))
        .respond_with(problem_response(429, "rate_limited").insert_header("retry-after", "2"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/items/itm_1"))
        .respond_with(item_response(200, "itm_1"))
        .with_priority(2)
        .mount(&server)
        .await;

    let started = Instant::now();
    mock_client(&server, 3).get_item("itm_1").await.expect("read after the wait");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1950) && waited < Duration::from_millis(3500), "waited {waited:?}");
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_returned_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(problem_response(429, "quota_exceeded").insert_header("retry-after", "86400"))
        .mount(&server)
        .await;
    let started = Instant::now();
    let e = mock_client(&server, 3).get_item("itm_1").await.expect_err("quota");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(e, Error::QuotaExceeded(_)), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(86400)));
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, code) in
        [(400, "invalid_json"), (404, "not_found"), (412, "precondition_failed"), (422, "validation_failed")]
    {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(problem_response(status, code)).mount(&server).await;
        let e = mock_client(&server, 3).create_item(new_item("A")).await.expect_err("an error");
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.code(), Some(code));
        assert_eq!(e.attempts(), 1, "{status} is not retried");
        assert_eq!(server.received_requests().await.expect("recorded").len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_conflict_is_retried_only_while_the_key_is_in_use() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(problem_response(409, "idempotency_key_in_use").insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(problem_response(409, "sku_taken")).with_priority(2).mount(&server).await;
    let e = mock_client(&server, 3).create_item(new_item("A")).await.expect_err("sku taken");
    assert!(matches!(&e, Error::Conflict(a) if a.code == "sku_taken"), "{e:?}");
    assert_eq!(e.attempts(), 2, "in use: retried; sku_taken: not");
    assert_eq!(e.request_id(), Some("req_mock"));
}

#[tokio::test]
async fn the_attempt_bound_is_respected_and_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(problem_response(503, "unavailable").insert_header("retry-after", "0"))
        .mount(&server)
        .await;
    let e = mock_client(&server, 2).get_item("itm_1").await.expect_err("always 503");
    assert!(matches!(e, Error::Server(_)), "{e:?}");
    assert_eq!(e.attempts(), 3);
    assert_eq!(server.received_requests().await.expect("recorded").len(), 3);
    assert!(e.to_string().contains("3 attempts"), "{e}");

    let none = MockServer::start().await;
    Mock::given(method("GET")).respond_with(problem_response(500, "internal")).mount(&none).await;
    let e = mock_client(&none, 0).get_item("itm_1").await.expect_err("500");
    assert_eq!(
        (e.attempts(), none.received_requests().await.expect("recorded").len()),
        (1, 1),
        "max_retries 0: one attempt"
    );
}

#[tokio::test]
async fn every_retryable_status_is_retried() {
    for status in [408, 429, 500, 502, 503, 504] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(problem_response(status, "transient").insert_header("retry-after", "0"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET")).respond_with(item_response(200, "itm_1")).with_priority(2).mount(&server).await;
        mock_client(&server, 1).get_item("itm_1").await.unwrap_or_else(|e| panic!("{status} retried: {e}"));
    }
}

#[tokio::test]
async fn a_timeout_is_retried_and_reported_as_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)).set_body_json(item_json("itm_1")))
        .mount(&server)
        .await;
    let client = twh::Client::builder()
        .api_key("sk_test_mock")
        .base_url(server.uri())
        .timeout(Duration::from_millis(200))
        .max_retries(1)
        .build()
        .expect("client");
    let e = client.get_item("itm_1").await.expect_err("too slow");
    assert!(matches!(e, Error::Timeout { attempts: 2, .. }), "{e:?}");
}

/// A server that closes the first `resets` connections without answering, then answers each
/// request with an item.
async fn flaky_server(resets: u32) -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicU32::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                if n <= resets {
                    // Close without a word (with SO_LINGER 0 this would be a RST; either way
                    // the client sees the connection end with no response).
                    drop(stream);
                    return;
                }
                let body = item_json("itm_1").to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: \"1\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, connections)
}

#[tokio::test]
async fn a_connection_reset_is_retried() {
    let (url, connections) = flaky_server(1).await;
    let client = twh::Client::builder().api_key("sk_test_x").base_url(url).build().expect("client");
    let item = client.get_item("itm_1").await.expect("the retry succeeds");
    assert_eq!(item.id, "itm_1");
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_failures_report_their_attempts() {
    let (url, connections) = flaky_server(u32::MAX).await;
    let client = twh::Client::builder().api_key("sk_test_x").base_url(url).max_retries(2).build().expect("client");
    let e = client.get_item("itm_1").await.expect_err("never answers");
    assert!(matches!(e, Error::Connection { attempts: 3, .. }), "{e:?}");
    assert!(e.is_retryable());
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}
