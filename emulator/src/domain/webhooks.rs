//! Webhook endpoints and deliveries of one tenant: the outbox side of the event log. No HTTP.
//!
//! A delivery is one (event, endpoint) pair. Deliveries are created by [`Webhooks::fan_out`] in
//! the same critical section as the events they carry, so nothing committed is ever missed, and
//! live in the tenant state (not in a queue) until they succeed or die: the dispatcher only
//! claims due ones in bounded batches, so a burst of events costs records, never an unbounded
//! queue, and never blocks a request.
//!
//! Schedule: the first attempt is due at once; after a failure the next is due after 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts in all) of **emulator** time, plus up to 1% jitter
//! (at most 30 s), or later if the receiver sent `Retry-After`. Then the delivery is `dead` and a
//! `webhook_delivery.exhausted` event is written (never delivered to the endpoint that just
//! exhausted, so a dead endpoint cannot feed itself). The schedule can be set globally and per
//! endpoint. A 410 disables the endpoint (`webhook_endpoint.disabled`).

use std::collections::BTreeSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::chunked::ChunkedVec;
use super::error::{DomainError, ErrorKind};
use super::index::{Postings, Seek, page};
use super::ledger::{EventType, IfMatch, Ledger};
use super::model::{FieldError, double_option, not_null};
use super::paging::{Page, Window};
use crate::clock::Timestamp;
use crate::ids;

/// The default retry delays after a failed attempt, in seconds.
pub const DEFAULT_RETRY_SCHEDULE_SECONDS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// Most endpoints per tenant.
pub const ENDPOINT_COUNT_MAX: usize = 100;
/// Most entries in a retry schedule.
pub const RETRY_SCHEDULE_LEN_MAX: usize = 20;
/// Longest delay in a retry schedule, in seconds (7 days).
pub const RETRY_DELAY_MAX_SECONDS: u64 = 7 * 24 * 3600;
/// Longest stored attempt error, in characters.
pub const ATTEMPT_ERROR_LEN_MAX: usize = 500;
/// Longest endpoint URL, in bytes.
pub const URL_LEN_MAX: usize = 2048;
/// How long a rotated secret keeps signing, in seconds of emulator time.
pub const SECRET_OVERLAP_SECONDS: i64 = 24 * 3600;

/// `POST /v1/webhook-endpoints`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// Where deliveries are POSTed (`http://` or `https://`).
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// `["*"]` for every event, or a list of event types.
    #[schemars(length(min = 1, max = 50))]
    pub event_types: Vec<String>,
    /// For people.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub description: Option<String>,
    /// Retry delays after a failed attempt, in seconds (default 5, 300, 1800, 7200, 18000,
    /// 36000, 36000).
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub retry_schedule_seconds: Option<Vec<u64>>,
}

/// `PATCH /v1/webhook-endpoints/{id}` (JSON merge patch).
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    /// New URL.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "String", length(min = 1, max = 2048))]
    pub url: Option<String>,
    /// New event types.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "Vec<String>", length(min = 1, max = 50))]
    pub event_types: Option<Vec<String>>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<String>", length(max = 500))]
    pub description: Option<Option<String>>,
    /// Enable (for example after a 410 disabled it) or disable.
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(with = "bool")]
    pub enabled: Option<bool>,
    /// New retry schedule; `null` goes back to the emulator's default.
    #[serde(default, deserialize_with = "double_option")]
    #[schemars(with = "Option<Vec<u64>>", length(max = 20))]
    pub retry_schedule_seconds: Option<Option<Vec<u64>>>,
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Subscribed event types (`*` for all).
    pub event_types: Vec<String>,
    /// For people.
    pub description: Option<String>,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// Retry delays in seconds, if not the default.
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// Rises by one on every change; the ETag is `"<version>"`.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the last change.
    pub updated_at: Timestamp,
}

/// A webhook endpoint with its signing secret: the answer of create and rotate-secret only.
/// Every other answer is a [`WebhookEndpoint`], which has no secret, so a
/// restricted key, which may read endpoints, never sees one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointWithSecret {
    /// `we_…`
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Subscribed event types (`*` for all).
    pub event_types: Vec<String>,
    /// For people.
    pub description: Option<String>,
    /// Whether deliveries are sent.
    pub enabled: bool,
    /// `whsec_…`: the signing secret.
    pub secret: String,
    /// Retry delays in seconds, if not the default.
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// Rises by one on every change; the ETag is `"<version>"`.
    pub version: u64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Time of the last change.
    pub updated_at: Timestamp,
}

/// `GET /v1/webhook-endpoints/{id}/secret` (secret keys only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpointSecret {
    /// `whsec_…`: the current signing secret.
    pub secret: String,
}

/// Where a delivery stands.
///
/// - `pending`: not attempted yet (or replayed);
/// - `failed`: the last attempt failed and another is scheduled;
/// - `succeeded`: a 2xx arrived;
/// - `dead`: no more attempts (the dead-letter queue); replay re-queues it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Failed,
    Succeeded,
    Dead,
}

