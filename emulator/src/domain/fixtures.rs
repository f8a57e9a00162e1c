//! Fixtures (API.md §5): sandboxes with known contents and, if given, known keys, from one JSON
//! document (`POST /_emulator/fixtures`, `twh-emulator serve --fixtures FILE`).
//!
//! **All or nothing, by construction.** Every sandbox of the document is built whole in a
//! scratch [`TenantState`] that nothing else can see: its webhook endpoints, items, locations and
//! movements go through the same ledger and webhook code as API calls, so every rule of the API
//! applies (and its events, levels and deliveries are written as an API call writes them). Only
//! when every sandbox is built are they handed to the registry ([`World::add_tenants`]), which
//! checks their keys against the keys in use and then adds the tenants and their keys in one
//! step, with one store commit. A failure anywhere before that step leaves the world untouched,
//! and the step checks everything before it changes anything: there is never anything to undo.
//!
//! **Order within a sandbox**: webhook endpoints first, then items, locations and movements in
//! document order, all at the same instant; so the endpoints receive the events of everything the
//! fixture creates (`item.created`, …, `stock_movement.created`), as if those were API calls
//! made after the endpoints.
//!
//! **Errors** are the API's field errors (422 `validation_failed`) with the entry's path in
//! front: `sandboxes[0].movements[3].sku`. A rule the API answers with a 409 (a duplicate SKU,
//! insufficient stock) or a 429 (the plan's ledger-lines quota) is a bad document here, so 422
//! too. A key that is already in use, by an existing sandbox or twice in the document, is 409
//! `key_taken`.
//!
//! **Bounds**: the body limit bounds the bytes (`--body-limit-bytes`, for the file too); the
//! counts are bounded below, per document and per sandbox.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::billing::{Billing, Meter, Usage};
use super::error::{DomainError, ErrorKind};
use super::jobs::Jobs;
use super::ledger::Ledger;
use super::model::*;
use super::reconcile::Reconciliations;
use super::registry::{KeyGrant, KeyKind, NewTenant, TenantState, World};
use super::validate;
use super::webhooks::{CreateWebhookEndpoint, ENDPOINT_COUNT_MAX, Webhooks};
use crate::ids;

/// Most sandboxes in one document.
pub const SANDBOXES_MAX: usize = 100;
/// Most items in one sandbox of a document.
pub const ITEMS_MAX: usize = 10_000;
/// Most locations in one sandbox of a document.
pub const LOCATIONS_MAX: usize = 1_000;
/// Most movements in one sandbox of a document.
pub const MOVEMENTS_MAX: usize = 20_000;
/// Most entries (items, locations, movements and webhook endpoints) in one document.
pub const ENTRIES_MAX: usize = 100_000;
/// Shortest random part of a given key, in characters.
pub const KEY_RANDOM_LEN_MIN: usize = 24;
/// Longest random part of a given key, in characters.
pub const KEY_RANDOM_LEN_MAX: usize = 64;
/// Length of the random part of the keys the emulator draws itself.
const KEY_RANDOM_LEN: usize = 32;
/// The request id the fixtures' ledger lines are metered under.
const USAGE_ID: &str = "fixtures";

/// `POST /_emulator/fixtures` (and the file of `serve --fixtures`): sandboxes to create.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// 1..=100 sandboxes, created all or none.
    #[schemars(length(min = 1, max = 100))]
    pub sandboxes: Vec<FixtureSandbox>,
}

/// One sandbox of a fixtures document.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixtureSandbox {
    /// A name for people (1..=200 characters).
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// `free` (default) or `pro`. The movements count against its `ledger_lines` quota.
    #[serde(default)]
    pub plan: Option<Plan>,
    /// This secret key instead of a random one: `sk_test_` and 24..=64 of `[a-z0-9]`, not in use.
    #[serde(default)]
    #[schemars(regex(pattern = r"^sk_test_[a-z0-9]{24,64}$"))]
    pub secret_key: Option<String>,
    /// This restricted key instead of a random one: `rk_test_` and 24..=64 of `[a-z0-9]`, not in
    /// use.
    #[serde(default)]
    #[schemars(regex(pattern = r"^rk_test_[a-z0-9]{24,64}$"))]
    pub restricted_key: Option<String>,
    /// Items, as `POST /v1/items` takes them (at most 10,000; SKUs unique).
    #[serde(default)]
    #[schemars(length(max = 10_000))]
    pub items: Vec<CreateItem>,
    /// Locations, as `POST /v1/locations` takes them (at most 1,000; codes unique).
    #[serde(default)]
    #[schemars(length(max = 1_000))]
    pub locations: Vec<CreateLocation>,
    /// Movements, in ledger order (at most 20,000), naming items by `sku` and locations by
    /// `code`.
    #[serde(default)]
    #[schemars(length(max = 20_000))]
    pub movements: Vec<FixtureMovement>,
    /// Webhook endpoints (at most 100). They are created first, so they receive the events of
    /// the fixture's items, locations and movements.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub webhook_endpoints: Vec<FixtureWebhookEndpoint>,
}

