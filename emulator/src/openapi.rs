//! The OpenAPI 3.0 document of the emulator, generated from its own types.
//!
//! Schemas come from the Rust types with schemars (`SchemaSettings::openapi3()`); operations come
//! from the table in [`operations`], which describes each operation of [`crate::api::OPERATIONS`]
//! (where its method and path are, once for the router and the document). `cargo xtask openapi`
//! writes the result to `openapi/openapi.json` (committed; `--check` fails when stale) and the
//! server serves the same bytes at `/openapi.json`. A test checks the table against the router in both directions.

use std::sync::OnceLock;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::domain::billing::{
    Invoice, InvoiceList, PlanList, Subscription, UpdateSubscription, UsageExport, UsageReport,
};
use crate::domain::fixtures::{Fixtures, FixturesLoaded};
use crate::domain::jobs::{CreateJob, Job};
use crate::domain::model::*;
use crate::domain::reconcile::{CreateReconciliation, Reconciliation, ReconciliationList};
use crate::domain::webhooks::{
    CreateWebhookEndpoint, ReplayCount, ReplayDeliveries, UpdateWebhookEndpoint, WebhookDelivery, WebhookEndpoint,
    WebhookEndpointSecret, WebhookEndpointWithSecret,
};
use crate::http::control::{AdvanceClock, ClockState, FaultList, Health, SandboxClockState};
use crate::http::extract::{IDEMPOTENCY_KEY_LEN_MAX, LIMIT_DEFAULT, LIMIT_MAX};
use crate::http::faults::{CorruptStockLevel, CorruptedStockLevel, Fault, FaultSpec};
use crate::http::journal::{JournalEntry, JournalPage};
use crate::http::webhooks::{SinkList, WebhookDeliveryList, WebhookEndpointList};

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// An API key (`sk_test_`/`rk_test_`).
    Key,
    /// Open unless the emulator has an admin token.
    Admin,
}

/// One operation of the document.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: String,
    description: String,
    access: Access,
    params: Vec<Value>,
    body: Option<(Schema, bool)>,
    ok: u16,
    ok_schema: Option<Schema>,
    ok_headers: Vec<&'static str>,
    csv: bool,
    /// The media type of a text answer (no JSON schema), e.g. `/metrics`'s.
    text: Option<&'static str>,
    errors: Vec<u16>,
    /// The name of the SDK method, where it is not the operation id (`x-sdk-name`).
    sdk_name: Option<&'static str>,
}

/// The operation `id` of [`crate::api::OPERATIONS`], which gives its method and path.
fn op(id: &'static str, tag: &'static str, summary: impl Into<String>) -> Op {
    let crate::api::Operation { method, path, .. } = *crate::api::find(id);
    let mut errors = vec![401, 429, 500];
    if method != "get" {
        errors.extend([400, 403, 413, 415, 422]);
    }
    Op {
        method,
        path,
        id,
        tag,
        summary: summary.into(),
        description: String::new(),
        access: Access::Key,
        params: Vec::new(),
        body: None,
        ok: 200,
        ok_schema: None,
        ok_headers: Vec::new(),
        csv: false,
        text: None,
        errors,
        sdk_name: None,
    }
}