/// One attempt of a delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Attempt {
    /// When (emulator clock).
    pub at: Timestamp,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// A delivery of one event to one endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WebhookDelivery {
    /// `msg_…`
    pub id: String,
    /// The endpoint.
    pub endpoint_id: String,
    /// The event (also the `webhook-id` header of every attempt).
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the next attempt is due, if one is.
    pub next_attempt_at: Option<Timestamp>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// When it was created.
    pub created_at: Timestamp,
}

/// `POST /v1/webhook-endpoints/{id}/replay`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayDeliveries {
    /// Which deliveries: only `dead` is accepted (the default).
    #[serde(default = "dead")]
    pub status: DeliveryStatus,
    /// Only deliveries created at or after this time.
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// Only deliveries created before this time.
    #[serde(default)]
    pub until: Option<Timestamp>,
}

/// The one status a bulk replay takes, so callers may leave it out.
fn dead() -> DeliveryStatus {
    DeliveryStatus::Dead
}

/// How many deliveries a bulk replay re-queued.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReplayCount {
    /// Re-queued deliveries.
    pub count: u64,
}

mod secret_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use twh_webhooks::Secret;
    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&s.expose())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Secret::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A secret that was rotated out and still signs until `until`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The secret.
    #[serde(with = "secret_text")]
    pub secret: twh_webhooks::Secret,
    /// Until when it signs.
    pub until: Timestamp,
}

/// A stored endpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// URL.
    pub url: String,
    /// Event types.
    pub event_types: Vec<String>,
    /// Description.
    pub description: Option<String>,
    /// Enabled.
    pub enabled: bool,
    /// Current secret.
    #[serde(with = "secret_text")]
    pub secret: twh_webhooks::Secret,
    /// The rotated-out secret, while it still signs.
    pub previous: Option<PreviousSecret>,
    /// Retry schedule override.
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// Version.
    pub version: u64,
    /// Created.
    pub created_at: Timestamp,
    /// Updated.
    pub updated_at: Timestamp,
    /// Deleted endpoints keep their record (ids stay unique) and answer 404.
    pub deleted: bool,
}

/// A stored delivery; its sequence is its position + 1.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Endpoint index.
    pub endpoint: u32,
    /// Event position in the log.
    pub event: u64,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts.
    pub attempts: Vec<Attempt>,
    /// Next attempt due.
    pub next_attempt_at: Option<Timestamp>,
    /// Failed attempts since it was created or last replayed (indexes the schedule).
    pub failures: u32,
    /// Created.
    pub created_at: Timestamp,
    /// Claimed by the dispatcher, attempt under way.
    #[serde(skip)]
    pub in_flight: bool,
}

/// A delivery claimed for sending: everything the dispatcher needs, owned.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Delivery sequence.
    pub delivery: u64,
    /// When it was due (emulator time; recorded as the attempt's time).
    pub due: Timestamp,
    /// Receiver URL.
    pub url: String,
    /// The event; its id is the `webhook-id`, its JSON the body. Rendered under the tenant lock
    /// but serialised after it (by the dispatcher), so a claim holds the lock briefly. `None`
    /// when the claimer said the attempt will not be sent (its URL is known unreachable): then
    /// it is not rendered at all.
    pub event: Option<super::model::Event>,
    /// Secrets that sign it (the current one, and a rotated one still in its overlap).
    pub secrets: Vec<twh_webhooks::Secret>,
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    /// The receiver's status, if it answered.
    pub status_code: Option<u16>,
    /// Duration in milliseconds.
    pub duration_ms: u64,
    /// Transport error or timeout, if any.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, in seconds.
    pub retry_after_seconds: Option<u64>,
}

/// The webhook state of one tenant.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Webhooks {
    endpoints: Vec<EndpointRecord>,
    deliveries: ChunkedVec<DeliveryRecord>,
    /// Deliveries waiting for an attempt, by due time.
    #[serde(skip)]
    schedule: BTreeSet<(Timestamp, u64)>,
    /// Delivery positions by endpoint index (list index; derived, rebuilt on load).
    #[serde(skip)]
    by_endpoint: Vec<Postings>,
    /// Delivery positions by event position.
    #[serde(skip)]
    by_event: ByEvent,
    /// Delivery positions by status (`DeliveryStatus as usize`); a status changes both ways.
    #[serde(skip)]
    by_status: [BTreeSet<u32>; 4],
    /// Deliveries changed since the durable store last took them (`None`: not tracked, the
    /// in-memory default).
    #[serde(skip)]
    dirty: Option<Vec<u64>>,
}

fn mark(dirty: &mut Option<Vec<u64>>, sequence: u64) {
    if let Some(d) = dirty {
        d.push(sequence);
    }
}