/// A movement of a fixture: `POST /v1/stock-movements` with the item named by `sku` and the
/// locations by `code`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixtureMovement {
    /// `receipt`, `shipment`, `adjustment` or `transfer`.
    #[serde(rename = "type")]
    pub type_: MovementType,
    /// The item's SKU (one of this sandbox's `items`).
    pub sku: String,
    /// For receipt, shipment and adjustment: the location's code.
    #[serde(default)]
    pub location: Option<String>,
    /// For transfer: the code of the location it leaves.
    #[serde(default)]
    pub from_location: Option<String>,
    /// For transfer: the code of the location it arrives at.
    #[serde(default)]
    pub to_location: Option<String>,
    /// Positive, except adjustments (signed, non-zero). At most 10^15 in magnitude.
    #[schemars(range(min = -1_000_000_000_000_000i64, max = 1_000_000_000_000_000i64))]
    pub quantity: i64,
    /// Your reference, at most 255 characters.
    #[serde(default)]
    #[schemars(length(max = 255))]
    pub reference: Option<String>,
    /// Why, at most 500 characters.
    #[serde(default)]
    #[schemars(length(max = 500))]
    pub reason: Option<String>,
    /// Free-form JSON object, at most 50 keys and 8 KiB.
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    /// Let the level go below zero.
    #[serde(default)]
    pub allow_negative: Option<bool>,
}

/// A webhook endpoint of a fixture: `POST /v1/webhook-endpoints`, and optionally its secret.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixtureWebhookEndpoint {
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
    /// Retry delays after a failed attempt, in seconds.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// This signing secret instead of a random one: `whsec_` and the base64 of 24..=64 bytes.
    #[serde(default)]
    #[schemars(regex(pattern = r"^whsec_[A-Za-z0-9+/=]+$"))]
    pub secret: Option<String>,
}

/// The answer of `POST /_emulator/fixtures`: the sandboxes created, in document order.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FixturesLoaded {
    /// One per sandbox of the document, with its keys.
    pub sandboxes: Vec<SandboxCreated>,
}

/// Parses a fixtures document from JSON text (the file of `serve --fixtures`), naming the path
/// of a field that does not fit as the API does (`sandboxes[0].items[1].sku`).
pub fn parse(text: &[u8]) -> Result<Fixtures, DomainError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed: Result<Fixtures, _> = serde_path_to_error::deserialize(&mut de);
    let fixtures = parsed.map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let named = |p: &str| message.strip_prefix(p).and_then(|rest| rest.split('`').next()).map(str::to_owned);
        let leaf = named("unknown field `").or_else(|| named("missing field `"));
        let field = match (path.as_str(), leaf) {
            (".", Some(leaf)) => leaf,
            (".", None) => "body".to_owned(),
            (p, Some(leaf)) if p.ends_with(leaf.as_str()) => p.to_owned(),
            (p, Some(leaf)) => format!("{p}.{leaf}"),
            (p, None) => p.to_owned(),
        };
        DomainError::validation(vec![FieldError::new(field, message)])
    })?;
    de.end().map_err(|e| DomainError::validation(vec![FieldError::new("body", e.to_string())]))?;
    Ok(fixtures)
}

/// Creates the sandboxes of `doc`, all or none (see the module docs).
pub fn load(world: &World, doc: Fixtures) -> Result<FixturesLoaded, DomainError> {
    check_bounds(&doc)?;
    check_keys(&doc)?;
    let now = world.clock.now();
    let mut built = Vec::with_capacity(doc.sandboxes.len());
    let mut created = Vec::with_capacity(doc.sandboxes.len());
    for (i, sandbox) in doc.sandboxes.into_iter().enumerate() {
        let (tenant, answer) = build(world, sandbox, now).map_err(|e| invalid_at(e, &format!("sandboxes[{i}]")))?;
        built.push(tenant);
        created.push(answer);
    }
    world.add_tenants(built)?;
    Ok(FixturesLoaded { sandboxes: created })
}

