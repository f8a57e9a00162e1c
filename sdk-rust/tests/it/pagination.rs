//! Auto-paging.

use std::collections::HashSet;

use futures::TryStreamExt;
use twh::ItemQuery;

use crate::common::{emu, new_item};

#[tokio::test]
async fn auto_paging_over_250_items_yields_each_once_in_creation_order() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let mut created = Vec::new();
    for i in 0..250 {
        created.push(client.create_item(new_item(&format!("SKU-{i:03}"))).await.expect("item").into_inner().id);
    }

    let streamed: Vec<String> = client
        .list_items_stream(ItemQuery { limit: Some(100), ..Default::default() })
        .map_ok(|i| i.id)
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(streamed.len(), 250);
    assert_eq!(streamed.iter().collect::<HashSet<_>>().len(), 250, "each once");
    assert_eq!(streamed, created, "creation order");

    // The default page size, and one page at a time.
    let first = client.list_items(&ItemQuery::default()).await.expect("page");
    assert_eq!(first.data.len(), 20);
    let second = client
        .list_items(&ItemQuery { cursor: first.next_cursor.clone(), ..Default::default() })
        .await
        .expect("page 2");
    assert_eq!(second.data[0].id, created[20]);
    // A stream may start from a cursor.
    let rest: Vec<_> = client
        .list_items_stream(ItemQuery { cursor: first.next_cursor, limit: Some(100), ..Default::default() })
        .try_collect()
        .await
        .expect("rest");
    assert_eq!(rest.len(), 230);
    emulator.shutdown().await;
}