fn validate_endpoint(
    url: Option<&str>,
    event_types: Option<&[String]>,
    description: Option<&str>,
    schedule: Option<&[u64]>,
) -> Result<(), DomainError> {
    let mut errors = Vec::new();
    if let Some(url) = url {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        let host_ok = url.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if url.len() > URL_LEN_MAX || !scheme_ok || !host_ok || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(FieldError::new("url", format!("must be an http(s) URL of at most {URL_LEN_MAX} bytes")));
        }
    }
    if let Some(types) = event_types {
        if types.is_empty() || types.len() > 50 {
            errors.push(FieldError::new("event_types", "must list 1..=50 event types, or [\"*\"]"));
        }
        for (i, t) in types.iter().enumerate() {
            if t != "*" && EventType::parse(t).is_none() {
                errors.push(FieldError::new(format!("event_types[{i}]"), format!("unknown event type {t:?}")));
            }
        }
    }
    if description.is_some_and(|d| d.chars().count() > 500) {
        errors.push(FieldError::new("description", "must be at most 500 characters"));
    }
    if let Some(s) = schedule {
        if s.len() > RETRY_SCHEDULE_LEN_MAX || s.iter().any(|d| *d > RETRY_DELAY_MAX_SECONDS) {
            errors.push(FieldError::new(
                "retry_schedule_seconds",
                format!("at most {RETRY_SCHEDULE_LEN_MAX} delays, each at most {RETRY_DELAY_MAX_SECONDS} s"),
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(DomainError::validation(errors)) }
}

fn disabled() -> DomainError {
    DomainError::new(ErrorKind::EndpointDisabled, "The endpoint is disabled; enable it first (PATCH enabled: true).")
}

/// Delivery positions by event: one sorted vector of `event << 32 | position`, so the
/// deliveries of an event are one run of it, found by binary search. A commit fans its events
/// out in order, so a new delivery is an append. 8 bytes a delivery, where a map from each event
/// to a posting list of its own cost some 80 (a slot, a list header and an allocation per event,
/// and nearly every event has one delivery or a few). Event positions fit in 32 bits, as in the
/// ledger's own indexes.
#[derive(Clone, Debug, Default)]
struct ByEvent(Vec<u64>);

impl ByEvent {
    fn key(event: u64, position: u32) -> u64 {
        event << 32 | u64::from(position)
    }

    /// Adds a delivery: an append unless its event is older than the last one's.
    fn add(&mut self, event: u64, position: u32) {
        let key = Self::key(event, position);
        if self.0.last().is_none_or(|last| *last < key) {
            self.0.push(key);
        } else if let Err(i) = self.0.binary_search(&key) {
            self.0.insert(i, key);
        }
    }

    /// The positions of the deliveries of `event`.
    fn run(&self, event: u64) -> EventRun<'_> {
        let from = self.0.partition_point(|k| *k < Self::key(event, 0));
        let len = self.0[from..].partition_point(|k| *k >> 32 == event);
        EventRun(&self.0[from..from + len])
    }

    fn bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<u64>()
    }
}

/// The deliveries of one event: keys of one event, so ordered by position.
struct EventRun<'a>(&'a [u64]);

impl EventRun<'_> {
    fn position(key: u64) -> u32 {
        (key & u64::from(u32::MAX)) as u32
    }
}

impl Seek for EventRun<'_> {
    fn seek(&self, from: u32) -> Option<u32> {
        let i = self.0.partition_point(|k| Self::position(*k) < from);
        self.0.get(i).map(|k| Self::position(*k))
    }
    fn count(&self) -> usize {
        self.0.len()
    }
}

/// Adds the delivery at position `p` to the list indexes by endpoint and status.
fn index_delivery(by_endpoint: &mut Vec<Postings>, by_status: &mut [BTreeSet<u32>; 4], p: u32, d: &DeliveryRecord) {
    let e = d.endpoint as usize;
    if by_endpoint.len() <= e {
        by_endpoint.resize_with(e + 1, Postings::default);
    }
    by_endpoint[e].push(p);
    by_status[d.status as usize].insert(p);
}

/// Changes a delivery's status (sequence `seq`) and moves it between the status indexes.
fn set_status(by_status: &mut [BTreeSet<u32>; 4], seq: u64, d: &mut DeliveryRecord, to: DeliveryStatus) {
    let p = (seq - 1) as u32;
    by_status[d.status as usize].remove(&p);
    by_status[to as usize].insert(p);
    d.status = to;
}

fn truncate(text: String) -> String {
    if text.chars().count() <= ATTEMPT_ERROR_LEN_MAX {
        text
    } else {
        text.chars().take(ATTEMPT_ERROR_LEN_MAX).collect()
    }
}

impl Webhooks {
    /// Starts (or keeps) noting which deliveries change, for the durable store.
    pub fn track(&mut self) {
        self.dirty.get_or_insert_with(Vec::new);
    }

    /// The deliveries changed since the last call, each once, by sequence.
    pub fn take_changed_deliveries(&mut self) -> Vec<(u64, &DeliveryRecord)> {
        let Some(dirty) = self.dirty.as_mut() else { return Vec::new() };
        if dirty.is_empty() {
            return Vec::new();
        }
        let mut seqs = std::mem::take(dirty);
        seqs.sort_unstable();
        seqs.dedup();
        seqs.into_iter()
            .filter_map(|s| Some((s, self.deliveries.get(usize::try_from(s).ok()?.checked_sub(1)?)?)))
            .collect()
    }