fn field(path: String, message: impl Into<String>) -> DomainError {
    DomainError::validation(vec![FieldError::new(path, message)])
}

/// The document's counts against its bounds.
fn check_bounds(doc: &Fixtures) -> Result<(), DomainError> {
    if doc.sandboxes.is_empty() || doc.sandboxes.len() > SANDBOXES_MAX {
        return Err(field("sandboxes".into(), format!("must list 1..={SANDBOXES_MAX} sandboxes")));
    }
    let mut entries = 0usize;
    for (i, s) in doc.sandboxes.iter().enumerate() {
        let counts = [
            ("items", s.items.len(), ITEMS_MAX),
            ("locations", s.locations.len(), LOCATIONS_MAX),
            ("movements", s.movements.len(), MOVEMENTS_MAX),
            ("webhook_endpoints", s.webhook_endpoints.len(), ENDPOINT_COUNT_MAX),
        ];
        for (name, n, max) in counts {
            if n > max {
                return Err(field(format!("sandboxes[{i}].{name}"), format!("must list at most {max}")));
            }
            entries += n;
        }
        if entries > ENTRIES_MAX {
            return Err(field(
                format!("sandboxes[{i}]"),
                format!("the document may hold at most {ENTRIES_MAX} items, locations, movements and endpoints in all"),
            ));
        }
    }
    Ok(())
}

