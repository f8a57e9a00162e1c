//! The answers that carry a webhook signing secret (create, rotate-secret and
//! `get_webhook_endpoint_secret`), with the secret as a [`Secret`], whose `Debug` never prints
//! it. Every other answer is the generated `WebhookEndpoint`, which has no secret. (The endpoint
//! and delivery methods are generated; verifying what arrives is [`crate::webhooks`].)

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::webhooks::Secret;

/// A webhook endpoint with its signing secret: the answer of create and rotate-secret. (The
/// document's `WebhookEndpointWithSecret`, with the secret as a [`Secret`], so that `Debug` does
/// not print it.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpointWithSecret {
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

/// An endpoint's current signing secret (`get_webhook_endpoint_secret`, secret keys only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpointSecret {
    /// The signing secret (`whsec_…`), for [`crate::webhooks::verify`].
    #[serde(with = "secret_text")]
    pub secret: Secret,
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
