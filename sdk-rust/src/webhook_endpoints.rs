//! Webhook endpoints and their deliveries: register where events go, rotate secrets, test,
//! inspect and replay deliveries. Verifying what arrives is [`crate::webhooks`].

use std::fmt::Display;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::etag::{ETag, ResponseValueExt, Versioned};
use crate::idempotency::Post;
use crate::items::convert;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, ReplayCount, WebhookDelivery};
use crate::webhooks::Secret;
use crate::{Client, Result};

/// A webhook endpoint. (The document's `WebhookEndpoint`, with its signing secret as a
/// [`Secret`], so that `Debug` does not print it.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Subscribed event types (`*` for all).
    pub event_types: Vec<String>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// The signing secret (`whsec_…`), for [`crate::webhooks::verify`].
    #[serde(with = "secret_text")]
    pub secret: Secret,
    /// Retry delays in seconds, if not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// Rises by one on every change; the ETag is `"<version>"`.
    pub version: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Time of the last change.
    pub updated_at: DateTime<Utc>,
}

mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::webhooks::Secret;

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let text = String::deserialize(d)?;
        Secret::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Filters of [`Client::list_webhook_endpoints`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookEndpointQuery {
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

/// Filters of [`Client::list_webhook_deliveries`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookDeliveryQuery {
    /// Only deliveries to this endpoint.
    pub endpoint_id: Option<String>,
    /// Only deliveries of this event.
    pub event_id: Option<String>,
    /// Only deliveries in this state.
    pub status: Option<types::ListWebhookDeliveriesStatus>,
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// Registers an endpoint: `types::CreateWebhookEndpoint::builder().url("https://…/hooks")
    /// .event_types(vec!["*".to_owned()])`. The answer carries its signing secret.
    pub fn create_webhook_endpoint<B>(&self, endpoint: B) -> Post<'_, Versioned<WebhookEndpoint>>
    where
        B: TryInto<types::CreateWebhookEndpoint>,
        B::Error: Display,
    {
        let body = convert(endpoint);
        Post::new(move |key, _| async move {
            self.send(self.raw.create_webhook_endpoint().idempotency_key(key).body(body?).send())
                .await?
                .into_versioned()
        })
    }

    /// Reads an endpoint with its ETag.
    pub async fn get_webhook_endpoint(&self, id: &str) -> Result<Versioned<WebhookEndpoint>> {
        self.send(self.raw.get_webhook_endpoint().id(id).send()).await?.into_versioned()
    }

    /// Reads an endpoint unless it still has `etag` (then `None`: yours is current).
    pub async fn get_webhook_endpoint_if_changed(
        &self,
        id: &str,
        etag: &ETag,
    ) -> Result<Option<Versioned<WebhookEndpoint>>> {
        let answer =
            self.send_if_changed(self.raw.get_webhook_endpoint().id(id).if_none_match(etag.as_str()).send()).await?;
        answer.map(ResponseValueExt::into_versioned).transpose()
    }

    /// Changes an endpoint (JSON merge patch) if it still has `etag`.
    pub async fn update_webhook_endpoint<B>(
        &self,
        id: &str,
        etag: &ETag,
        patch: B,
    ) -> Result<Versioned<WebhookEndpoint>>
    where
        B: TryInto<types::UpdateWebhookEndpoint>,
        B::Error: Display,
    {
        let patch: types::UpdateWebhookEndpoint = convert(patch)?;
        self.send(self.raw.update_webhook_endpoint().id(id).if_match(etag.as_str()).body(patch).send())
            .await?
            .into_versioned()
    }

    /// Deletes an endpoint if it still has `etag`.
    pub async fn delete_webhook_endpoint(&self, id: &str, etag: &ETag) -> Result<()> {
        self.send(self.raw.delete_webhook_endpoint().id(id).if_match(etag.as_str()).send()).await?;
        Ok(())
    }

    /// Issues a new signing secret; the old one also signs for 24 h, so deliveries carry two
    /// signatures meanwhile.
    pub fn rotate_webhook_secret<'a>(&'a self, id: &'a str) -> Post<'a, Versioned<WebhookEndpoint>> {
        Post::new(move |key, _| async move {
            self.send(self.raw.rotate_webhook_secret().id(id).idempotency_key(key).send()).await?.into_versioned()
        })
    }

    /// Sends a `ping` event to the endpoint now.
    pub fn test_webhook_endpoint<'a>(&'a self, id: &'a str) -> Post<'a, WebhookDelivery> {
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.test_webhook_endpoint().id(id).idempotency_key(key).send()).await?.into_inner())
        })
    }

    /// Re-queues the endpoint's dead deliveries (optionally within `since`..`until`); returns
    /// how many.
    pub fn replay_webhook_endpoint<'a, B>(&'a self, id: &'a str, replay: B) -> Post<'a, ReplayCount>
    where
        B: TryInto<types::ReplayDeliveries>,
        B::Error: Display,
    {
        let body = convert(replay);
        Post::new(move |key, _| async move {
            Ok(self
                .send(self.raw.replay_webhook_endpoint().id(id).idempotency_key(key).body(body?).send())
                .await?
                .into_inner())
        })
    }

    /// One page of endpoints.
    pub async fn list_webhook_endpoints(&self, query: &WebhookEndpointQuery) -> Result<Page<WebhookEndpoint>> {
        let mut call = self.raw.list_webhook_endpoints();
        if let Some(v) = limit(query.limit)? {
            call = call.limit(v);
        }
        if let Some(v) = &query.cursor {
            call = call.cursor(v.clone());
        }
        let list = self.send(call.send()).await?.into_inner();
        Ok(Page { data: list.data, next_cursor: list.next_cursor })
    }

    /// Every endpoint, page after page.
    pub fn list_webhook_endpoints_stream(
        &self,
        query: WebhookEndpointQuery,
    ) -> impl Stream<Item = Result<WebhookEndpoint>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = WebhookEndpointQuery { cursor, ..query.clone() };
            async move { self.list_webhook_endpoints(&page).await }
        })
    }

    /// Reads a delivery, with its attempts.
    pub async fn get_webhook_delivery(&self, id: &str) -> Result<WebhookDelivery> {
        Ok(self.send(self.raw.get_webhook_delivery().id(id).send()).await?.into_inner())
    }

    /// Sends a delivery again now.
    pub fn replay_webhook_delivery<'a>(&'a self, id: &'a str) -> Post<'a, WebhookDelivery> {
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.replay_webhook_delivery().id(id).idempotency_key(key).send()).await?.into_inner())
        })
    }

    /// One page of deliveries.
    pub async fn list_webhook_deliveries(&self, query: &WebhookDeliveryQuery) -> Result<Page<WebhookDelivery>> {
        let mut call = self.raw.list_webhook_deliveries();
        if let Some(v) = &query.endpoint_id {
            call = call.endpoint_id(v.clone());
        }
        if let Some(v) = &query.event_id {
            call = call.event_id(v.clone());
        }
        if let Some(v) = query.status {
            call = call.status(v);
        }
        if let Some(v) = limit(query.limit)? {
            call = call.limit(v);
        }
        if let Some(v) = &query.cursor {
            call = call.cursor(v.clone());
        }
        let list = self.send(call.send()).await?.into_inner();
        Ok(Page { data: list.data, next_cursor: list.next_cursor })
    }

    /// Every delivery matching `query`, page after page.
    pub fn list_webhook_deliveries_stream(
        &self,
        query: WebhookDeliveryQuery,
    ) -> impl Stream<Item = Result<WebhookDelivery>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = WebhookDeliveryQuery { cursor, ..query.clone() };
            async move { self.list_webhook_deliveries(&page).await }
        })
    }
}
