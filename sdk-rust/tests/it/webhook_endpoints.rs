//! Webhook endpoints against the emulator, and verification of what the emulator really sends
//! (deliveries to its built-in sink).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use twh::types::{self, CreateWebhookEndpoint};
use twh::{Error, WebhookDeliveryQuery, WebhookEndpointQuery};

use crate::common::{emu, new_item};
use crate::webhooks::verify_emulator_delivery;

/// The sink's entries once there are at least `count` (the dispatcher sends in the background).
async fn sink_entries(client: &twh::Client, sink: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = client.raw().emulator_list_sink().name(sink).send().await.expect("sink").into_inner();
        if list.data.len() >= count || Instant::now() > deadline {
            return list.data.iter().map(|e| serde_json::to_value(e).expect("json")).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn verifies_what_the_emulator_sends() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let sink = format!("{}/_emulator/sink/sdk-verify", emulator.base_url());
    let endpoint = client
        .create_webhook_endpoint(
            CreateWebhookEndpoint::builder().url(sink.as_str()).event_types(vec!["item.created".to_owned()]),
        )
        .await
        .expect("endpoint");
    assert!(!format!("{endpoint:?}").contains(&endpoint.secret.expose()[6..]), "the secret is redacted in Debug");

    let item = client.create_item(new_item("HOOK-1")).await.expect("item");
    let entries = sink_entries(&client, "sdk-verify", 1).await;
    assert_eq!(entries.len(), 1, "one delivery: {entries:?}");
    let event = verify_emulator_delivery(&entries[0], &endpoint.secret).expect("the emulator's signature verifies");
    assert_eq!(event.type_, "item.created");
    assert_eq!(event.data["id"], item.id.as_str());
    assert!(verify_emulator_delivery(&entries[0], &twh::webhooks::Secret::generate()).is_err());

    // After a rotation both secrets sign, and either verifies.
    let rotated = client.rotate_webhook_secret(&endpoint.id).await.expect("rotate");
    assert_ne!(rotated.secret, endpoint.secret);
    client.create_item(new_item("HOOK-2")).await.expect("item");
    let entries = sink_entries(&client, "sdk-verify", 2).await;
    let latest = entries.last().expect("a second delivery");
    verify_emulator_delivery(latest, &endpoint.secret).expect("the old secret still signs");
    verify_emulator_delivery(latest, &rotated.secret).expect("the new secret signs");
    emulator.shutdown().await;
}

#[tokio::test]
async fn endpoints_and_deliveries_through_the_sdk() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let sink = format!("{}/_emulator/sink/sdk-endpoints", emulator.base_url());
    let endpoint = client
        .create_webhook_endpoint(CreateWebhookEndpoint::builder().url(sink.as_str()).event_types(vec!["*".to_owned()]))
        .await
        .expect("endpoint");

    let read = client.get_webhook_endpoint(&endpoint.id).await.expect("read");
    assert_eq!(read.etag(), endpoint.etag());
    let listed: Vec<_> =
        client.list_webhook_endpoints_stream(WebhookEndpointQuery::default()).try_collect().await.expect("list");
    assert_eq!(listed.len(), 1);

    let ping = client.test_webhook_endpoint(&endpoint.id).await.expect("test");
    assert_eq!(ping.endpoint_id, endpoint.id);
    let deadline = Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let d = client.get_webhook_delivery(&ping.id).await.expect("delivery");
        if d.status == types::DeliveryStatus::Succeeded || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered.status, types::DeliveryStatus::Succeeded, "{delivered:?}");
    let deliveries = client
        .list_webhook_deliveries(&WebhookDeliveryQuery { endpoint_id: Some(endpoint.id.clone()), ..Default::default() })
        .await
        .expect("deliveries");
    assert!(deliveries.data.iter().any(|d| d.id == ping.id));
    client.replay_webhook_delivery(&ping.id).await.expect("replay");

    let disabled = client
        .update_webhook_endpoint(&endpoint.id, read.etag(), types::UpdateWebhookEndpoint::builder().enabled(false))
        .await
        .expect("update");
    assert!(!disabled.enabled);
    let stale = client.delete_webhook_endpoint(&endpoint.id, read.etag()).await;
    assert!(matches!(stale, Err(Error::PreconditionFailed(_))), "{stale:?}");
    client.delete_webhook_endpoint(&endpoint.id, disabled.etag()).await.expect("delete");
    assert!(matches!(client.get_webhook_endpoint(&endpoint.id).await, Err(Error::NotFound(_))));
    emulator.shutdown().await;
}