    /// Puts a stored delivery back (recovery): at its sequence, or appended right after the last.
    pub fn restore_delivery(&mut self, sequence: u64, d: DeliveryRecord) -> Result<(), String> {
        let len = self.deliveries.len() as u64;
        if sequence == len + 1 {
            self.deliveries.push(d);
        } else if let Some(slot) = sequence.checked_sub(1).and_then(|i| self.deliveries.get_mut(i as usize)) {
            *slot = d;
        } else {
            return Err(format!("delivery {sequence} follows a gap"));
        }
        Ok(())
    }

    /// The endpoints as stored.
    pub fn endpoint_records(&self) -> &[EndpointRecord] {
        &self.endpoints
    }

    /// Puts the stored endpoints back (recovery).
    pub fn restore_endpoints(&mut self, endpoints: Vec<EndpointRecord>) {
        self.endpoints = endpoints;
    }

    /// A cheap summary that changes whenever an endpoint does (its version, state or secrets).
    pub fn endpoints_stamp(&self, h: &mut impl std::hash::Hasher) {
        h.write_usize(self.endpoints.len());
        for e in &self.endpoints {
            h.write_u64(e.version);
            h.write_u8(u8::from(e.enabled) | u8::from(e.deleted) << 1 | u8::from(e.previous.is_some()) << 2);
        }
    }

    /// Checks every reference and rebuilds the schedule and the list indexes after
    /// deserialisation (they are not stored).
    pub fn rebuild(&mut self, events: u64) -> Result<(), String> {
        self.by_endpoint = Vec::new();
        self.by_status = Default::default();
        let mut by_event = Vec::with_capacity(self.deliveries.len());
        for p in 0..self.deliveries.len() {
            if let Some(d) = self.deliveries.get(p) {
                // Every reference resolves: the dispatcher and reads index by them.
                if d.endpoint as usize >= self.endpoints.len() {
                    return Err(format!("delivery {} names endpoint {}, which does not exist", p + 1, d.endpoint + 1));
                }
                if d.event == 0 || d.event > events {
                    return Err(format!("delivery {} names event {}, which does not exist", p + 1, d.event));
                }
                index_delivery(&mut self.by_endpoint, &mut self.by_status, p as u32, d);
                by_event.push(ByEvent::key(d.event, p as u32));
            }
        }
        // Sorted once, whatever order a loaded document gave its deliveries.
        by_event.sort_unstable();
        self.by_event = ByEvent(by_event);
        self.schedule = self
            .deliveries
            .iter_from(0)
            .enumerate()
            .filter_map(|(p, d)| d.next_attempt_at.map(|t| (t, p as u64 + 1)))
            .collect();
        Ok(())
    }

    fn endpoint_id(tag: &str, index: usize) -> String {
        ids::format("we", tag, index as u64 + 1)
    }

    fn delivery_id(tag: &str, sequence: u64) -> String {
        ids::format("msg", tag, sequence)
    }

    fn endpoint_index(&self, tag: &str, id: &str) -> Result<usize, DomainError> {
        ids::parse("we", tag, id)
            .map(|p| (p - 1) as usize)
            .filter(|i| self.endpoints.get(*i).is_some_and(|e| !e.deleted))
            .ok_or_else(|| DomainError::not_found("webhook endpoint"))
    }

    fn delivery_sequence(&self, tag: &str, id: &str) -> Result<u64, DomainError> {
        ids::parse("msg", tag, id)
            .filter(|s| *s <= self.deliveries.len() as u64)
            .ok_or_else(|| DomainError::not_found("webhook delivery"))
    }