impl Op {
    /// Names the SDK method (`x-sdk-name`): the SDKs are generated from the document, and their
    /// names are shorter than some operation ids (`create_movement`, not `create_stock_movement`).
    fn sdk(mut self, name: &'static str) -> Op {
        self.sdk_name = Some(name);
        self
    }
    fn describe(mut self, d: impl Into<String>) -> Op {
        self.description = d.into();
        self
    }
    fn admin(mut self) -> Op {
        self.access = Access::Admin;
        self.errors.retain(|c| *c != 429);
        if !self.errors.contains(&403) {
            self.errors.push(403);
        }
        self
    }
    fn returns(mut self, status: u16, schema: Schema) -> Op {
        self.ok = status;
        self.ok_schema = Some(schema);
        self
    }
    fn empty(mut self, status: u16) -> Op {
        self.ok = status;
        self
    }
    fn body(mut self, schema: Schema, required: bool) -> Op {
        self.body = Some((schema, required));
        self
    }
    fn param(mut self, p: Value) -> Op {
        self.params.push(p);
        self
    }
    fn path_id(self, name: &'static str, what: &str) -> Op {
        self.param(json!({"name": name, "in": "path", "required": true, "description": format!("The {what}'s id."), "schema": {"type": "string"}}))
            .errors(&[404])
    }
    fn query(self, name: &'static str, description: &str, schema: Value) -> Op {
        self.param(
            json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema}),
        )
        .errors(&[422])
    }
    fn list(self) -> Op {
        self.param(json!({"$ref": "#/components/parameters/Limit"}))
            .param(json!({"$ref": "#/components/parameters/Cursor"}))
            .errors(&[400, 422])
    }
    fn etag(mut self) -> Op {
        self.ok_headers.push("ETag");
        self
    }
    fn location(mut self) -> Op {
        self.ok_headers.push("Location");
        self
    }
    /// Answers text of this media type.
    fn text(mut self, media: &'static str) -> Op {
        self.text = Some(media);
        self
    }
    /// Also answers `text/csv` (with `Accept: text/csv`, or a `format` parameter).
    fn csv(mut self) -> Op {
        self.csv = true;
        self
    }
    fn conditional_get(self) -> Op {
        self.param(json!({"$ref": "#/components/parameters/IfNoneMatch"})).etag().errors(&[304])
    }
    fn idempotent(self, required: bool) -> Op {
        let p = if required { "IdempotencyKeyRequired" } else { "IdempotencyKey" };
        self.param(json!({"$ref": format!("#/components/parameters/{p}")})).errors(&[400, 409, 422])
    }
    fn if_match(self) -> Op {
        self.param(json!({"$ref": "#/components/parameters/IfMatchRequired"})).errors(&[412, 428])
    }
    fn errors(mut self, codes: &[u16]) -> Op {
        for c in codes {
            if !self.errors.contains(c) {
                self.errors.push(*c);
            }
        }
        self
    }
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn string_enum(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

fn date_time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// What differs between the catalogue's kinds (items, locations); their five operations are
/// otherwise described once, by [`catalogue`].
struct Kind {
    /// The path's and the tag's word: `items`.
    plural: &'static str,
    /// One of them: `item`.
    one: &'static str,
    /// `an` or `a`.
    article: &'static str,
    /// The unique key: (query name, its label in descriptions): `("sku", "SKU")`.
    key: (&'static str, &'static str),
    /// Further filters of the list: (name, description, enumeration).
    filters: &'static [(&'static str, &'static str, &'static [&'static str])],
    /// The conflict code of a movement naming an archived one.
    archived_code: &'static str,
    /// `for` (items) or `at` (locations).
    movements: &'static str,
}

const ITEMS: Kind = Kind {
    plural: "items",
    one: "item",
    article: "an",
    key: ("sku", "SKU"),
    filters: &[],
    archived_code: "item_archived",
    movements: "for",
};

const LOCATIONS: Kind = Kind {
    plural: "locations",
    one: "location",
    article: "a",
    key: ("code", "code"),
    filters: &[("kind", "Only this kind.", &["warehouse", "store", "virtual"])],
    archived_code: "location_archived",
    movements: "at",
};

/// The list, create, get, update and archive operations of a catalogue kind.
fn catalogue<List: JsonSchema, Create: JsonSchema, One: JsonSchema, Update: JsonSchema>(
    g: &mut SchemaGenerator,
    k: &Kind,
    statuses: Value,
) -> [Op; 5] {
    let id = |verb: &str, word: &str| crate::api::find(&format!("{verb}_{word}")).id;
    let (key, label) = k.key;
    let mut list = op(id("list", k.plural), k.plural, format!("List {}", k.plural))
        .query(key, &format!("Exact {label}."), json!({"type": "string"}))
        .query("q", &format!("Case-insensitive substring of {label} or name."), json!({"type": "string"}))
        .query("status", "Only this status.", statuses);
    for (name, description, values) in k.filters {
        list = list.query(name, description, string_enum(values));
    }
    // In the order the document has always listed these schemas.
    let (list_schema, create, one, update) =
        (schema::<List>(g), schema::<Create>(g), schema::<One>(g), schema::<Update>(g));
    [
        list.list().returns(200, list_schema),
        op(id("create", k.one), k.plural, format!("Create {} {}", k.article, k.one))
            .idempotent(false)
            .body(create, true)
            .returns(201, one.clone())
            .etag()
            .location()
            .errors(&[409]),
        op(id("get", k.one), k.plural, format!("Get {} {}", k.article, k.one))
            .path_id("id", k.one)
            .conditional_get()
            .returns(200, one.clone()),
        op(id("update", k.one), k.plural, format!("Update {} {} (JSON merge patch)", k.article, k.one))
            .path_id("id", k.one)
            .if_match()
            .body(update, true)
            .returns(200, one.clone())
            .etag()
            .errors(&[409]),
        op(id("archive", k.one), k.plural, format!("Archive {} {}", k.article, k.one))
            .describe(format!(
                "The {} stays readable with `status: archived`; new movements {} it answer 409 `{}`.",
                k.one, k.movements, k.archived_code
            ))
            .path_id("id", k.one)
            .if_match()
            .returns(200, one)
            .etag(),
    ]
}

/// Every operation, in the order of API.md.
fn operations(g: &mut SchemaGenerator) -> Vec<Op> {
    let statuses = string_enum(&["active", "archived"]);
    vec![
        op("create_sandbox", "sandboxes", "Create a sandbox (tenant) with its keys")
            .describe("No API key needed on a local emulator (an admin token can be required by configuration). `seed: demo` loads a small catalogue.")
            .admin()
            .idempotent(false)
            .body(schema::<CreateSandbox>(g), false)
            .returns(201, schema::<SandboxCreated>(g))
            .location(),
        op("get_sandbox", "sandboxes", "The caller's sandbox").returns(200, schema::<Sandbox>(g)).errors(&[422]),
        op("delete_sandbox", "sandboxes", "Delete the caller's sandbox and its keys").empty(204),
        op("reset_sandbox", "sandboxes", "Empty the sandbox, keeping its keys")
            .idempotent(false)
            .returns(200, schema::<Sandbox>(g)),
        op("roll_api_key", "sandboxes", "Issue a new secret key")
            .describe("The previous secret key keeps working for a grace period (24 h of emulator clock by default), then answers 401.")
            .idempotent(false)
            .returns(201, schema::<ApiKeyRolled>(g)),
    ]
    .into_iter()
    .chain(catalogue::<ItemList, CreateItem, Item, UpdateItem>(g, &ITEMS, statuses.clone()))
    .chain(catalogue::<LocationList, CreateLocation, Location, UpdateLocation>(g, &LOCATIONS, statuses))
    .chain([
        op("list_stock_movements", "stock-movements", "List stock movements (the ledger)")
            .sdk("list_movements")
            .query("item_id", "Only this item.", json!({"type": "string"}))
            .query("location_id", "Only movements with a line at this location.", json!({"type": "string"}))
            .query("type", "Only this type.", string_enum(&["receipt", "shipment", "adjustment", "transfer"]))
            .query("after_sequence", "Only sequences greater than this.", json!({"type": "integer", "format": "int64", "minimum": 0}))
            .query("created_after", "Only created strictly after.", date_time())
            .query("created_before", "Only created strictly before.", date_time())
            .list()
            .returns(200, schema::<MovementList>(g)),
        op("create_stock_movement", "stock-movements", "Record a stock movement")
            .sdk("create_movement")
            .describe("Idempotency-Key is required. `If-Match` may carry the ETag of the (first) stock level it changes: stale → 412 and nothing is written. PUT, PATCH and DELETE on movements answer 405 `ledger_immutable` with `Allow: GET`.")
            .idempotent(true)
            .param(json!({"$ref": "#/components/parameters/IfMatch"}))
            .body(schema::<CreateMovement>(g), true)
            .returns(201, schema::<Movement>(g))
            .etag()
            .location()
            .errors(&[404, 409, 412]),
        op("create_stock_movement_batch", "stock-movements", "Record 1..=1000 movements, all or nothing")
            .sdk("create_movement_batch")
            .describe("An error names the failing entry, like `movements[3].quantity`.")
            .idempotent(true)
            .body(schema::<CreateMovementBatch>(g), true)
            .returns(201, schema::<MovementBatch>(g))
            .errors(&[404, 409]),
        op("get_stock_movement", "stock-movements", "Get a stock movement")
            .sdk("get_movement")
            .path_id("id", "stock movement")
            .conditional_get()
            .returns(200, schema::<Movement>(g)),
        op("reverse_stock_movement", "stock-movements", "Reverse a stock movement")
            .sdk("reverse_movement")
            .describe("Writes a new movement that undoes it (`reverses: <id>`); reversing twice answers 409 `already_reversed`.")
            .path_id("id", "stock movement")
            .idempotent(true)
            .body(schema::<ReverseMovement>(g), false)
            .returns(201, schema::<Movement>(g))
            .etag()
            .location()
            .errors(&[409]),
        op("list_stock_levels", "stock-levels", "List stock levels")
            .query("item_id", "Only this item.", json!({"type": "string"}))
            .query("location_id", "Only this location.", json!({"type": "string"}))
            .query("below_threshold", "Only levels below their item's low-stock threshold.", json!({"type": "boolean"}))
            .list()
            .returns(200, schema::<StockLevelList>(g)),
        op("get_stock_level", "stock-levels", "Get one stock level")
            .describe("A pair never moved reads quantity 0, version 0. `as_of` answers from the ledger at that time.")
            .path_id("item_id", "item")
            .path_id("location_id", "location")
            .query("as_of", "Answer as of this time.", date_time())
            .conditional_get()
            .returns(200, schema::<StockLevel>(g)),
        op("list_events", "events", "List events")
            .query("type", "Only this event type.", json!({"type": "string"}))
            .query("after", "Only events after this event id.", json!({"type": "string"}))
            .list()
            .returns(200, schema::<EventList>(g)),
        op("get_event", "events", "Get an event")
            .path_id("id", "event")
            .conditional_get()
            .returns(200, schema::<Event>(g)),
        op("list_webhook_endpoints", "webhooks", "List webhook endpoints")
            .list()
            .returns(200, schema::<WebhookEndpointList>(g)),
        op("create_webhook_endpoint", "webhooks", "Create a webhook endpoint")
            .describe("Answers with the endpoint and its `whsec_` signing secret. Deliveries are signed per Standard Webhooks and retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h of emulator time (8 attempts), then `dead`.")
            .idempotent(false)
            .body(schema::<CreateWebhookEndpoint>(g), true)
            .returns(201, schema::<WebhookEndpointWithSecret>(g))
            .etag()
            .location(),
        op("get_webhook_endpoint", "webhooks", "Get a webhook endpoint")
            .path_id("id", "webhook endpoint")
            .conditional_get()
            .returns(200, schema::<WebhookEndpoint>(g)),
        op("update_webhook_endpoint", "webhooks", "Update a webhook endpoint (JSON merge patch)")
            .path_id("id", "webhook endpoint")
            .if_match()
            .body(schema::<UpdateWebhookEndpoint>(g), true)
            .returns(200, schema::<WebhookEndpoint>(g))
            .etag(),
        op("delete_webhook_endpoint", "webhooks", "Delete a webhook endpoint")
            .describe("Its pending deliveries stop (they become `dead`).")
            .path_id("id", "webhook endpoint")
            .if_match()
            .empty(204),
        op("rotate_webhook_secret", "webhooks", "Rotate the signing secret")
            .describe("For 24 h of emulator time the old secret signs too: deliveries carry both signatures.")
            .path_id("id", "webhook endpoint")
            .idempotent(false)
            .returns(200, schema::<WebhookEndpointWithSecret>(g))
            .etag(),
        op("get_webhook_endpoint_secret", "webhooks", "Get the signing secret")
            .describe("Secret keys only (a restricted key gets 403 `forbidden`). No other read of an endpoint shows its secret; create and rotate-secret answer it too.")
            .path_id("id", "webhook endpoint")
            .returns(200, schema::<WebhookEndpointSecret>(g))
            .errors(&[403]),
        op("test_webhook_endpoint", "webhooks", "Send a `ping` event to this endpoint")
            .path_id("id", "webhook endpoint")
            .idempotent(false)
            .returns(202, schema::<WebhookDelivery>(g))
            .errors(&[409]),
        op("replay_webhook_endpoint", "webhooks", "Re-queue the endpoint's dead deliveries")
            .describe("Every `dead` delivery of the endpoint created in `[since, until)` is sent again (same `webhook-id`); answers the count.")
            .path_id("id", "webhook endpoint")
            .idempotent(false)
            .body(schema::<ReplayDeliveries>(g), false)
            .returns(202, schema::<ReplayCount>(g))
            .errors(&[409]),
        op("list_webhook_deliveries", "webhooks", "List webhook deliveries with every attempt")
            .query("endpoint_id", "Only this endpoint.", json!({"type": "string"}))
            .query("event_id", "Only this event.", json!({"type": "string"}))
            .query("status", "Only this status.", string_enum(&["pending", "failed", "succeeded", "dead"]))
            .list()
            .returns(200, schema::<WebhookDeliveryList>(g)),
        op("get_webhook_delivery", "webhooks", "Get a webhook delivery")
            .path_id("id", "webhook delivery")
            .returns(200, schema::<WebhookDelivery>(g))
            .errors(&[422]),
        op("replay_webhook_delivery", "webhooks", "Send a delivery again now")
            .describe("Same `webhook-id` (the event id), a fresh retry schedule.")
            .path_id("id", "webhook delivery")
            .idempotent(false)
            .returns(202, schema::<WebhookDelivery>(g))
            .errors(&[409]),
        op("list_plans", "billing", "The plans offered")
            .describe("`free` has hard quotas per month (api_requests 100000, ledger_lines 20000, webhook_attempts 20000): beyond them requests answer 429 `quota_exceeded` (webhook attempts wait for the next period). `pro` includes higher amounts and bills each unit beyond them (`overage_unit_amount`, integer minor units of `currency`).")
            .returns(200, schema::<PlanList>(g))
            .errors(&[422]),
        op("get_subscription", "billing", "The sandbox's plan and current billing period")
            .describe("Periods are calendar months (UTC) of the emulator clock.")
            .returns(200, schema::<Subscription>(g))
            .errors(&[422]),
        op("update_subscription", "billing", "Change the plan")
            .describe("The new plan's quotas apply at once; the period's invoice bills the plan held when the period ends.")
            .idempotent(false)
            .body(schema::<UpdateSubscription>(g), true)
            .returns(200, schema::<Subscription>(g)),
        op("get_usage", "billing", "Usage of a billing period per meter")
            .describe("Meters: `api_requests` (authenticated requests admitted, replays included; not those refused by the rate limit or the quota), `ledger_lines` (lines written), `webhook_attempts` (attempts made).")
            .query("period", "`current` (default) or a month `YYYY-MM`, not in the future.", json!({"type": "string", "pattern": "^(current|[0-9]{4}-[0-9]{2})$"}))
            .returns(200, schema::<UsageReport>(g))
            .errors(&[404]),
        op("export_usage", "billing", "Every usage row of a billing period")
            .describe("One record per metered unit group and meter: `time`, `meter`, `quantity`, `request_id` (or the `msg_` delivery of a webhook attempt, the `job_` of an import, `seed`). They sum to the period's usage and invoice. `format=csv` answers `text/csv` with header `time,meter,quantity,request_id`.")
            .query("period", "`current` (default) or a month `YYYY-MM`, not in the future.", json!({"type": "string", "pattern": "^(current|[0-9]{4}-[0-9]{2})$"}))
            .query("format", "`json` (default) or `csv`.", string_enum(&["json", "csv"]))
            .returns(200, schema::<UsageExport>(g))
            .csv()
            .errors(&[404]),
        op("list_invoices", "billing", "List invoices")
            .describe("An invoice is issued (with an `invoice.created` event) when the emulator clock passes the end of a period.")
            .list()
            .returns(200, schema::<InvoiceList>(g)),
        op("get_invoice", "billing", "Get an invoice")
            .describe("JSON, or CSV with `Accept: text/csv` (one record per meter and one `base` record; `amount` sums to `total`).")
            .path_id("id", "invoice")
            .returns(200, schema::<Invoice>(g))
            .csv()
            .errors(&[422]),
        op("list_reconciliations", "reconciliation", "List reconciliation runs")
            .list()
            .returns(200, schema::<ReconciliationList>(g)),
        op("create_reconciliation", "reconciliation", "Reconcile the stock levels with the ledger now")
            .describe("Recomputes every level (at `location_id`, if given) from the ledger and compares it with the snapshot; answers the completed run and writes `reconciliation.completed`. One also runs every day at 00:00 UTC of the emulator clock.")
            .idempotent(false)
            .body(schema::<CreateReconciliation>(g), false)
            .returns(201, schema::<Reconciliation>(g))
            .location()
            .errors(&[404]),
        op("get_reconciliation", "reconciliation", "Get a reconciliation run")
            .describe("JSON, or its discrepancies as CSV with `Accept: text/csv`.")
            .path_id("id", "reconciliation")
            .returns(200, schema::<Reconciliation>(g))
            .csv()
            .errors(&[422]),
        op("create_job", "jobs", "Import stock movements from CSV in the background")
            .describe("Checks the header and bounds (at most 4 MiB and 50000 rows; 4 jobs queued or running per sandbox, else 409 `too_many_jobs`), then answers 202 with the queued job. Every row needs a `reference`: a reference already imported is skipped, so re-running a file adds nothing twice. Bad rows are reported by line number (the header is line 1) and the rest still import.")
            .idempotent(false)
            .body(schema::<CreateJob>(g), true)
            .returns(202, schema::<Job>(g))
            .location()
            .errors(&[409]),
        op("get_job", "jobs", "Get a job and its progress")
            .path_id("id", "job")
            .returns(200, schema::<Job>(g))
            .errors(&[422]),
        op("emulator_health", "emulator", "Health").admin().returns(200, schema::<Health>(g)),
        op("emulator_get_clock", "emulator", "The emulator clock")
            .admin()
            .returns(200, schema::<ClockState>(g))
            .errors(&[422]),
        op("emulator_advance_clock", "emulator", "Move the clock forward")
            .describe("Moves every sandbox's clock. Fires everything that became due, in time order, before answering: webhook attempts, period ends (invoices, `invoice.created`), nightly reconciliations at 00:00 UTC, idempotency-key expiry, key grace periods.")
            .admin()
            .body(schema::<AdvanceClock>(g), true)
            .returns(200, schema::<ClockState>(g)),
        op("emulator_get_sandbox_clock", "emulator", "One sandbox's clock")
            .describe("Every sandbox has its own clock: the emulator clock plus the sandbox's own offset.")
            .admin()
            .path_id("id", "sandbox")
            .returns(200, schema::<SandboxClockState>(g))
            .errors(&[422]),
        op("emulator_advance_sandbox_clock", "emulator", "Move one sandbox's clock forward")
            .describe("Moves this sandbox's clock only (`seconds`, or `to` in the sandbox's time) and fires what became due in it, in time order, before answering: its webhook attempts, period ends and invoices, nightly reconciliations, idempotency-key expiry and key grace periods. Its rate limit refills and its new records are stamped by its clock. No other sandbox moves.")
            .admin()
            .path_id("id", "sandbox")
            .body(schema::<AdvanceClock>(g), true)
            .returns(200, schema::<SandboxClockState>(g)),
        op("emulator_list_faults", "emulator", "List armed faults").admin().returns(200, schema::<FaultList>(g)),
        op("emulator_add_fault", "emulator", "Arm a fault")
            .describe("`error_after_commit` and `drop_connection_after_commit` keep the stored idempotent response, so a retry with the same key receives the original result. With `sandbox_id` it matches only requests authenticated to that sandbox (404 for an unknown one).")
            .admin()
            .body(schema::<FaultSpec>(g), true)
            .returns(201, schema::<Fault>(g))
            .errors(&[404]),
        op("emulator_clear_faults", "emulator", "Disarm every fault").admin().empty(204),
        op("emulator_corrupt_stock_level", "emulator", "Skew one stock level's snapshot")
            .describe("Adds `delta` to what the (item, location) snapshot reads, leaving the ledger alone, so that reconciliation finds exactly that pair. The pair must have ledger lines.")
            .admin()
            .body(schema::<CorruptStockLevel>(g), true)
            .returns(200, schema::<CorruptedStockLevel>(g))
            .errors(&[404]),
        op("emulator_export_state", "emulator", "Export the whole state")
            .admin()
            .returns(200, Schema::from(json!({"type": "object", "description": "The emulator state (format_version 1)."}).as_object().cloned().unwrap_or_default())),
        op("emulator_import_state", "emulator", "Replace the whole state with an export")
            .admin()
            .body(Schema::from(json!({"type": "object"}).as_object().cloned().unwrap_or_default()), true)
            .empty(204),
        op("emulator_reset", "emulator", "Forget every sandbox, key and fault").admin().empty(204),
        op("emulator_load_fixtures", "emulator", "Create sandboxes with known contents and keys")
            .describe("All or nothing. Each sandbox gets its webhook endpoints first, then its items and locations (the fields of their create requests), then its movements (naming items by `sku` and locations by `code`), in document order, through the ledger like API calls (events, levels, deliveries). A bad entry answers 422 naming its path (`sandboxes[0].movements[3].sku`) and creates nothing: a duplicate SKU or code, an unknown one, insufficient stock, more ledger lines than the plan's quota. A given `secret_key` / `restricted_key` is `sk_test_` / `rk_test_` and 24..=64 of `[a-z0-9]` (else 422); one in use, or given twice, answers 409 `key_taken`. A given webhook `secret` is `whsec_` and the base64 of 24..=64 bytes. Bounds: the body limit, 100 sandboxes, per sandbox 10,000 items, 1,000 locations, 20,000 movements and 100 endpoints, and 100,000 entries in all.")
            .admin()
            .body(schema::<Fixtures>(g), true)
            .returns(201, schema::<FixturesLoaded>(g))
            .errors(&[409]),
        op("emulator_list_sink", "emulator", "What a built-in webhook sink received")
            .describe("Point a webhook endpoint at `<base URL>/_emulator/sink/<name>` to receive deliveries with no server of your own.")
            .admin()
            .path_id("name", "sink")
            .returns(200, schema::<SinkList>(g))
            .errors(&[422]),
        op("emulator_sink_receive", "emulator", "A built-in webhook sink: accepts any request")
            .admin()
            .path_id("name", "sink")
            .body(Schema::from(json!({}).as_object().cloned().unwrap_or_default()), false)
            .empty(204),
        op("emulator_clear_sink", "emulator", "Forget what a sink received")
            .admin()
            .path_id("name", "sink")
            .empty(204),
        op("emulator_list_requests", "emulator", "The request journal: the last requests to /v1 and their answers")
            .describe("Entries in the order they were recorded (each when its answer was ready: arrival order for a client that waits for each answer), oldest first. Every request under `/v1` is journaled (not `/_emulator`, `/metrics` or `/openapi`); at most `--journal-size` entries (default 10000; 0 turns the journal off) and `--journal-bytes` bytes (default 64 MiB), the oldest dropped first. Bodies are kept up to 64 KiB each (`truncated: true` past that) and shown as JSON when they parse, else as a string. `Authorization` and other credential headers show only the key prefix and last 4 characters (`Bearer sk_test_…a1b2`); keys and webhook signing secrets in the bodies of `POST /v1/sandboxes`, `POST /v1/api-keys/roll` and `/v1/webhook-endpoints…` are masked the same way. `cursor` is an entry `id`: the page starts after it, so the last id seen follows new entries (`twh-emulator requests --follow`).")
            .admin()
            .query("sandbox_id", "Only requests authenticated to this sandbox.", json!({"type": "string"}))
            .query("method", "Only this HTTP method (any case).", json!({"type": "string"}))
            .query("path_prefix", "Only paths starting with this.", json!({"type": "string"}))
            .query("status", "Only this status (`404`) or class (`4xx`).", json!({"type": "string"}))
            .query("request_id", "Only this `X-Request-Id` (every attempt of one SDK call).", json!({"type": "string"}))
            .query("idempotency_key", "Only this `Idempotency-Key`.", json!({"type": "string"}))
            .list()
            .returns(200, schema::<JournalPage>(g)),
        op("emulator_clear_requests", "emulator", "Empty the request journal").admin().empty(204),
        op("emulator_get_request", "emulator", "One journal entry")
            .admin()
            .path_id("id", "journal entry")
            .returns(200, schema::<JournalEntry>(g)),
        op("get_metrics", "emulator", "Prometheus metrics")
            .describe("Text exposition (OpenMetrics) of `twh_http_requests_total{method,route,status}`, `twh_http_request_duration_seconds{route}` (histogram), `twh_ledger_lines_total`, `twh_idempotent_replays_total`, `twh_rate_limited_total`, `twh_quota_exceeded_total{meter}`, `twh_webhook_attempts_total{outcome}`, and the gauges `twh_webhook_deliveries{status}`, `twh_sandboxes` and `twh_journal_entries`. `route` is the path template (`/v1/items/{id}`) or `unmatched`, so label sets stay bounded whatever the traffic.")
            .admin()
            .text("application/openmetrics-text"),
        op("get_openapi_document", "emulator", "This document")
            .admin()
            .returns(200, Schema::from(json!({"type": "object"}).as_object().cloned().unwrap_or_default())),
        op("get_postman_collection", "emulator", "A Postman collection (v2.1) made from this document")
            .describe("Import it into Postman (or run it with newman), set the collection variables `baseUrl` and `apiKey` (a sandbox's secret key), and run it: its requests create what later ones read, and test every status code. Generated by `cargo xtask openapi`, committed as `openapi/postman.json`.")
            .admin()
            .returns(200, Schema::from(json!({"type": "object"}).as_object().cloned().unwrap_or_default())),
    ])
    .collect()
}

/// Sent on every answer to an API key when rate limiting is on.
const RATE_LIMIT_HEADERS: [&str; 3] = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"];

fn response_headers(names: &[&str]) -> Value {
    let mut h = Map::new();
    h.insert("X-Request-Id".into(), json!({"$ref": "#/components/headers/X-Request-Id"}));
    for n in names {
        h.insert((*n).into(), json!({"$ref": format!("#/components/headers/{n}")}));
    }
    Value::Object(h)
}

fn error_response(code: u16) -> (&'static str, &'static str) {
    match code {
        304 => ("NotModified", "`If-None-Match` matched: no body."),
        400 => (
            "BadRequest",
            "Malformed request: `invalid_json`, `invalid_cursor`, `idempotency_key_required`, `invalid_idempotency_key`.",
        ),
        401 => ("Unauthenticated", "Missing, unknown or expired API key (`unauthenticated`)."),
        403 => ("Forbidden", "A restricted key tried to write (`forbidden`)."),
        404 => ("NotFound", "No such resource in this sandbox (`not_found`)."),
        409 => (
            "Conflict",
            "`insufficient_stock`, `sku_taken`, `code_taken`, `item_archived`, `location_archived`, `already_reversed`, `endpoint_disabled`, `delivery_in_flight`, `too_many_jobs`, `key_taken`, `idempotency_key_in_use` (with `Retry-After`).",
        ),
        412 => ("PreconditionFailed", "`If-Match` is stale (`precondition_failed`; the body carries `current_etag`)."),
        413 => ("PayloadTooLarge", "The body is over the limit (`payload_too_large`)."),
        415 => ("UnsupportedMediaType", "The body is not JSON (`unsupported_media_type`)."),
        422 => ("Unprocessable", "`validation_failed` (with `errors`) or `idempotency_key_reused`."),
        428 => ("PreconditionRequired", "`If-Match` is required (`precondition_required`)."),
        429 => (
            "TooManyRequests",
            "`rate_limited` (the key's token bucket is empty; `Retry-After` is when a token is back) or `quota_exceeded` (a hard quota of the plan is used up; `Retry-After` is the seconds to the end of the billing period). Nothing was written.",
        ),
        _ => ("InternalError", "The emulator failed, or an injected fault answered."),
    }
}

fn build() -> Value {
    let mut g = SchemaSettings::openapi3().with(|s| s.meta_schema = None).into_generator();
    let problem = g.subschema_for::<Problem>();
    let ops = operations(&mut g);
    let described: Vec<&str> = ops.iter().map(|o| o.id).collect();
    let listed: Vec<&str> = crate::api::OPERATIONS.iter().map(|o| o.id).collect();
    assert_eq!(described, listed, "the document describes every operation of api::OPERATIONS, in order");
    let mut paths = Map::new();
    let mut used_errors = std::collections::BTreeSet::new();
    for o in ops {
        let mut operation = Map::new();
        operation.insert("operationId".into(), json!(o.id));
        operation.insert("tags".into(), json!([o.tag]));
        if let Some(name) = o.sdk_name {
            operation.insert("x-sdk-name".into(), json!(name));
        }
        operation.insert("summary".into(), json!(o.summary));
        if !o.description.is_empty() {
            operation.insert("description".into(), json!(o.description));
        }
        if o.access == Access::Admin {
            operation.insert("security".into(), json!([{}, {"adminToken": []}]));
        }
        if !o.params.is_empty() {
            operation.insert("parameters".into(), Value::Array(o.params));
        }
        if let Some((s, required)) = o.body {
            operation.insert(
                "requestBody".into(),
                json!({"required": required, "content": {"application/json": {"schema": s}}}),
            );
        }
        let mut responses = Map::new();
        let mut ok = Map::new();
        ok.insert("description".into(), json!(if o.ok == 204 { "Done; no body." } else { "Success." }));
        let mut ok_headers = o.ok_headers.clone();
        if o.access == Access::Key {
            ok_headers.extend(RATE_LIMIT_HEADERS);
        }
        ok.insert("headers".into(), response_headers(&ok_headers));
        if let Some(s) = o.ok_schema {
            let mut content = json!({"application/json": {"schema": s}});
            if o.csv {
                content["text/csv"] = json!({"schema": {"type": "string"}});
            }
            ok.insert("content".into(), content);
        } else if let Some(media) = o.text {
            ok.insert("content".into(), json!({media: {"schema": {"type": "string"}}}));
        }
        responses.insert(o.ok.to_string(), Value::Object(ok));
        let mut errors = o.errors;
        errors.sort_unstable();
        for code in errors {
            let (name, _) = error_response(code);
            used_errors.insert(code);
            responses.insert(code.to_string(), json!({"$ref": format!("#/components/responses/{name}")}));
        }
        operation.insert("responses".into(), Value::Object(responses));
        let item = paths.entry(o.path).or_insert_with(|| json!({}));
        if let Some(item) = item.as_object_mut() {
            item.insert(o.method.into(), Value::Object(operation));
        }
    }
    let mut responses = Map::new();
    for code in used_errors {
        let (name, description) = error_response(code);
        let body = if code == 304 {
            json!({"description": description, "headers": response_headers(&["ETag"])})
        } else {
            let mut headers = response_headers(&[]);
            if matches!(code, 409 | 429) {
                headers["Retry-After"] = json!({"$ref": "#/components/headers/Retry-After"});
            }
            if code == 429 {
                for h in RATE_LIMIT_HEADERS {
                    headers[h] = json!({"$ref": format!("#/components/headers/{h}")});
                }
            }
            if code == 412 {
                headers["ETag"] = json!({"$ref": "#/components/headers/ETag"});
            }
            json!({
                "description": description,
                "headers": headers,
                "content": {"application/problem+json": {"schema": problem}},
            })
        };
        responses.insert(name.into(), body);
    }
    let schemas = g.take_definitions(true);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "TWH API",
            "version": "1.0.0",
            "description": "TWH is a ledger-first inventory API: an append-only stock-movement ledger with transactional stock-level snapshots, idempotent writes and ETag concurrency. This document is generated from the emulator's types (`cargo xtask openapi`); the emulator's control plane is under the `emulator` tag.",
        },
        "servers": [{"url": "http://127.0.0.1:4010", "description": "A local `twh-emulator serve`"}],
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "sandboxes", "description": "Tenants and their API keys."},
            {"name": "items", "description": "The catalogue of SKUs."},
            {"name": "locations", "description": "Warehouses, stores and virtual locations."},
            {"name": "stock-movements", "description": "The append-only ledger."},
            {"name": "stock-levels", "description": "Snapshots of (item, location) pairs."},
            {"name": "events", "description": "Everything that changed."},
            {"name": "webhooks", "description": "Signed deliveries of events, with retries, a dead-letter queue and replay."},
            {"name": "billing", "description": "Plans, the subscription, metered usage and invoices."},
            {"name": "reconciliation", "description": "Stock levels recomputed from the ledger and compared with the snapshots."},
            {"name": "jobs", "description": "Background imports."},
            {"name": "emulator", "description": "The emulator's own control plane (not part of the product API)."},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "`sk_test_…` (everything) or `rk_test_…` (read only)."},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "Only when the emulator runs with `--admin-token`."},
            },
            "parameters": {
                "Limit": {"name": "limit", "in": "query", "required": false, "description": "Page size.", "schema": {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": LIMIT_DEFAULT}},
                "Cursor": {"name": "cursor", "in": "query", "required": false, "description": "`next_cursor` of the previous page.", "schema": {"type": "string"}},
                "IdempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": false, "description": "Makes the request safe to retry: the first response is stored for 24 h and replayed byte-identical (`Idempotent-Replayed: true`). Bare or as an RFC 8941 quoted string.", "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LEN_MAX, "pattern": "^[\\x20-\\x7E]+$"}},
                "IdempotencyKeyRequired": {"name": "Idempotency-Key", "in": "header", "required": true, "description": "Required on ledger writes; see `IdempotencyKey`.", "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LEN_MAX, "pattern": "^[\\x20-\\x7E]+$"}},
                "IfMatch": {"name": "If-Match", "in": "header", "required": false, "description": "ETag(s) the target must still have (`\"<version>\"` or `*`).", "schema": {"type": "string"}},
                "IfMatchRequired": {"name": "If-Match", "in": "header", "required": true, "description": "The ETag you read (`\"<version>\"`) or `*`.", "schema": {"type": "string"}},
                "IfNoneMatch": {"name": "If-None-Match", "in": "header", "required": false, "description": "Answer 304 if the ETag still matches.", "schema": {"type": "string"}},
            },
            "headers": {
                "X-Request-Id": {"description": "The request id (yours, echoed, when you sent one).", "required": true, "schema": {"type": "string"}},
                "ETag": {"description": "Strong ETag `\"<version>\"`.", "required": true, "schema": {"type": "string"}},
                "Location": {"description": "Path of the created resource.", "required": true, "schema": {"type": "string"}},
                "Retry-After": {"description": "Seconds to wait before retrying.", "required": false, "schema": {"type": "integer"}},
                "RateLimit-Limit": {"description": "Requests this key may make in a burst (its token bucket's size).", "required": false, "schema": {"type": "integer"}},
                "RateLimit-Remaining": {"description": "Requests this key may still make at once.", "required": false, "schema": {"type": "integer"}},
                "RateLimit-Reset": {"description": "Seconds until the key's bucket is full again.", "required": false, "schema": {"type": "integer"}},
            },
            "responses": responses,
        },
    })
}

/// The Postman collection made from the document (`openapi/postman.json`, written by
/// `cargo xtask openapi`, whose `--check` fails when it is stale), served at
/// `GET /openapi/postman.json`.
pub const POSTMAN_COLLECTION: &str = include_str!("../../openapi/postman.json");

/// The document as JSON.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(build)
}

/// The document as pretty-printed text with a final newline (what is committed).
pub fn document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut s = serde_json::to_string_pretty(document()).unwrap_or_default();
        s.push('\n');
        s
    })
}
