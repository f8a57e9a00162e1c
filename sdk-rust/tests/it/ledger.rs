//! The kitchen-sink scenario against the in-process emulator: every customer operation.

use std::time::Duration;

use futures::TryStreamExt;
use twh::types::{self, CreateMovement, MovementType, Status};
use twh::{Error, EventQuery, ItemQuery, LocationQuery, MovementQuery, StockLevelQuery};

use crate::common::emu;

#[tokio::test]
async fn the_full_ledger_flow() {
    let emulator = emu::start().await;
    let (client, sandbox) = emulator
        .create_sandbox_with(&types::CreateSandbox {
            name: Some("kitchen sink".parse().expect("name")),
            ..Default::default()
        })
        .await
        .expect("sandbox");
    assert_eq!(client.get_sandbox().await.expect("sandbox").id, sandbox.id);

    // Catalogue.
    let mug = client
        .create_item(types::CreateItem::builder().sku("MUG-BLU").name("Mug, blue").low_stock_threshold(5i64))
        .await
        .expect("item");
    assert_eq!(
        (mug.sku.as_str(), mug.status.clone(), mug.etag().version()),
        ("MUG-BLU", Status::Active, Some(mug.version))
    );
    let wh =
        client.create_location(types::CreateLocation::builder().code("WH-1").name("Main warehouse")).await.expect("wh");
    let store = client
        .create_location(
            types::CreateLocation::builder().code("ST-1").name("Store").kind(Some(types::LocationKind::Store)),
        )
        .await
        .expect("store");

    // Reads and conditional reads.
    let read = client.get_item(&mug.id).await.expect("read");
    assert_eq!(read.etag(), mug.etag());
    assert_eq!(client.get_item_if_changed(&mug.id, mug.etag()).await.expect("304"), None);
    let renamed =
        client.update_item(&mug.id, mug.etag(), types::UpdateItem::builder().name("Mug, navy")).await.expect("update");
    assert_eq!(renamed.name, "Mug, navy");
    assert_ne!(renamed.etag(), mug.etag());
    let changed = client.get_item_if_changed(&mug.id, mug.etag()).await.expect("200").expect("changed");
    assert_eq!(changed.name, "Mug, navy");
    let wh2 = client
        .update_location_with(&wh.id, |_| types::UpdateLocation::builder().name("Main warehouse (north)"))
        .await
        .expect("location update");
    assert_eq!(wh2.name, "Main warehouse (north)");
    assert_eq!(client.get_location(&wh.id).await.expect("read").etag(), wh2.etag());

    // The ledger.
    let receipt = client
        .create_movement(CreateMovement::receipt(&mug.id, &wh.id, 10).with_reference("PO-1").expect("ref"))
        .await
        .expect("receipt");
    assert_eq!(
        (receipt.type_.clone(), receipt.lines[0].delta, receipt.lines[0].quantity_after),
        (MovementType::Receipt, 10, 10)
    );
    assert_eq!(receipt.etag().as_str(), "\"1\"", "the level's ETag");
    let level = client.get_stock_level(&mug.id, &wh.id).await.expect("level");
    assert_eq!((level.quantity, level.version), (10, 1));
    assert_eq!(client.get_stock_level_if_changed(&mug.id, &wh.id, level.etag()).await.expect("304"), None);

    let sale = client
        .create_movement_if_match(CreateMovement::shipment(&mug.id, &wh.id, 3), level.etag())
        .await
        .expect("sale");
    assert_eq!(sale.lines[0].quantity_after, 7);
    let stale = client.create_movement_if_match(CreateMovement::shipment(&mug.id, &wh.id, 3), level.etag()).await;
    assert!(matches!(stale, Err(Error::PreconditionFailed(_))), "{stale:?}");

    let too_many = client.create_movement(CreateMovement::shipment(&mug.id, &wh.id, 100)).await;
    assert!(matches!(&too_many, Err(Error::Conflict(e)) if e.code == "insufficient_stock"), "{too_many:?}");

    let adjustment = client
        .create_movement(CreateMovement::adjustment(&mug.id, &wh.id, -1).with_reason("breakage").expect("reason"))
        .await
        .expect("adj");
    assert_eq!(adjustment.lines[0].quantity_after, 6);
    let transfer =
        client.create_movement(CreateMovement::transfer(&mug.id, &wh.id, &store.id, 2)).await.expect("transfer");
    assert_eq!(transfer.lines.len(), 2);

    let batch = client
        .create_movement_batch([
            CreateMovement::receipt(&mug.id, &store.id, 5),
            CreateMovement::shipment(&mug.id, &store.id, 1),
        ])
        .await
        .expect("batch");
    assert_eq!(batch.len(), 2);
    assert!(batch[0].sequence < batch[1].sequence);
    let failed = client
        .create_movement_batch([
            CreateMovement::receipt(&mug.id, &store.id, 5),
            CreateMovement::shipment(&mug.id, &store.id, 1000),
        ])
        .await;
    assert!(matches!(&failed, Err(Error::Conflict(_))), "all or nothing: {failed:?}");
    assert!(matches!(client.create_movement_batch([]).await, Err(Error::InvalidRequest(_))));

    let reversal = client.reverse_movement(&adjustment.id, types::ReverseMovement::default()).await.expect("reverse");
    assert_eq!(reversal.reverses.as_deref(), Some(adjustment.id.as_str()));
    let twice = client.reverse_movement(&adjustment.id, types::ReverseMovement::default()).await;
    assert!(matches!(&twice, Err(Error::Conflict(e)) if e.code == "already_reversed"), "{twice:?}");

    assert_eq!(client.get_movement(&receipt.id).await.expect("movement").id, receipt.id);
    let movements: Vec<_> = client
        .list_movements_stream(MovementQuery { item_id: Some(mug.id.clone()), limit: Some(2), ..Default::default() })
        .try_collect()
        .await
        .expect("movements");
    assert_eq!(movements.len(), 7, "receipt, sale, adjustment, transfer, 2 in the batch, reversal");
    assert!(movements.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let receipts = client
        .list_movements(&MovementQuery { type_: Some(types::ListStockMovementsType::Receipt), ..Default::default() })
        .await
        .expect("receipts");
    assert_eq!(receipts.data.len(), 2);

    // The snapshot agrees with the ledger.
    let levels: Vec<_> = client
        .list_stock_levels_stream(StockLevelQuery { item_id: Some(mug.id.clone()), ..Default::default() })
        .try_collect()
        .await
        .expect("levels");
    let at = |loc: &str| levels.iter().find(|l| l.location_id == loc).map(|l| l.quantity);
    assert_eq!((at(&wh.id), at(&store.id)), (Some(5), Some(6)));
    for level in &levels {
        let sum: i64 = movements
            .iter()
            .flat_map(|m| &m.lines)
            .filter(|l| l.location_id == level.location_id)
            .map(|l| l.delta)
            .sum();
        assert_eq!(level.quantity, sum, "quantity == Σ delta at {}", level.location_id);
    }
    let low = client
        .list_stock_levels(&StockLevelQuery { below_threshold: Some(true), ..Default::default() })
        .await
        .expect("low");
    assert!(low.data.iter().all(|l| l.quantity < 5));

    // As of a past time.
    let before = chrono::Utc::now();
    emulator.advance_clock(Duration::from_secs(3600)).await.expect("clock advanced");
    client.create_movement(CreateMovement::receipt(&mug.id, &wh.id, 100)).await.expect("later receipt");
    let then =
        client.get_stock_level_as_of(&mug.id, &wh.id, before + chrono::Duration::minutes(30)).await.expect("as of");
    assert_eq!(then.quantity, 5);
    assert_eq!(client.get_stock_level(&mug.id, &wh.id).await.expect("now").quantity, 105);

    // Events.
    let events: Vec<_> = client
        .list_events_stream(EventQuery { limit: Some(5), ..Default::default() })
        .try_collect()
        .await
        .expect("events");
    assert!(events.iter().any(|e| e.type_ == "item.created"));
    assert!(events.iter().any(|e| e.type_ == "stock_movement.created"));
    assert_eq!(client.get_event(&events[0].id).await.expect("event").id, events[0].id);
    let created = client
        .list_events(&EventQuery { type_: Some("item.created".to_owned()), ..Default::default() })
        .await
        .expect("filtered");
    assert_eq!(created.data.len(), 1);

    // Archive: still readable, takes no movements.
    let current = client.get_item(&mug.id).await.expect("read");
    let archived = client.archive_item(&mug.id, current.etag()).await.expect("archive");
    assert_eq!(archived.status, Status::Archived);
    let refused = client.create_movement(CreateMovement::receipt(&mug.id, &wh.id, 1)).await;
    assert!(matches!(&refused, Err(Error::Conflict(e)) if e.code == "item_archived"), "{refused:?}");
    let store_now = client.get_location(&store.id).await.expect("read");
    client.archive_location(&store.id, store_now.etag()).await.expect("archive location");
    let active = client
        .list_locations(&LocationQuery { status: Some(types::ListLocationsStatus::Active), ..Default::default() })
        .await
        .expect("list");
    assert_eq!(active.data.len(), 1);
    let found =
        client.list_items(&ItemQuery { q: Some("navy".to_owned()), ..Default::default() }).await.expect("search");
    assert_eq!(found.data.len(), 1);

    // Keys: roll, use the new one; the old one works during the grace period, then not.
    let rolled = client.roll_api_key().await.expect("roll");
    let fresh = client.with_api_key(rolled.secret_key.expose()).expect("client");
    assert_eq!(fresh.get_sandbox().await.expect("new key works").id, sandbox.id);
    client.get_sandbox().await.expect("old key still works");
    emulator.advance_clock(Duration::from_secs(25 * 3600)).await.expect("clock advanced");
    assert!(matches!(client.get_sandbox().await, Err(Error::Authentication(_))));

    // Reset keeps keys; delete ends them.
    fresh.reset_sandbox().await.expect("reset");
    assert!(fresh.list_items(&ItemQuery::default()).await.expect("list").data.is_empty());
    fresh.delete_sandbox().await.expect("delete");
    assert!(matches!(fresh.get_sandbox().await, Err(Error::Authentication(_))));

    emulator.shutdown().await;
}

#[tokio::test]
async fn a_sandbox_can_be_created_over_http_and_comes_as_a_client() {
    let emulator = emu::start().await;
    let (client, created) = twh::Client::builder()
        .base_url(emulator.base_url())
        .create_sandbox(types::CreateSandbox::builder().seed(Some(types::Seed::Demo)))
        .await
        .expect("sandbox over HTTP");
    assert!(created.secret_key.expose().starts_with("sk_test_"));
    assert!(!format!("{created:?}").contains(created.secret_key.expose()), "keys are redacted in Debug");
    let items = client.list_items(&ItemQuery::default()).await.expect("demo data");
    assert!(!items.data.is_empty(), "seed demo loads a catalogue");
    emulator.shutdown().await;
}

#[tokio::test]
async fn conditional_reads_of_movements_events_and_endpoints_answer_none_while_current() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;
    let receipt = client.create_movement(CreateMovement::receipt(&item.id, &location.id, 3)).await.expect("receipt");
    let movement = client.get_movement(&receipt.id).await.expect("movement");
    assert_eq!(client.get_movement_if_changed(&receipt.id, movement.etag()).await.expect("read"), None);
    let event = client.list_events(&EventQuery::default()).await.expect("events").data.remove(0);
    let read = client.get_event(&event.id).await.expect("event");
    assert_eq!(client.get_event_if_changed(&event.id, read.etag()).await.expect("read"), None);
    let endpoint = client
        .create_webhook_endpoint(
            types::CreateWebhookEndpoint::builder().url("http://127.0.0.1:9/hook").event_types(vec!["*".to_owned()]),
        )
        .await
        .expect("endpoint");
    assert_eq!(client.get_webhook_endpoint_if_changed(&endpoint.id, endpoint.etag()).await.expect("read"), None);
    let stale = twh::ETag::from_version(endpoint.version + 1);
    let changed = client.get_webhook_endpoint_if_changed(&endpoint.id, &stale).await.expect("read");
    assert_eq!(changed.map(|e| e.id.clone()), Some(endpoint.id.clone()), "another ETag reads it");
    emulator.shutdown().await;
}