    fn render_endpoint(&self, tag: &str, index: usize) -> WebhookEndpoint {
        let e = &self.endpoints[index];
        WebhookEndpoint {
            id: Self::endpoint_id(tag, index),
            url: e.url.clone(),
            event_types: e.event_types.clone(),
            description: e.description.clone(),
            enabled: e.enabled,
            retry_schedule_seconds: e.retry_schedule_seconds.clone(),
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }

    fn render_with_secret(&self, tag: &str, index: usize) -> WebhookEndpointWithSecret {
        let e = self.render_endpoint(tag, index);
        WebhookEndpointWithSecret {
            id: e.id,
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            enabled: e.enabled,
            secret: self.endpoints[index].secret.expose(),
            retry_schedule_seconds: e.retry_schedule_seconds,
            version: e.version,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }

    /// `GET /v1/webhook-endpoints/{id}/secret`: the current signing secret.
    pub fn endpoint_secret(&self, tag: &str, id: &str) -> Result<WebhookEndpointSecret, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        Ok(WebhookEndpointSecret { secret: self.endpoints[i].secret.expose() })
    }

    fn render_delivery(&self, ledger: &Ledger, sequence: u64) -> Option<WebhookDelivery> {
        let d = self.deliveries.get(usize::try_from(sequence).ok()?.checked_sub(1)?)?;
        let (event_id, event_type) = ledger.event_head(d.event as usize - 1).unwrap_or_default();
        Some(WebhookDelivery {
            id: Self::delivery_id(&ledger.tag, sequence),
            endpoint_id: Self::endpoint_id(&ledger.tag, d.endpoint as usize),
            event_id,
            event_type,
            status: d.status,
            next_attempt_at: d.next_attempt_at,
            attempts: d.attempts.clone(),
            created_at: d.created_at,
        })
    }

    /// `POST /v1/webhook-endpoints`, with a new random secret.
    pub fn create_endpoint(
        &mut self,
        tag: &str,
        req: CreateWebhookEndpoint,
        now: Timestamp,
    ) -> Result<WebhookEndpointWithSecret, DomainError> {
        self.create_endpoint_with(tag, req, twh_webhooks::Secret::generate(), now)
    }

    /// `POST /v1/webhook-endpoints`, signing with `secret` (see [`new_secret`]).
    pub fn create_endpoint_with(
        &mut self,
        tag: &str,
        req: CreateWebhookEndpoint,
        secret: twh_webhooks::Secret,
        now: Timestamp,
    ) -> Result<WebhookEndpointWithSecret, DomainError> {
        validate_endpoint(
            Some(&req.url),
            Some(&req.event_types),
            req.description.as_deref(),
            req.retry_schedule_seconds.as_deref(),
        )?;
        if self.endpoints.iter().filter(|e| !e.deleted).count() >= ENDPOINT_COUNT_MAX {
            return Err(DomainError::validation(vec![FieldError::new(
                "url",
                format!("a sandbox has at most {ENDPOINT_COUNT_MAX} webhook endpoints"),
            )]));
        }
        self.endpoints.push(EndpointRecord {
            url: req.url,
            event_types: req.event_types,
            description: req.description,
            enabled: true,
            secret,
            previous: None,
            retry_schedule_seconds: req.retry_schedule_seconds,
            version: 1,
            created_at: now,
            updated_at: now,
            deleted: false,
        });
        Ok(self.render_with_secret(tag, self.endpoints.len() - 1))
    }

    /// `GET /v1/webhook-endpoints/{id}`.
    pub fn endpoint(&self, tag: &str, id: &str) -> Result<WebhookEndpoint, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        Ok(self.render_endpoint(tag, i))
    }

    /// `GET /v1/webhook-endpoints`.
    pub fn endpoints(&self, tag: &str, window: Window) -> Page<WebhookEndpoint> {
        let live: Vec<usize> = (0..self.endpoints.len()).filter(|i| !self.endpoints[*i].deleted).collect();
        let data: Vec<_> =
            live.iter().skip(window.start).take(window.limit).map(|i| self.render_endpoint(tag, *i)).collect();
        let next = (window.start + data.len() < live.len()).then_some(window.start + data.len());
        Page { data, next }
    }

    /// `PATCH /v1/webhook-endpoints/{id}`.
    pub fn update_endpoint(
        &mut self,
        tag: &str,
        id: &str,
        patch: UpdateWebhookEndpoint,
        if_match: &IfMatch,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        // The body before the precondition (RFC 9110 §13.2.1), as for items and locations.
        validate_endpoint(
            patch.url.as_deref(),
            patch.event_types.as_deref(),
            patch.description.as_ref().and_then(|d| d.as_deref()),
            patch.retry_schedule_seconds.as_ref().and_then(|r| r.as_deref()),
        )?;
        if_match.check(self.endpoints[i].version)?;
        let e = &mut self.endpoints[i];
        if let Some(v) = patch.url {
            e.url = v;
        }
        if let Some(v) = patch.event_types {
            e.event_types = v;
        }
        if let Some(v) = patch.description {
            e.description = v;
        }
        if let Some(v) = patch.enabled {
            e.enabled = v;
        }
        if let Some(v) = patch.retry_schedule_seconds {
            e.retry_schedule_seconds = v;
        }
        e.version += 1;
        e.updated_at = now;
        Ok(self.render_endpoint(tag, i))
    }

    /// `DELETE /v1/webhook-endpoints/{id}`: its pending deliveries stop (they become `dead`).
    pub fn delete_endpoint(&mut self, tag: &str, id: &str, if_match: &IfMatch) -> Result<(), DomainError> {
        let i = self.endpoint_index(tag, id)?;
        if_match.check(self.endpoints[i].version)?;
        self.endpoints[i].deleted = true;
        self.endpoints[i].enabled = false;
        self.stop_endpoint(i);
        Ok(())
    }

    /// Every pending delivery of endpoint `i` becomes dead (no further attempts).
    fn stop_endpoint(&mut self, i: usize) {
        let due: Vec<(Timestamp, u64)> = self.schedule.iter().copied().collect();
        for (t, seq) in due {
            mark(&mut self.dirty, seq);
            let Some(d) = self.deliveries.get_mut((seq - 1) as usize) else { continue };
            if d.endpoint as usize == i {
                set_status(&mut self.by_status, seq, d, DeliveryStatus::Dead);
                d.next_attempt_at = None;
                self.schedule.remove(&(t, seq));
            }
        }
    }

