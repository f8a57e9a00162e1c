//! The shared dispatch of the Python and Node packages (`twh::dispatch`), against the
//! in-process emulator: arguments by name, the server's bytes and headers back, the same hooks
//! (request ids, idempotency keys, retries) and the same errors as the typed methods.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use twh::ErrorKind;
use twh::dispatch::call;
use twh::types::FaultAction;

use crate::common::emu;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn body(v: Value) -> Option<Bytes> {
    Some(Bytes::from(serde_json::to_vec(&v).expect("json")))
}

fn json_of(answer: &twh::dispatch::Answer) -> Value {
    serde_json::from_slice(&answer.body).expect("a JSON body")
}

#[tokio::test]
async fn every_kind_of_answer_comes_back_as_the_server_sent_it() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");

    let created = call(&client, "create_item", &args(json!({})), body(json!({"sku": "MUG-BLU", "name": "Mug"})))
        .await
        .expect("create");
    assert_eq!((created.status, created.etag()), (201, Some("\"1\"")));
    assert!(created.request_id().is_some_and(|id| id.starts_with("req_")));
    let item = json_of(&created);
    assert_eq!(item["sku"], "MUG-BLU");
    let id = item["id"].as_str().expect("id");

    let same = call(&client, "get_item_if_changed", &args(json!({"id": id, "if_none_match": "\"1\""})), None)
        .await
        .expect("conditional read");
    assert!(same.not_modified() && same.body.is_empty());
    let page = call(&client, "list_items", &args(json!({"sku": "MUG-BLU", "limit": 5, "cursor": null})), None)
        .await
        .expect("list");
    assert_eq!(json_of(&page)["data"][0]["id"], id);

    let replay = args(json!({"idempotency_key": "order-1"}));
    let first =
        call(&client, "create_location", &replay, body(json!({"code": "WH-1", "name": "Main"}))).await.expect("first");
    let again =
        call(&client, "create_location", &replay, body(json!({"code": "WH-1", "name": "Main"}))).await.expect("again");
    assert!(!first.idempotent_replayed() && again.idempotent_replayed());
    assert_eq!(json_of(&first)["id"], json_of(&again)["id"]);

    let csv = call(&client, "export_usage_csv", &args(json!({})), None).await.expect("csv");
    assert!(csv.body.starts_with(b"time,meter,quantity,request_id"), "{:?}", csv.body);
    emulator.shutdown().await;
}

#[tokio::test]
async fn errors_have_their_kind_and_bad_arguments_are_refused_before_sending() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let missing = call(&client, "get_item", &args(json!({"id": "itm_missing"})), None).await.expect_err("404");
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    let details = twh::dispatch::error_details(&missing);
    assert_eq!((details["kind"].as_str(), details["status"].as_u64()), (Some("not_found"), Some(404)));
    assert!(details["request_id"].as_str().is_some_and(|id| id.starts_with("req_")));

    for (op, a) in [("get_item", json!({"id": "x", "sku": "y"})), ("no_such_operation", json!({}))] {
        let e = call(&client, op, &args(a), None).await.expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
        assert_eq!(e.attempts(), 0, "nothing was sent");
    }
    let invalid = call(&client, "create_item", &args(json!({})), body(json!({"sku": ""}))).await.expect_err("422");
    assert_eq!(invalid.kind(), ErrorKind::Validation);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_post_is_retried_with_one_idempotency_key_and_written_once() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;
    emulator
        .inject_fault(&emu::fault(FaultAction::ErrorAfterCommit, "POST", "/v1/stock-movements", 2))
        .await
        .expect("fault armed");
    let receipt = json!({"type": "receipt", "item_id": item.id, "location_id": location.id, "quantity": 4});
    let answer = call(&client, "create_movement", &args(json!({})), body(receipt)).await.expect("third attempt");
    assert_eq!(answer.status, 201);
    assert!(answer.idempotent_replayed(), "the attempts after the commit replay it");
    let ledger = client.list_movements(&Default::default()).await.expect("ledger");
    assert_eq!(ledger.data.len(), 1, "one ledger entry");
    emulator.shutdown().await;
}
