//! Exactly-once through injected faults: the emulator commits, then fails the answer; the SDK
//! retries with the same key and receives the stored result.

use futures::TryStreamExt;
use twh::MovementQuery;
use twh::types::{CreateMovement, FaultAction};

use crate::common::emu;

async fn exactly_once_despite(action: FaultAction) {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;
    emulator.inject_fault(&emu::fault(action.clone(), "POST", "/v1/stock-movements", 1)).await.expect("fault armed");

    let movement =
        client.create_movement(CreateMovement::receipt(&item.id, &location.id, 10)).await.expect("retried to success");
    assert_eq!(movement.lines[0].quantity_after, 10);
    assert!(emulator.inner().expect("in-process").state().faults.list().is_empty(), "the fault fired");

    let ledger: Vec<_> = client
        .list_movements_stream(MovementQuery { item_id: Some(item.id.clone()), ..Default::default() })
        .try_collect()
        .await
        .expect("ledger");
    assert_eq!(ledger.len(), 1, "{action:?}: exactly one ledger entry");
    assert_eq!(ledger[0].id, movement.id, "the retry received the original result");
    assert_eq!(client.get_stock_level(&item.id, &location.id).await.expect("level").quantity, 10);
    emulator.shutdown().await;
}

#[tokio::test]
async fn error_after_commit_is_retried_into_exactly_one_entry() {
    exactly_once_despite(FaultAction::ErrorAfterCommit).await;
}

#[tokio::test]
async fn a_dropped_connection_after_commit_is_retried_into_exactly_one_entry() {
    exactly_once_despite(FaultAction::DropConnectionAfterCommit).await;
}

#[tokio::test]
async fn a_caller_key_replays_across_calls() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;
    let first = client
        .create_movement(CreateMovement::receipt(&item.id, &location.id, 4))
        .idempotency_key("po-77")
        .await
        .expect("first");
    let again = client
        .create_movement(CreateMovement::receipt(&item.id, &location.id, 4))
        .idempotency_key("po-77")
        .await
        .expect("replay");
    assert_eq!(first.id, again.id);
    assert_eq!(client.get_stock_level(&item.id, &location.id).await.expect("level").quantity, 4);
    emulator.shutdown().await;
}