    /// `POST /v1/webhook-endpoints/{id}/rotate-secret`: a new secret; the old one also signs for
    /// 24 h of emulator time.
    pub fn rotate_secret(
        &mut self,
        tag: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<WebhookEndpointWithSecret, DomainError> {
        self.rotate_secret_to(tag, id, twh_webhooks::Secret::generate(), now)
    }

    /// [`Webhooks::rotate_secret`] to `secret` (see [`new_secret`]).
    pub fn rotate_secret_to(
        &mut self,
        tag: &str,
        id: &str,
        secret: twh_webhooks::Secret,
        now: Timestamp,
    ) -> Result<WebhookEndpointWithSecret, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        let e = &mut self.endpoints[i];
        let old = std::mem::replace(&mut e.secret, secret);
        e.previous = Some(PreviousSecret { secret: old, until: now.plus_seconds(SECRET_OVERLAP_SECONDS) });
        e.version += 1;
        e.updated_at = now;
        Ok(self.render_with_secret(tag, i))
    }

    /// The endpoint index of `id`, for the `test` ping.
    pub fn ping_target(&self, tag: &str, id: &str) -> Result<usize, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        if !self.endpoints[i].enabled {
            return Err(disabled());
        }
        Ok(i)
    }

    /// Creates the deliveries of the events from position `from` on; `only` limits them to one
    /// endpoint (the `test` ping).
    pub fn fan_out(&mut self, ledger: &Ledger, from: usize, only: Option<usize>, now: Timestamp) {
        if self.endpoints.iter().all(|e| !e.enabled) {
            return;
        }
        for position in from..ledger.event_count() {
            let Some((_, kind)) = ledger.event_head(position) else { continue };
            let concerns = ledger.event_endpoint(position);
            for (i, e) in self.endpoints.iter().enumerate() {
                let wanted = match only {
                    Some(target) => target == i,
                    None => kind != "ping" && e.event_types.iter().any(|t| t == "*" || *t == kind),
                };
                let own_exhaustion = kind == "webhook_delivery.exhausted"
                    && concerns.as_deref() == Some(Self::endpoint_id(&ledger.tag, i).as_str());
                if !e.enabled || !wanted || own_exhaustion {
                    continue;
                }
                let sequence = self.deliveries.len() as u64 + 1;
                mark(&mut self.dirty, sequence);
                let d = DeliveryRecord {
                    endpoint: i as u32,
                    event: position as u64 + 1,
                    status: DeliveryStatus::Pending,
                    attempts: Vec::new(),
                    next_attempt_at: Some(now),
                    failures: 0,
                    created_at: now,
                    in_flight: false,
                };
                let p = self.deliveries.len();
                index_delivery(&mut self.by_endpoint, &mut self.by_status, p as u32, &d);
                self.by_event.add(d.event, p as u32);
                self.deliveries.push(d);
                self.schedule.insert((now, sequence));
            }
        }
    }

    /// The earliest due time of a waiting delivery.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.schedule.first().map(|(t, _)| *t)
    }

    /// Moves every delivery due at or before `until` to `to` (a hard `webhook_attempts` quota is
    /// used up until then); status and failure count stay. Returns how many moved.
    pub fn defer_due(&mut self, until: Timestamp, to: Timestamp) -> usize {
        let due: Vec<(Timestamp, u64)> = self.schedule.range(..=(until, u64::MAX)).copied().collect();
        for (t, seq) in &due {
            self.schedule.remove(&(*t, *seq));
            mark(&mut self.dirty, *seq);
            if let Some(d) = self.deliveries.get_mut((seq - 1) as usize) {
                d.next_attempt_at = Some(to);
            }
            self.schedule.insert((to, *seq));
        }
        due.len()
    }

    /// Number of deliveries waiting for an attempt.
    pub fn waiting(&self) -> usize {
        self.schedule.len()
    }

    /// Heap bytes held by the deliveries' list indexes (by endpoint, by event, by status),
    /// counted as [`Ledger::index_bytes`] counts the ledger's: vectors by capacity, a status set
    /// at 8 bytes per position. The retry schedule is the dispatcher's queue, not a list index, and is not
    /// counted.
    pub fn index_bytes(&self) -> usize {
        let by_endpoint = self.by_endpoint.iter().map(Postings::bytes).sum::<usize>()
            + self.by_endpoint.capacity() * std::mem::size_of::<Postings>();
        let by_event = self.by_event.bytes();
        let by_status = self.by_status.iter().map(BTreeSet::len).sum::<usize>() * 8;
        by_endpoint + by_event + by_status
    }

    /// How many deliveries have `status` (from the status index: no scan).
    pub fn status_count(&self, status: DeliveryStatus) -> usize {
        self.by_status[status as usize].len()
    }

    /// Claims up to `limit` deliveries due at or before `until`, oldest first; `send(url)` says
    /// whether an attempt to `url` will really be sent (else its event is not rendered).
    pub fn claim_due(
        &mut self,
        ledger: &Ledger,
        until: Timestamp,
        limit: usize,
        mut send: impl FnMut(&str) -> bool,
    ) -> Vec<Claimed> {
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(&(due, seq)) = self.schedule.first() else { break };
            if due > until {
                break;
            }
            self.schedule.remove(&(due, seq));
            mark(&mut self.dirty, seq);
            let Some(d) = self.deliveries.get_mut((seq - 1) as usize) else { continue };
            let e = &self.endpoints[d.endpoint as usize];
            if !e.enabled {
                set_status(&mut self.by_status, seq, d, DeliveryStatus::Dead);
                d.next_attempt_at = None;
                continue;
            }
            d.in_flight = true;
            let event = if send(&e.url) {
                let Some(event) = ledger.event_at(d.event as usize - 1) else { continue };
                Some(event)
            } else {
                None
            };
            let mut secrets = vec![e.secret.clone()];
            if let Some(p) = e.previous.as_ref().filter(|p| p.until > due) {
                secrets.push(p.secret.clone());
            }
            out.push(Claimed { delivery: seq, due, url: e.url.clone(), event, secrets });
        }
        out
    }

    /// Records an attempt; returns the events it causes (exhaustion, endpoint disabled), which
    /// the caller writes to the log and fans out.
    pub fn record(
        &mut self,
        ledger: &Ledger,
        delivery: u64,
        at: Timestamp,
        result: AttemptResult,
        default_schedule: &[u64],
        ids: &ids::Generator,
    ) -> Vec<(EventType, serde_json::Value)> {
        let mut events = Vec::new();
        mark(&mut self.dirty, delivery);
        let Some(d) = self.deliveries.get_mut((delivery - 1) as usize) else { return events };
        d.in_flight = false;
        let ok = result.error.is_none() && result.status_code.is_some_and(|s| (200..300).contains(&s));
        d.attempts.push(Attempt {
            at,
            status_code: result.status_code,
            duration_ms: result.duration_ms,
            error: result.error.map(truncate),
        });
        let endpoint = d.endpoint as usize;
        if ok {
            set_status(&mut self.by_status, delivery, d, DeliveryStatus::Succeeded);
            d.next_attempt_at = None;
            return events;
        }
        d.failures += 1;
        let e = &self.endpoints[endpoint];
        if result.status_code == Some(410) || e.deleted || !e.enabled {
            set_status(&mut self.by_status, delivery, d, DeliveryStatus::Dead);
            d.next_attempt_at = None;
            if result.status_code == Some(410) && e.enabled {
                self.endpoints[endpoint].enabled = false;
                self.endpoints[endpoint].version += 1;
                self.endpoints[endpoint].updated_at = at;
                self.stop_endpoint(endpoint);
                let data = serde_json::to_value(self.render_endpoint(&ledger.tag, endpoint)).unwrap_or_default();
                events.push((EventType::WebhookEndpointDisabled, data));
            }
            return events;
        }
        let schedule = e.retry_schedule_seconds.as_deref().unwrap_or(default_schedule);
        let failures = d.failures as usize;
        if failures > schedule.len() {
            set_status(&mut self.by_status, delivery, d, DeliveryStatus::Dead);
            d.next_attempt_at = None;
            if let Some(v) = self.render_delivery(ledger, delivery) {
                events.push((EventType::WebhookDeliveryExhausted, serde_json::to_value(v).unwrap_or_default()));
            }
            return events;
        }
        let delay = schedule[failures - 1];
        let jitter =
            if delay >= 100 { ids.jitter(&ledger.tag, delivery, failures as u64, (delay * 10).min(30_000)) } else { 0 };
        let delay_ms =
            (delay * 1000 + jitter).max(result.retry_after_seconds.unwrap_or(0).min(RETRY_DELAY_MAX_SECONDS) * 1000);
        let next = Timestamp(at.micros().saturating_add(delay_ms as i64 * 1000));
        set_status(&mut self.by_status, delivery, d, DeliveryStatus::Failed);
        d.next_attempt_at = Some(next);
        self.schedule.insert((next, delivery));
        events
    }

    /// The most recent delivery.
    pub fn latest(&self, ledger: &Ledger) -> Option<WebhookDelivery> {
        self.render_delivery(ledger, self.deliveries.len() as u64)
    }

    /// `GET /v1/webhook-deliveries/{id}`.
    pub fn delivery(&self, ledger: &Ledger, id: &str) -> Result<WebhookDelivery, DomainError> {
        let seq = self.delivery_sequence(&ledger.tag, id)?;
        self.render_delivery(ledger, seq).ok_or_else(|| DomainError::not_found("webhook delivery"))
    }

    /// `GET /v1/webhook-deliveries`.
    pub fn deliveries(
        &self,
        ledger: &Ledger,
        endpoint_id: Option<&str>,
        event_id: Option<&str>,
        status: Option<DeliveryStatus>,
        window: Window,
    ) -> Page<WebhookDelivery> {
        let endpoint = match endpoint_id {
            Some(id) => match self.endpoint_index_any(&ledger.tag, id) {
                Some(i) => Some(i),
                None => return Page { data: Vec::new(), next: None },
            },
            None => None,
        };
        let event = match event_id {
            Some(id) => match ledger.event_position(id) {
                Some(p) => Some(p as u64 + 1),
                None => return Page { data: Vec::new(), next: None },
            },
            None => None,
        };
        let none = Postings::default();
        let run = event.map(|e| self.by_event.run(e));
        let mut lists: Vec<&dyn Seek> = Vec::new();
        if let Some(e) = endpoint {
            lists.push(self.by_endpoint.get(e).unwrap_or(&none));
        }
        if let Some(run) = &run {
            lists.push(run);
        }
        if let Some(s) = status {
            lists.push(&self.by_status[s as usize]);
        }
        let accept = |p: usize| {
            self.deliveries.get(p).is_some_and(|d| {
                endpoint.is_none_or(|e| e == d.endpoint as usize)
                    && event.is_none_or(|e| e == d.event)
                    && status.is_none_or(|s| s == d.status)
            })
        };
        page(&mut lists, window.start, self.deliveries.len(), window.limit, accept, |p| {
            self.render_delivery(ledger, p as u64 + 1)
        })
    }

    fn endpoint_index_any(&self, tag: &str, id: &str) -> Option<usize> {
        ids::parse("we", tag, id).map(|p| (p - 1) as usize).filter(|i| *i < self.endpoints.len())
    }

    fn requeue(&mut self, seq: u64, now: Timestamp) {
        mark(&mut self.dirty, seq);
        if let Some(d) = self.deliveries.get_mut((seq - 1) as usize) {
            if let Some(t) = d.next_attempt_at {
                self.schedule.remove(&(t, seq));
            }
            set_status(&mut self.by_status, seq, d, DeliveryStatus::Pending);
            d.failures = 0;
            d.next_attempt_at = Some(now);
            self.schedule.insert((now, seq));
        }
    }

    /// `POST /v1/webhook-deliveries/{id}/replay`: sends again now (same `webhook-id`).
    pub fn replay(&mut self, ledger: &Ledger, id: &str, now: Timestamp) -> Result<WebhookDelivery, DomainError> {
        let seq = self.delivery_sequence(&ledger.tag, id)?;
        let d = self.deliveries.get((seq - 1) as usize).ok_or_else(|| DomainError::not_found("webhook delivery"))?;
        let e = &self.endpoints[d.endpoint as usize];
        if e.deleted {
            return Err(DomainError::not_found("webhook endpoint"));
        }
        if !e.enabled {
            return Err(disabled());
        }
        if d.in_flight {
            return Err(DomainError::new(
                ErrorKind::DeliveryInFlight,
                "An attempt of this delivery is under way; retry shortly.",
            ));
        }
        self.requeue(seq, now);
        self.render_delivery(ledger, seq).ok_or_else(|| DomainError::not_found("webhook delivery"))
    }

    /// `POST /v1/webhook-endpoints/{id}/replay`: re-queues the endpoint's dead deliveries created
    /// in `[since, until)`.
    pub fn replay_endpoint(
        &mut self,
        tag: &str,
        id: &str,
        req: &ReplayDeliveries,
        now: Timestamp,
    ) -> Result<u64, DomainError> {
        let i = self.endpoint_index(tag, id)?;
        if req.status != DeliveryStatus::Dead {
            return Err(DomainError::validation(vec![FieldError::new(
                "status",
                "only \"dead\" deliveries are replayed in bulk",
            )]));
        }
        if !self.endpoints[i].enabled {
            return Err(disabled());
        }
        let matches: Vec<u64> = self
            .deliveries
            .iter_from(0)
            .enumerate()
            .filter(|(_, d)| {
                d.endpoint as usize == i
                    && d.status == DeliveryStatus::Dead
                    && req.since.is_none_or(|t| d.created_at >= t)
                    && req.until.is_none_or(|t| d.created_at < t)
            })
            .map(|(p, _)| p as u64 + 1)
            .collect();
        for seq in &matches {
            self.requeue(*seq, now);
        }
        Ok(matches.len() as u64)
    }
}

