//! Read-modify-write under contention.

use twh::types::UpdateItem;

use crate::common::{emu, new_item};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_update_item_with_applies_both_changes() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let item = client.create_item(new_item("RACE-1").low_stock_threshold(0i64)).await.expect("item");
    const ROUNDS: i64 = 15;

    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            let id = item.id.clone();
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    client
                        .update_item_with(&id, |current| {
                            UpdateItem::builder().low_stock_threshold(current.low_stock_threshold.unwrap_or(0) + 1)
                        })
                        .await
                        .expect("each change gets in");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }

    let after = client.get_item(&item.id).await.expect("read");
    assert_eq!(after.low_stock_threshold, Some(2 * ROUNDS), "no lost update");
    assert_eq!(after.version, item.version + 2 * ROUNDS as u64);
    emulator.shutdown().await;
}
