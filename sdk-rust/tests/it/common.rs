//! Shared helpers.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};
use twh::Client;
use wiremock::MockServer;

/// A client of a wiremock server, with `max_retries` retries.
pub fn mock_client(server: &MockServer, max_retries: u32) -> Client {
    Client::builder()
        .api_key("sk_test_mock")
        .base_url(server.uri())
        .max_retries(max_retries)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// An item as the API answers it.
pub fn item_json(id: &str) -> Value {
    json!({
        "id": id, "sku": "SKU-1", "name": "Item", "unit": "each", "attributes": {},
        "status": "active", "version": 1,
        "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z"
    })
}

/// A problem body.
pub fn problem(status: u16, code: &str) -> Value {
    json!({
        "type": "about:blank", "title": "Problem", "status": status, "detail": format!("{code} happened"),
        "code": code, "request_id": "req_mock", "errors": []
    })
}

/// A wiremock answer with a problem body.
pub fn problem_response(status: u16, code: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status)
        .insert_header("content-type", "application/problem+json")
        .set_body_json(problem(status, code))
}

/// A wiremock answer with an item and its ETag.
pub fn item_response(status: u16, id: &str) -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(status).insert_header("etag", "\"1\"").set_body_json(item_json(id))
}

/// A request body for an item.
pub fn new_item(sku: &str) -> twh::types::builder::CreateItem {
    twh::types::CreateItem::builder().sku(sku).name(format!("Item {sku}"))
}

#[cfg(feature = "emulator")]
pub mod emu {
    use twh::emulator::{Config, Emulator};
    use twh::types::{self, FaultAction};

    /// A started emulator.
    pub async fn start() -> Emulator {
        Emulator::start(Config::default()).await.expect("emulator")
    }

    /// A fault on one path prefix and method.
    pub fn fault(action: FaultAction, method: &str, path_prefix: &str, times: u32) -> types::FaultSpec {
        types::FaultSpec {
            action,
            delay_ms: None,
            method: Some(method.to_owned()),
            path_prefix: Some(path_prefix.to_owned()),
            sandbox_id: None,
            status: None,
            times: std::num::NonZeroU32::new(times).expect("times > 0"),
        }
    }

    /// An item and a location in a fresh sandbox.
    pub async fn item_and_location(client: &twh::Client) -> (types::Item, types::Location) {
        let item = client.create_item(super::new_item("MUG-BLU")).await.expect("item").into_inner();
        let location = client
            .create_location(types::CreateLocation::builder().code("WH-1").name("Main warehouse"))
            .await
            .expect("location")
            .into_inner();
        (item, location)
    }
}