/// A new webhook signing secret (32 bytes) from the emulator's generator, so that deterministic
/// mode issues the same secrets on every run.
pub fn new_secret(ids: &ids::Generator) -> twh_webhooks::Secret {
    use base64::Engine;
    let text = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(ids.bytes(twh_webhooks::SECRET_LEN_BYTES))
    );
    twh_webhooks::Secret::parse(&text).unwrap_or_else(|_| twh_webhooks::Secret::generate())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(run: &EventRun<'_>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = 0;
        while let Some(p) = run.seek(at) {
            out.push(p);
            at = p + 1;
        }
        out
    }

    #[test]
    fn the_event_index_finds_each_events_deliveries_in_order_whatever_order_they_came_in() {
        let mut ix = ByEvent::default();
        // In order (a fan-out), then older events (a loaded document may list them so).
        for (event, position) in [(1, 0), (1, 1), (2, 2), (4, 3), (4, 4), (3, 5), (1, 6), (4, 7), (4, 3)] {
            ix.add(event, position);
        }
        assert_eq!(positions(&ix.run(1)), vec![0, 1, 6]);
        assert_eq!(positions(&ix.run(2)), vec![2]);
        assert_eq!(positions(&ix.run(3)), vec![5]);
        assert_eq!(positions(&ix.run(4)), vec![3, 4, 7], "a repeat is held once");
        assert_eq!(ix.run(4).seek(5), Some(7));
        assert_eq!(ix.run(4).count(), 3);
        assert!(positions(&ix.run(5)).is_empty() && positions(&ix.run(0)).is_empty());
        assert_eq!(ix.run(u64::from(u32::MAX)).count(), 0);
    }
}
