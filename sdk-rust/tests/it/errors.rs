//! Every error kind, produced by the emulator (or, where it cannot produce one, by a scripted
//! server) and matched by variant.

use std::time::Duration;

use twh::types::{self, CreateMovement, FaultAction};
use twh::{Error, ItemQuery};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::common::{emu, mock_client, new_item, problem_response};

#[tokio::test]
async fn every_error_kind_is_produced_and_matched() {
    let emulator = emu::start().await;
    let (client, created) = emulator.create_sandbox_with(&types::CreateSandbox::default()).await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;

    // 401
    let stranger = client.with_api_key("sk_test_nobody").expect("client");
    let e = stranger.get_sandbox().await.expect_err("unknown key");
    assert!(matches!(&e, Error::Authentication(a) if a.code == "unauthenticated"), "{e:?}");
    assert!(e.request_id().is_some_and(|id| id.starts_with("req_")), "{e:?}");

    // 403
    let reader = client.with_api_key(created.restricted_key.expose()).expect("client");
    reader.list_items(&ItemQuery::default()).await.expect("a restricted key reads");
    let e = reader.create_item(new_item("NOPE")).await.expect_err("a restricted key writes");
    assert!(matches!(&e, Error::Permission(a) if a.code == "forbidden"), "{e:?}");

    // 404, also across tenants
    let e = client.get_item("itm_doesnotexist").await.expect_err("no such item");
    assert!(matches!(&e, Error::NotFound(a) if a.code == "not_found"), "{e:?}");
    let other = emulator.create_sandbox().await.expect("another sandbox");
    assert!(matches!(other.get_item(&item.id).await, Err(Error::NotFound(_))), "another tenant's item is not found");

    // 409
    let e = client.create_item(new_item("MUG-BLU")).await.expect_err("sku taken");
    assert!(matches!(&e, Error::Conflict(a) if a.code == "sku_taken"), "{e:?}");
    assert_eq!(e.status(), Some(409));

    // 422 idempotency_key_reused
    client
        .create_movement(CreateMovement::receipt(&item.id, &location.id, 1))
        .idempotency_key("same-key")
        .await
        .expect("first use");
    let e = client
        .create_movement(CreateMovement::receipt(&item.id, &location.id, 2))
        .idempotency_key("same-key")
        .await
        .expect_err("same key, other request");
    assert!(matches!(&e, Error::IdempotencyKeyReused(a) if a.code == "idempotency_key_reused"), "{e:?}");

    // 422 validation, with field problems; 400
    let e =
        client.create_movement(CreateMovement::receipt(&item.id, &location.id, 0)).await.expect_err("zero quantity");
    assert!(matches!(&e, Error::Validation(a) if a.status == 422), "{e:?}");
    assert!(e.errors().iter().any(|f| f.field == "quantity"), "{:?}", e.errors());
    let e = client
        .list_items(&ItemQuery { cursor: Some("not-a-cursor".to_owned()), ..Default::default() })
        .await
        .expect_err("bad cursor");
    assert!(matches!(&e, Error::Validation(a) if a.status == 400 && a.code == "invalid_cursor"), "{e:?}");

    // 412, with the current ETag
    let stale = twh::ETag::from_version(item.version + 40);
    let e = client
        .update_item(&item.id, &stale, types::UpdateItem::builder().low_stock_threshold(1i64))
        .await
        .expect_err("stale");
    assert!(
        matches!(&e, Error::PreconditionFailed(a) if a.current_etag == Some(twh::ETag::from_version(item.version))),
        "{e:?}"
    );

    // 428: the SDK always sends If-Match, so the emulator is made to answer 428 by a fault.
    let mut fault = emu::fault(FaultAction::ErrorBeforeCommit, "PATCH", "/v1/items", 1);
    fault.status = Some(428);
    emulator.inject_fault(&fault).await.expect("fault");
    let e = client
        .update_item(&item.id, &twh::ETag::any(), types::UpdateItem::builder().low_stock_threshold(1i64))
        .await
        .expect_err("428");
    assert!(matches!(e, Error::PreconditionRequired(_)), "{e:?}");

    // 429 (rate limiting is not in the emulator yet: a fault answers 429), retried, then reported.
    let no_retries = client.clone().with_api_key(created.secret_key.expose()).expect("client");
    let mut fault = emu::fault(FaultAction::ErrorBeforeCommit, "GET", "/v1/sandbox", 2);
    fault.status = Some(429);
    emulator.inject_fault(&fault).await.expect("fault");
    let fast = twh::Client::builder()
        .api_key(created.secret_key.expose())
        .base_url(emulator.base_url())
        .max_retries(1)
        .build()
        .expect("client");
    let e = fast.get_sandbox().await.expect_err("429 twice");
    assert!(matches!(e, Error::RateLimited(_)), "{e:?}");
    assert_eq!(e.attempts(), 2);
    no_retries.get_sandbox().await.expect("the fault is used up");

    // 5xx, retried until the bound
    let mut fault = emu::fault(FaultAction::ErrorBeforeCommit, "GET", "/v1/items", 2);
    fault.status = Some(503);
    emulator.inject_fault(&fault).await.expect("fault");
    let e = fast.list_items(&ItemQuery::default()).await.expect_err("503 twice");
    assert!(matches!(&e, Error::Server(a) if a.status == 503 && a.attempts == 2), "{e:?}");

    // Timeout
    let slow = twh::Client::builder()
        .api_key(created.secret_key.expose())
        .base_url(emulator.base_url())
        .timeout(Duration::from_millis(200))
        .max_retries(0)
        .build()
        .expect("client");
    let mut fault = emu::fault(FaultAction::Delay, "GET", "/v1/locations", 1);
    fault.delay_ms = Some(2000);
    emulator.inject_fault(&fault).await.expect("fault");
    let e = slow.get_location(&location.id).await.expect_err("too slow");
    assert!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e:?}");

    // Connection: nothing listens there any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let nowhere = twh::Client::builder().api_key("sk_test_x").base_url(url).max_retries(1).build().expect("client");
    let e = nowhere.get_sandbox().await.expect_err("refused");
    assert!(matches!(e, Error::Connection { attempts: 2, .. }), "{e:?}");

    // Before sending: a value the document forbids.
    let e = client.create_item(types::CreateItem::builder().sku("has spaces").name("x")).await.expect_err("bad sku");
    assert!(matches!(e, Error::InvalidRequest(_)), "{e:?}");
    assert_eq!(e.attempts(), 0);

    emulator.shutdown().await;
}

#[tokio::test]
async fn quota_exceeded_is_its_own_kind() {
    // The emulator has no quotas yet: a scripted 429 `quota_exceeded`.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(problem_response(429, "quota_exceeded").insert_header("retry-after", "3600"))
        .mount(&server)
        .await;
    let e = mock_client(&server, 3)
        .create_movement(CreateMovement::receipt("itm_1", "loc_1", 1))
        .await
        .expect_err("over quota");
    assert!(matches!(&e, Error::QuotaExceeded(a) if a.code == "quota_exceeded"), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
}