/// Whether `key` looks like a key the emulator issues with this prefix.
pub fn key_is_well_formed(key: &str, prefix: &str) -> bool {
    key.strip_prefix(prefix).is_some_and(|rest| {
        (KEY_RANDOM_LEN_MIN..=KEY_RANDOM_LEN_MAX).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

/// The given keys: well formed (422), and each given once in the document (409 `key_taken`).
fn check_keys(doc: &Fixtures) -> Result<(), DomainError> {
    for (i, s) in doc.sandboxes.iter().enumerate() {
        for (name, key, prefix) in
            [("secret_key", &s.secret_key, "sk_test_"), ("restricted_key", &s.restricted_key, "rk_test_")]
        {
            if key.as_deref().is_some_and(|k| !key_is_well_formed(k, prefix)) {
                return Err(field(
                    format!("sandboxes[{i}].{name}"),
                    format!(
                        "must be `{prefix}` and {KEY_RANDOM_LEN_MIN}..={KEY_RANDOM_LEN_MAX} lowercase letters or digits"
                    ),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, s) in doc.sandboxes.iter().enumerate() {
        for (name, key) in [("secret_key", &s.secret_key), ("restricted_key", &s.restricted_key)] {
            if let Some(k) = key {
                if !seen.insert(k.as_str()) {
                    return Err(key_taken(&format!("sandboxes[{i}].{name}"), "is given twice in the document"));
                }
            }
        }
    }
    Ok(())
}

/// 409 `key_taken` naming the field.
pub fn key_taken(path: &str, why: &str) -> DomainError {
    let mut e = DomainError::new(ErrorKind::KeyTaken, format!("{path}: this key {why}."));
    e.errors.push(FieldError::new(path, format!("this key {why}")));
    e
}

/// Any failure of an entry: a bad document (422), its field errors under `path`, the API's
/// request field names replaced by the fixture's.
fn invalid_at(mut e: DomainError, path: &str) -> DomainError {
    if e.kind == ErrorKind::KeyTaken {
        return e;
    }
    for f in &mut e.errors {
        let renamed = match f.field.as_str() {
            "item_id" => "sku",
            "location_id" => "location",
            "from_location_id" => "from_location",
            "to_location_id" => "to_location",
            _ => continue,
        };
        f.field = renamed.to_owned();
    }
    // Built again from the field errors, so the detail names the whole path too.
    DomainError::validation(e.within(path).errors)
}

/// A key grant for the new tenant: the given key, or one from the emulator's generator (seeded
/// in deterministic mode).
fn grant(world: &World, tenant_id: &str, kind: KeyKind, given: Option<String>) -> KeyGrant {
    let prefix = if kind == KeyKind::Secret { "sk_test_" } else { "rk_test_" };
    KeyGrant {
        id: world.ids.random(ids::Stream::Ids, "key_", 16),
        secret: given.unwrap_or_else(|| world.ids.random(ids::Stream::Ids, prefix, KEY_RANDOM_LEN)),
        tenant_id: tenant_id.to_owned(),
        kind,
        expires_at: None,
    }
}

/// One sandbox built whole, not yet in the world. Errors name paths inside the sandbox.
fn build(
    world: &World,
    s: FixtureSandbox,
    now: crate::clock::Timestamp,
) -> Result<(NewTenant, SandboxCreated), DomainError> {
    let create = CreateSandbox { name: Some(s.name.clone()), seed: None, plan: s.plan };
    validate::create_sandbox(&create)?;
    let sandbox = Sandbox {
        id: world.ids.random(ids::Stream::Ids, "sbx_", 16),
        name: s.name,
        plan: s.plan.unwrap_or_default(),
        created_at: now,
    };
    let mut ledger = Ledger::with_tag(world.ids.tag());
    let mut webhooks = Webhooks::default();
    for (j, e) in s.webhook_endpoints.into_iter().enumerate() {
        let at = |e: DomainError| invalid_at(e, &format!("webhook_endpoints[{j}]"));
        let secret = match e.secret.as_deref() {
            None => None,
            Some(text) => Some(
                text.strip_prefix(twh_webhooks::SECRET_PREFIX)
                    .and_then(|_| twh_webhooks::Secret::parse(text).ok())
                    .ok_or_else(|| {
                        at(field(
                            "secret".into(),
                            format!(
                                "must be `{}` and the base64 of {}..={} bytes",
                                twh_webhooks::SECRET_PREFIX,
                                twh_webhooks::SECRET_LEN_MIN_BYTES,
                                twh_webhooks::SECRET_LEN_MAX_BYTES
                            ),
                        ))
                    })?,
            ),
        };
        let req = CreateWebhookEndpoint {
            url: e.url,
            event_types: e.event_types,
            description: e.description,
            retry_schedule_seconds: e.retry_schedule_seconds,
        };
        let secret = secret.unwrap_or_else(|| crate::domain::webhooks::new_secret(&world.ids));
        webhooks.create_endpoint_with(&ledger.tag, req, secret, now).map_err(at)?;
    }
    let mut items = HashMap::with_capacity(s.items.len());
    for (j, item) in s.items.into_iter().enumerate() {
        let at = format!("items[{j}]");
        if let Some((first, _)) = items.get(item.sku.as_str()) {
            return Err(field(format!("{at}.sku"), format!("items[{first}] has this sku already")));
        }
        let sku = item.sku.clone();
        let created = ledger.create::<Item>(item, now).map_err(|e| invalid_at(e, &at))?;
        items.insert(sku, (j, created.id));
    }
    let mut locations = HashMap::with_capacity(s.locations.len());
    for (j, location) in s.locations.into_iter().enumerate() {
        let at = format!("locations[{j}]");
        if let Some((first, _)) = locations.get(location.code.as_str()) {
            return Err(field(format!("{at}.code"), format!("locations[{first}] has this code already")));
        }
        let code = location.code.clone();
        let created = ledger.create::<Location>(location, now).map_err(|e| invalid_at(e, &at))?;
        locations.insert(code, (j, created.id));
    }
    let plan = world.settings.plans.get(sandbox.plan);
    let quota = plan.hard_quota(Meter::LedgerLines);
    for (j, m) in s.movements.into_iter().enumerate() {
        let at = format!("movements[{j}]");
        let req = movement_request(m, &items, &locations).map_err(|e| invalid_at(e, &at))?;
        ledger.set_line_budget(quota.map(|q| q.saturating_sub(ledger.lines_since(0))));
        let result = ledger.create_movement(req, None, now);
        ledger.set_line_budget(None);
        result.map_err(|e| {
            if e.kind == ErrorKind::QuotaExceeded {
                let q = quota.unwrap_or_default();
                field(at.clone(), format!("the sandbox's movements would write more than the {q} ledger lines of its plan's monthly quota; use plan `pro`"))
            } else {
                invalid_at(e, &at)
            }
        })?;
    }
    // Every event the fixture wrote becomes a delivery to the endpoints that want it.
    webhooks.fan_out(&ledger, 0, None, now);
    // The fixture's lines are metered like any other (so usage always agrees with the ledger).
    let mut usage = Usage::default();
    usage.add_lines(&mut None, now, USAGE_ID, ledger.lines_since(0));
    let secret = grant(world, &sandbox.id, KeyKind::Secret, s.secret_key);
    let restricted = grant(world, &sandbox.id, KeyKind::Restricted, s.restricted_key);
    let answer = SandboxCreated {
        id: sandbox.id.clone(),
        name: sandbox.name.clone(),
        plan: sandbox.plan,
        secret_key: secret.secret.clone(),
        restricted_key: restricted.secret.clone(),
        created_at: now,
    };
    let state = TenantState {
        sandbox,
        ledger,
        webhooks,
        billing: Billing::with_tag(now, world.ids.tag()),
        reconciliations: Reconciliations::default(),
        jobs: Jobs::default(),
        usage,
        persisted: None,
        retired: false,
        // A new sandbox starts on the emulator clock.
        clock_offset_micros: 0,
    };
    Ok((NewTenant { state, secret, restricted }, answer))
}

/// The API request of a fixture movement: its SKU and codes resolved to this sandbox's ids.
fn movement_request(
    m: FixtureMovement,
    items: &HashMap<String, (usize, String)>,
    locations: &HashMap<String, (usize, String)>,
) -> Result<CreateMovement, DomainError> {
    let mut errors = Vec::new();
    let item_id = match items.get(&m.sku) {
        Some((_, id)) => id.clone(),
        None => {
            errors.push(FieldError::new("sku", "no item of this sandbox's `items` has this sku"));
            String::new()
        }
    };
    let transfer = m.type_ == MovementType::Transfer;
    if transfer && m.from_location.is_some() && m.from_location == m.to_location {
        errors.push(FieldError::new("to_location", "must differ from from_location"));
    }
    let mut resolve = |name: &str, code: Option<String>, wanted: bool| -> Option<String> {
        match (code, wanted) {
            (Some(code), true) => match locations.get(&code) {
                Some((_, id)) => Some(id.clone()),
                None => {
                    errors.push(FieldError::new(name, "no location of this sandbox's `locations` has this code"));
                    None
                }
            },
            (Some(_), false) => {
                let takes = if transfer {
                    "a transfer takes from_location and to_location"
                } else {
                    "only a transfer takes from_location and to_location"
                };
                errors.push(FieldError::new(name, takes));
                None
            }
            (None, true) => {
                errors.push(FieldError::new(name, format!("is required for a {}", m.type_.as_str())));
                None
            }
            (None, false) => None,
        }
    };
    let location_id = resolve("location", m.location, !transfer);
    let from_location_id = resolve("from_location", m.from_location, transfer);
    let to_location_id = resolve("to_location", m.to_location, transfer);
    if !errors.is_empty() {
        return Err(DomainError::validation(errors));
    }
    Ok(CreateMovement {
        type_: m.type_,
        item_id,
        location_id,
        from_location_id,
        to_location_id,
        quantity: m.quantity,
        reference: m.reference,
        reason: m.reason,
        metadata: m.metadata,
        allow_negative: m.allow_negative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_keys_must_look_like_issued_ones() {
        let issued = ids::Generator::system().random(ids::Stream::Ids, "sk_test_", KEY_RANDOM_LEN);
        assert!(key_is_well_formed(&issued, "sk_test_"));
        assert!(key_is_well_formed(&format!("sk_test_{}", "a".repeat(24)), "sk_test_"));
        assert!(key_is_well_formed(&format!("sk_test_{}", "0".repeat(64)), "sk_test_"));
        assert!(!key_is_well_formed(&format!("sk_test_{}", "a".repeat(23)), "sk_test_"), "too short");
        assert!(!key_is_well_formed(&format!("sk_test_{}", "a".repeat(65)), "sk_test_"), "too long");
        assert!(!key_is_well_formed(&format!("sk_test_{}", "A".repeat(30)), "sk_test_"), "upper case");
        assert!(!key_is_well_formed(&format!("rk_test_{}", "a".repeat(30)), "sk_test_"), "wrong prefix");
        assert!(!key_is_well_formed(&format!("sk_test_{}-", "a".repeat(30)), "sk_test_"), "punctuation");
    }

    #[test]
    fn a_parse_error_names_the_path() {
        let e = parse(br#"{"sandboxes": [{"name": "a", "items": [{"sku": "A", "name": "A", "colour": 1}]}]}"#)
            .expect_err("unknown field");
        assert_eq!(e.errors[0].field, "sandboxes[0].items[0].colour");
        let e = parse(br#"{"sandboxes": [{"name": "a", "movements": [{"type": "receipt", "quantity": 1}]}]}"#)
            .expect_err("missing field");
        assert_eq!(e.errors[0].field, "sandboxes[0].movements[0].sku");
        assert!(parse(br#"{"sandboxes": []} x"#).is_err(), "trailing characters");
    }
}
