//! What every request carries.

use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer};

use crate::common::{item_response, new_item};

#[tokio::test]
async fn requests_carry_auth_user_agent_request_id_and_post_keys() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(item_response(200, "itm_1")).mount(&server).await;
    Mock::given(method("POST")).respond_with(item_response(201, "itm_1")).mount(&server).await;
    let client = twh::Client::builder()
        .api_key("sk_test_headers")
        .base_url(server.uri())
        .user_agent_suffix("my-shop/2.3")
        .build()
        .expect("client");

    client.get_item("itm_1").await.expect("get");
    client.create_item(new_item("A")).await.expect("post with a random key");
    client.create_item(new_item("A")).idempotency_key("order-1042").await.expect("post with my key");

    let requests = server.received_requests().await.expect("recorded");
    let h = |i: usize, name: &str| requests[i].headers.get(name).map(|v| v.to_str().expect("ascii").to_owned());
    for i in 0..3 {
        assert_eq!(h(i, "authorization").as_deref(), Some("Bearer sk_test_headers"));
        assert_eq!(h(i, "user-agent"), Some(format!("twh-rust/{} my-shop/2.3", env!("CARGO_PKG_VERSION"))));
        let id = h(i, "x-request-id").expect("a request id");
        assert!(id.starts_with("req_"), "{id}");
    }
    assert_ne!(h(0, "x-request-id"), h(1, "x-request-id"), "one request id per call");
    assert_eq!(h(0, "idempotency-key"), None, "no key on a GET");
    let key = h(1, "idempotency-key").expect("a key on a POST");
    assert_eq!(uuid::Uuid::parse_str(&key).expect("a UUID").get_version_num(), 4, "a UUIDv4: {key}");
    assert_eq!(h(2, "idempotency-key").as_deref(), Some("order-1042"));
}

#[tokio::test]
async fn updates_send_the_etag_as_if_match() {
    let server = MockServer::start().await;
    Mock::given(method("PATCH"))
        .and(header("if-match", "\"7\""))
        .respond_with(item_response(200, "itm_1"))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(header("if-match", "*"))
        .respond_with(item_response(200, "itm_1"))
        .mount(&server)
        .await;
    let client = crate::common::mock_client(&server, 0);
    client
        .update_item("itm_1", &twh::ETag::from_version(7), twh::types::UpdateItem::builder().name("New name"))
        .await
        .expect("patched with If-Match");
    client.archive_item("itm_1", &twh::ETag::any()).await.expect("archived with If-Match: *");
}

#[tokio::test]
async fn update_with_gives_up_after_its_bound_of_412s() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(item_response(200, "itm_1")).mount(&server).await;
    Mock::given(method("PATCH"))
        .respond_with(crate::common::problem_response(412, "precondition_failed"))
        .mount(&server)
        .await;
    let client = crate::common::mock_client(&server, 3);
    let mut calls = 0;
    let result = client
        .update_item_with("itm_1", |_| {
            calls += 1;
            twh::types::UpdateItem::builder().low_stock_threshold(1i64)
        })
        .await;
    assert!(matches!(result, Err(twh::Error::PreconditionFailed(_))), "{result:?}");
    let bound = twh::etag::READ_MODIFY_WRITE_ATTEMPTS_MAX;
    assert_eq!(calls, bound);
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2 * bound as usize, "a read and a write per round, nothing retried");
}
