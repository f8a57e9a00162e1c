//! `openapi/postman.json`: a Postman collection (schema v2.1) made from the OpenAPI document,
//! written by `cargo xtask openapi` next to the document and served by the emulator at
//! `GET /openapi/postman.json`.
//!
//! Why not a generic OpenAPI→Postman converter? They make one request per operation with
//! placeholder values, grouped by path: a run of such a collection cannot pass (the item a GET
//! reads does not exist; ledger writes lack their `Idempotency-Key`; `If-Match` is a guess). This
//! collection is a *run*: a newcomer sets `baseUrl` and `apiKey`, presses Run, and every request
//! passes, each creating what a later one reads (item → location → movement → level → …) and
//! testing its status code and what it says.
//!
//! What comes from the document: every request's method, path, parameter descriptions, summary
//! and description, and its expected status (the documented success status unless a step
//! expects a documented error). What the table in [`folders`] adds: the order, the values
//! (bodies; ids, ETags and keys saved from earlier answers into collection variables) and the
//! checks. Generation fails, naming the problem, when
//! - an operation of the document is neither in the run nor in [`LEFT_OUT`] (with why), or
//!   a step names an operation the document lacks;
//! - a step reads a variable (`{{name}}`) no earlier step saved, i.e. the order is wrong;
//! - a required path or header parameter has no value, or a step sends a parameter, a body or
//!   expects a status the document does not describe.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value, json};

/// The schema URL every v2.1 collection names.
const SCHEMA_V2_1: &str = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json";

/// Operations a full run leaves out, and why (a run must leave the emulator usable).
pub const LEFT_OUT: &[(&str, &str)] = &[
    ("emulator_reset", "forgets every sandbox of the emulator, the one whose key the run uses too"),
    ("emulator_import_state", "replaces the state of the whole emulator, every other sandbox's too"),
    ("emulator_clear_requests", "empties the request journal of the whole emulator, every other sandbox's requests too"),
];

/// How many times a waiting step ([`Step::until`]) asks again, 100 ms apart, before its tests
/// run anyway (and fail).
const WAIT_TRIES_MAX: u32 = 50;

/// Variables that exist before the first request: given by the user, or set by the first
/// request's pre-request script.
const GIVEN: [&str; 3] = ["baseUrl", "apiKey", "runId"];

/// One request of the run.
struct Step {
    name: String,
    op: &'static str,
    path: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
    status: Option<u16>,
    auth_var: Option<&'static str>,
    prerequest: Vec<String>,
    checks: Vec<(String, String)>,
    saves: Vec<(&'static str, String)>,
    until: Option<String>,
}

fn step(name: &str, op: &'static str) -> Step {
    Step {
        name: name.to_owned(),
        op,
        path: Vec::new(),
        query: Vec::new(),
        headers: Vec::new(),
        body: None,
        status: None,
        auth_var: None,
        prerequest: Vec::new(),
        checks: Vec::new(),
        saves: Vec::new(),
        until: None,
    }
}

impl Step {
    fn path(mut self, name: &'static str, value: &str) -> Step {
        self.path.push((name, value.to_owned()));
        self
    }
    fn query(mut self, name: &'static str, value: &str) -> Step {
        self.query.push((name, value.to_owned()));
        self
    }
    fn header(mut self, name: &'static str, value: &str) -> Step {
        self.headers.push((name, value.to_owned()));
        self
    }
    fn body(mut self, body: Value) -> Step {
        self.body = Some(body);
        self
    }
    /// Expects this (documented) status instead of the success status.
    fn status(mut self, status: u16) -> Step {
        self.status = Some(status);
        self
    }
    /// Sends `Authorization: Bearer {{var}}` instead of the collection's `{{apiKey}}`.
    fn auth(mut self, var: &'static str) -> Step {
        self.auth_var = Some(var);
        self
    }
    fn prerequest(mut self, js: &str) -> Step {
        self.prerequest.push(js.to_owned());
        self
    }
    /// A named test: JavaScript statements (`json()` is the parsed body).
    fn check(mut self, name: &str, js: &str) -> Step {
        self.checks.push((name.to_owned(), js.to_owned()));
        self
    }
    /// Saves a JavaScript expression's value into the collection variable `var` (when the
    /// status is the expected one).
    fn save(mut self, var: &'static str, js: &str) -> Step {
        self.saves.push((var, js.to_owned()));
        self
    }
    /// Asks again (at most [`WAIT_TRIES_MAX`] times, 100 ms apart) until the JavaScript
    /// condition holds: for what the emulator does in the background (deliveries, jobs).
    fn until(mut self, js: &str) -> Step {
        self.until = Some(js.to_owned());
        self
    }
    fn idempotency_key(self, key: &str) -> Step {
        self.header("Idempotency-Key", key)
    }
}

/// A folder of the collection.
struct Folder {
    name: &'static str,
    description: &'static str,
    steps: Vec<Step>,
}

fn check_code(code: &str) -> String {
    format!(
        r#"pm.expect(json().code).to.eql("{code}"); pm.expect(pm.response.headers.get("Content-Type")).to.include("application/problem+json");"#
    )
}

fn movement(type_: &str, quantity: i64) -> Value {
    json!({"type": type_, "item_id": "{{itemId}}", "location_id": "{{locationId}}", "quantity": quantity})
}

/// The run, in order.
fn folders() -> Vec<Folder> {
    vec![
        Folder {
            name: "1. The emulator and your sandbox",
            description: "Set the collection variables `baseUrl` (the emulator's URL, printed by `twh-emulator serve`) and `apiKey` (a sandbox's secret key `sk_test_…`, printed too), then run the collection. Each run makes its own `runId`, so runs never collide.",
            steps: vec![
                step("Health", "emulator_health")
                    .prerequest(r#"pm.collectionVariables.set("runId", pm.variables.replaceIn("{{$guid}}").slice(0, 12));"#)
                    .check("the emulator is up", r#"pm.expect(json().status).to.eql("ok");"#),
                step("The OpenAPI document", "get_openapi_document")
                    .check("an OpenAPI 3 document", r#"pm.expect(json().openapi).to.match(/^3\./);"#),
                step("This collection", "get_postman_collection")
                    .check("a v2.1 collection", &format!(r#"pm.expect(json().info.schema).to.eql("{SCHEMA_V2_1}");"#)),
                step("Your sandbox", "get_sandbox")
                    .check("a sandbox id", r#"pm.expect(json().id).to.match(/^sbx_/);"#)
                    .save("sandboxId", "json().id"),
            ],
        },
        Folder {
            name: "2. Items",
            description: "SKUs, with ETags: reads return one, updates and archives require it (`If-Match`).",
            steps: vec![
                step("Create an item", "create_item")
                    .body(json!({"sku": "PM-{{runId}}", "name": "Postman mug", "unit": "each", "low_stock_threshold": 5}))
                    .check("the item", r#"pm.expect(json().sku).to.eql("PM-" + pm.collectionVariables.get("runId")); pm.expect(json().id).to.match(/^itm_/);"#)
                    .check("its ETag and Location", r#"pm.expect(pm.response.headers.get("ETag")).to.match(/^"\d+"$/); pm.expect(pm.response.headers.get("Location")).to.eql("/v1/items/" + json().id);"#)
                    .save("itemId", "json().id")
                    .save("itemEtag", r#"pm.response.headers.get("ETag")"#)
                    .save("itemEtagAtCreation", r#"pm.response.headers.get("ETag")"#),
                step("The same SKU again is a conflict", "create_item")
                    .body(json!({"sku": "PM-{{runId}}", "name": "Postman mug again"}))
                    .status(409)
                    .check("sku_taken", &check_code("sku_taken")),
                step("Find it by SKU", "list_items")
                    .query("sku", "PM-{{runId}}")
                    .check("exactly that item", r#"pm.expect(json().data.map(i => i.id)).to.eql([pm.collectionVariables.get("itemId")]); pm.expect(json().next_cursor).to.eql(null);"#),
                step("Get the item", "get_item")
                    .path("id", "{{itemId}}")
                    .check("its ETag", r#"pm.expect(pm.response.headers.get("ETag")).to.eql(pm.collectionVariables.get("itemEtag"));"#),
                step("Unchanged since you read it", "get_item")
                    .path("id", "{{itemId}}")
                    .header("If-None-Match", "{{itemEtag}}")
                    .status(304)
                    .check("no body", r#"pm.expect(pm.response.text()).to.eql("");"#),
                step("Rename it", "update_item")
                    .path("id", "{{itemId}}")
                    .header("If-Match", "{{itemEtag}}")
                    .body(json!({"name": "Postman mug, blue"}))
                    .check("renamed, with a new ETag", r#"pm.expect(json().name).to.eql("Postman mug, blue"); pm.expect(pm.response.headers.get("ETag")).to.not.eql(pm.collectionVariables.get("itemEtag"));"#)
                    .save("itemEtag", r#"pm.response.headers.get("ETag")"#),
                step("A stale If-Match is refused", "update_item")
                    .path("id", "{{itemId}}")
                    .header("If-Match", "{{itemEtagAtCreation}}")
                    .body(json!({"name": "Lost update"}))
                    .status(412)
                    .check("precondition_failed, with the current ETag", &format!(r#"{} pm.expect(json().current_etag).to.eql(pm.collectionVariables.get("itemEtag"));"#, check_code("precondition_failed"))),
            ],
        },
        Folder {
            name: "3. Locations",
            description: "Warehouses, stores and virtual locations: the same shape as items.",
            steps: vec![
                step("Create a warehouse", "create_location")
                    .body(json!({"code": "PM-WH-{{runId}}", "name": "Postman warehouse", "kind": "warehouse"}))
                    .check("the location", r#"pm.expect(json().id).to.match(/^loc_/); pm.expect(json().kind).to.eql("warehouse");"#)
                    .save("locationId", "json().id")
                    .save("locationEtag", r#"pm.response.headers.get("ETag")"#),
                step("Create a store", "create_location")
                    .body(json!({"code": "PM-ST-{{runId}}", "name": "Postman store", "kind": "store"}))
                    .save("storeId", "json().id"),
                step("Find the warehouse by code", "list_locations")
                    .query("code", "PM-WH-{{runId}}")
                    .query("kind", "warehouse")
                    .check("exactly that location", r#"pm.expect(json().data.map(l => l.id)).to.eql([pm.collectionVariables.get("locationId")]);"#),
                step("Get the warehouse", "get_location")
                    .path("id", "{{locationId}}")
                    .check("its code", r#"pm.expect(json().code).to.eql("PM-WH-" + pm.collectionVariables.get("runId"));"#),
                step("Rename the warehouse", "update_location")
                    .path("id", "{{locationId}}")
                    .header("If-Match", "{{locationEtag}}")
                    .body(json!({"name": "Postman warehouse, north"}))
                    .check("renamed", r#"pm.expect(json().name).to.eql("Postman warehouse, north");"#)
                    .save("locationEtag", r#"pm.response.headers.get("ETag")"#),
            ],
        },
        Folder {
            name: "4. A webhook endpoint",
            description: "Deliveries of `stock_movement.created` go to the emulator's built-in sink (`/_emulator/sink/{name}`), so no server of your own is needed.",
            steps: vec![
                step("Register an endpoint on the built-in sink", "create_webhook_endpoint")
                    .body(json!({"url": "{{baseUrl}}/_emulator/sink/postman-{{runId}}", "event_types": ["stock_movement.created"], "description": "Postman run {{runId}}"}))
                    .check("a signing secret", r#"pm.expect(json().secret).to.match(/^whsec_/); pm.expect(json().enabled).to.eql(true);"#)
                    .save("endpointId", "json().id")
                    .save("endpointSecret", "json().secret")
                    .save("endpointEtag", r#"pm.response.headers.get("ETag")"#),
                step("List endpoints", "list_webhook_endpoints")
                    .query("limit", "100")
                    .check("it is listed", r#"pm.expect(json().data.map(e => e.id)).to.include(pm.collectionVariables.get("endpointId"));"#),
                step("Get the endpoint", "get_webhook_endpoint")
                    .path("id", "{{endpointId}}")
                    .check("its event types, and no secret", r#"pm.expect(json().event_types).to.eql(["stock_movement.created"]); pm.expect(json()).to.not.have.property("secret");"#),
                step("Describe the endpoint", "update_webhook_endpoint")
                    .path("id", "{{endpointId}}")
                    .header("If-Match", "{{endpointEtag}}")
                    .body(json!({"description": "Postman run {{runId}}: movements"}))
                    .check("described", r#"pm.expect(json().description).to.include("movements");"#)
                    .save("endpointEtag", r#"pm.response.headers.get("ETag")"#),
            ],
        },
        Folder {
            name: "5. The ledger and stock levels",
            description: "Ledger writes require an `Idempotency-Key`; a movement may be conditional on the stock level's ETag (`If-Match`).",
            steps: vec![
                step("The level before any movement", "get_stock_level")
                    .path("item_id", "{{itemId}}")
                    .path("location_id", "{{locationId}}")
                    .check("quantity 0, version 0", r#"pm.expect(json().quantity).to.eql(0); pm.expect(json().version).to.eql(0); pm.expect(pm.response.headers.get("ETag")).to.eql('"0"');"#),
                step("Receive 10", "create_stock_movement")
                    .idempotency_key("receipt-{{runId}}")
                    .body(json!({"type": "receipt", "item_id": "{{itemId}}", "location_id": "{{locationId}}", "quantity": 10, "reference": "PO-{{runId}}"}))
                    .check("one line, 10 after", r#"pm.expect(json().lines).to.have.lengthOf(1); pm.expect(json().lines[0].quantity_after).to.eql(10); pm.expect(pm.response.headers.get("ETag")).to.eql('"1"');"#)
                    .save("movementId", "json().id")
                    .save("levelEtag", r#"pm.response.headers.get("ETag")"#)
                    .save("beforeReceiptAt", "new Date(Date.parse(json().created_at) - 1000).toISOString()"),
                step("The same key again replays the answer", "create_stock_movement")
                    .idempotency_key("receipt-{{runId}}")
                    .body(json!({"type": "receipt", "item_id": "{{itemId}}", "location_id": "{{locationId}}", "quantity": 10, "reference": "PO-{{runId}}"}))
                    .check("the same movement, replayed", r#"pm.expect(pm.response.headers.get("Idempotent-Replayed")).to.eql("true"); pm.expect(json().id).to.eql(pm.collectionVariables.get("movementId"));"#),
                step("The same key with another body is refused", "create_stock_movement")
                    .idempotency_key("receipt-{{runId}}")
                    .body(movement("receipt", 11))
                    .status(422)
                    .check("idempotency_key_reused", &check_code("idempotency_key_reused")),
                step("Sell 3 if the level is still the one read", "create_stock_movement")
                    .idempotency_key("{{$guid}}")
                    .header("If-Match", "{{levelEtag}}")
                    .body(movement("shipment", 3))
                    .check("7 left", r#"pm.expect(json().lines[0].delta).to.eql(-3); pm.expect(json().lines[0].quantity_after).to.eql(7);"#),
                step("The same If-Match again is stale", "create_stock_movement")
                    .idempotency_key("{{$guid}}")
                    .header("If-Match", "{{levelEtag}}")
                    .body(movement("shipment", 3))
                    .status(412)
                    .check("precondition_failed", &check_code("precondition_failed")),
                step("Selling more than there is is refused", "create_stock_movement")
                    .idempotency_key("{{$guid}}")
                    .body(movement("shipment", 1000))
                    .status(409)
                    .check("insufficient_stock", &check_code("insufficient_stock")),
                step("Transfer 2 to the store", "create_stock_movement")
                    .idempotency_key("{{$guid}}")
                    .body(json!({"type": "transfer", "item_id": "{{itemId}}", "from_location_id": "{{locationId}}", "to_location_id": "{{storeId}}", "quantity": 2}))
                    .check("two lines", r#"pm.expect(json().lines.map(l => l.delta)).to.eql([-2, 2]);"#)
                    .save("transferId", "json().id"),
                step("Receive a batch of two, all or nothing", "create_stock_movement_batch")
                    .idempotency_key("{{$guid}}")
                    .body(json!({"movements": [
                        movement("receipt", 5),
                        {"type": "receipt", "item_id": "{{itemId}}", "location_id": "{{storeId}}", "quantity": 5},
                    ]}))
                    .check("two movements", r#"pm.expect(json().data).to.have.lengthOf(2);"#),
                step("Get the first movement", "get_stock_movement")
                    .path("id", "{{movementId}}")
                    .check("the receipt", r#"pm.expect(json().type).to.eql("receipt"); pm.expect(json().reference).to.eql("PO-" + pm.collectionVariables.get("runId"));"#),
                step("Reverse the transfer", "reverse_stock_movement")
                    .path("id", "{{transferId}}")
                    .idempotency_key("{{$guid}}")
                    .body(json!({"reason": "Postman: undo the transfer"}))
                    .check("it reverses the transfer", r#"pm.expect(json().reverses).to.eql(pm.collectionVariables.get("transferId")); pm.expect(json().lines.map(l => l.delta)).to.eql([2, -2]);"#),
                step("The item's ledger", "list_stock_movements")
                    .query("item_id", "{{itemId}}")
                    .check("six movements (receipt, sale, transfer, two batched, reversal), in sequence order", r#"const seq = json().data.map(m => m.sequence); pm.expect(seq).to.have.lengthOf(6); pm.expect(seq).to.eql([...seq].sort((a, b) => a - b));"#),
                step("The level now, with its ETag", "get_stock_level")
                    .path("item_id", "{{itemId}}")
                    .path("location_id", "{{locationId}}")
                    .check("10 − 3 − 2 + 5 + 2 = 12, five lines", r#"pm.expect(json().quantity).to.eql(12); pm.expect(json().version).to.eql(5); pm.expect(pm.response.headers.get("ETag")).to.eql('"5"');"#),
                step("The level before the first receipt", "get_stock_level")
                    .path("item_id", "{{itemId}}")
                    .path("location_id", "{{locationId}}")
                    .query("as_of", "{{beforeReceiptAt}}")
                    .check("0 then", r#"pm.expect(json().quantity).to.eql(0);"#),
                step("The item's levels", "list_stock_levels")
                    .query("item_id", "{{itemId}}")
                    .check("warehouse 12, store 5", r#"const q = {}; json().data.forEach(l => { q[l.location_id] = l.quantity; }); pm.expect(q[pm.collectionVariables.get("locationId")]).to.eql(12); pm.expect(q[pm.collectionVariables.get("storeId")]).to.eql(5);"#),
            ],
        },
        Folder {
            name: "6. Events and webhook deliveries",
            description: "Every change wrote an event; the endpoint received the `stock_movement.created` ones, signed per Standard Webhooks.",
            steps: vec![
                step("Deliveries to the endpoint", "list_webhook_deliveries")
                    .query("endpoint_id", "{{endpointId}}")
                    .query("status", "succeeded")
                    .until("json().data.length >= 1")
                    .check("a succeeded delivery", r#"pm.expect(json().data.length).to.be.above(0); pm.expect(json().data[0].status).to.eql("succeeded");"#)
                    .save("deliveryId", "json().data[0].id")
                    .save("eventId", "json().data[0].event_id"),
                step("Get the delivery", "get_webhook_delivery")
                    .path("id", "{{deliveryId}}")
                    .check("answered 2xx", r#"const a = json().attempts; pm.expect(a.length).to.be.above(0); pm.expect(a[a.length - 1].status_code).to.be.within(200, 299);"#),
                step("Get its event", "get_event")
                    .path("id", "{{eventId}}")
                    .check("a stock_movement.created event", r#"pm.expect(json().type).to.eql("stock_movement.created"); pm.expect(json().data.item_id).to.eql(pm.collectionVariables.get("itemId"));"#),
                step("Events of that type", "list_events")
                    .query("type", "stock_movement.created")
                    .check("only that type", r#"pm.expect(json().data.length).to.be.above(0); json().data.forEach(e => pm.expect(e.type).to.eql("stock_movement.created"));"#),
                step("What the sink received", "emulator_list_sink")
                    .path("name", "postman-{{runId}}")
                    .check("the event, signed", r#"const got = json().data.find(d => d.headers["webhook-id"] === pm.collectionVariables.get("eventId")); pm.expect(got, "a delivery of the event").to.be.an("object"); pm.expect(got.headers["webhook-signature"]).to.match(/^v1,/);"#),
                step("Send the delivery again", "replay_webhook_delivery")
                    .path("id", "{{deliveryId}}")
                    .check("the same event", r#"pm.expect(json().event_id).to.eql(pm.collectionVariables.get("eventId"));"#),
                step("Send a test ping", "test_webhook_endpoint").path("id", "{{endpointId}}"),
                step("Rotate the signing secret", "rotate_webhook_secret")
                    .path("id", "{{endpointId}}")
                    .check("a new secret", r#"pm.expect(json().secret).to.match(/^whsec_/); pm.expect(json().secret).to.not.eql(pm.collectionVariables.get("endpointSecret"));"#)
                    .save("endpointEtag", r#"pm.response.headers.get("ETag")"#),
                step("Read the signing secret (secret keys only)", "get_webhook_endpoint_secret")
                    .path("id", "{{endpointId}}")
                    .check("the rotated secret", r#"pm.expect(json().secret).to.match(/^whsec_/); pm.expect(json().secret).to.not.eql(pm.collectionVariables.get("endpointSecret"));"#),
                step("Re-queue the endpoint's dead deliveries", "replay_webhook_endpoint")
                    .path("id", "{{endpointId}}")
                    .body(json!({"status": "dead"}))
                    .check("none are dead", r#"pm.expect(json().count).to.eql(0);"#),
                step("Post to a sink yourself", "emulator_sink_receive")
                    .path("name", "postman-{{runId}}-manual")
                    .body(json!({"hello": "sink"})),
                step("Forget what the sink received", "emulator_clear_sink").path("name", "postman-{{runId}}-manual"),
                step("Delete the endpoint", "delete_webhook_endpoint")
                    .path("id", "{{endpointId}}")
                    .header("If-Match", "{{endpointEtag}}"),
            ],
        },
        Folder {
            name: "7. Reconciliation and import jobs",
            description: "Stock levels recomputed from the ledger; movements imported from CSV in the background.",
            steps: vec![
                step("Reconcile the warehouse", "create_reconciliation")
                    .body(json!({"location_id": "{{locationId}}"}))
                    .check("no discrepancy", r#"pm.expect(json().status).to.eql("completed"); pm.expect(json().discrepancies).to.eql([]);"#)
                    .save("reconciliationId", "json().id"),
                step("Get the reconciliation", "get_reconciliation")
                    .path("id", "{{reconciliationId}}")
                    .check("checked levels", r#"pm.expect(json().checked).to.be.above(0);"#),
                step("List reconciliations", "list_reconciliations").query("limit", "100"),
                step("Import movements from CSV", "create_job")
                    .body(json!({"type": "import_movements", "format": "csv", "data": "type,item_id,location_id,quantity,reference\nreceipt,{{itemId}},{{locationId}},4,PM-IMPORT-{{runId}}-1\nreceipt,{{itemId}},{{locationId}},0,PM-IMPORT-{{runId}}-2\n"}))
                    .save("jobId", "json().id"),
                step("The job, once finished", "get_job")
                    .path("id", "{{jobId}}")
                    .until(r#"!["queued", "running"].includes(json().status)"#)
                    .check("one row imported, line 3 refused", r#"pm.expect(json().status).to.eql("completed_with_errors"); pm.expect(json().created).to.eql(1); pm.expect(json().errors.map(e => e.line)).to.eql([3]);"#),
            ],
        },
        Folder {
            name: "8. Plans, usage and faults",
            description: "Metering, and the emulator's fault injection (a fault armed here answers once, then is spent).",
            steps: vec![
                step("Plans", "list_plans")
                    .check("free and pro", r#"pm.expect(json().data.map(p => p.id)).to.include.members(["free", "pro"]);"#),
                step("Your subscription", "get_subscription")
                    .check("a period", r#"pm.expect(Date.parse(json().period_end)).to.be.above(Date.parse(json().period_start));"#),
                step("Usage this month", "get_usage")
                    .check("ledger lines counted", r#"const m = json().meters.find(m => m.meter === "ledger_lines"); pm.expect(m.quantity).to.be.above(0);"#),
                step("Usage rows as CSV", "export_usage")
                    .query("format", "csv")
                    .check("a CSV", r#"pm.expect(pm.response.headers.get("Content-Type")).to.include("text/csv"); pm.expect(pm.response.text().split("\n")[0].split(",")).to.have.members(["time", "meter", "quantity", "request_id"]);"#),
                step("The emulator clock", "emulator_get_clock").save("clockNow", "json().now"),
                step("This sandbox's own clock", "emulator_get_sandbox_clock")
                    .path("id", "{{sandboxId}}")
                    .check("this sandbox", r#"pm.expect(json().sandbox_id).to.eql(pm.collectionVariables.get("sandboxId"));"#),
                step("Advance this sandbox's clock a minute (no other sandbox moves)", "emulator_advance_sandbox_clock")
                    .path("id", "{{sandboxId}}")
                    .body(json!({"seconds": 60}))
                    .check("a minute ahead of the emulator clock", r#"pm.expect(json().sandbox_offset_seconds).to.be.at.least(60);"#),
                step("Arm a fault: this sandbox's next GET /v1/plans fails", "emulator_add_fault")
                    .body(json!({"method": "GET", "path_prefix": "/v1/plans", "sandbox_id": "{{sandboxId}}", "action": "error_before_commit", "status": 500, "times": 1}))
                    .check("armed once, for this sandbox", r#"pm.expect(json().remaining).to.eql(1); pm.expect(json().sandbox_id).to.eql(pm.collectionVariables.get("sandboxId"));"#),
                step("Armed faults", "emulator_list_faults")
                    .check("the fault", r#"pm.expect(json().data.some(f => f.path_prefix === "/v1/plans")).to.eql(true);"#),
                step("Plans, under the fault", "list_plans").status(500),
                step("Plans again, the fault spent", "list_plans"),
                step("Disarm every fault", "emulator_clear_faults"),
                step("Skew the warehouse's snapshot by one", "emulator_corrupt_stock_level").body(json!({"tenant_id": "{{sandboxId}}", "item_id": "{{itemId}}", "location_id": "{{locationId}}", "delta": 1})),
                step("Reconciliation finds the skew", "create_reconciliation")
                    .body(json!({"location_id": "{{locationId}}"}))
                    .check("one discrepancy of 1", r#"const d = json().discrepancies; pm.expect(d).to.have.lengthOf(1); pm.expect(d[0].item_id).to.eql(pm.collectionVariables.get("itemId")); pm.expect(d[0].difference).to.satisfy(x => Math.abs(x) === 1);"#),
                step("Export the whole state", "emulator_export_state")
                    .check("an object", r#"pm.expect(json()).to.be.an("object");"#),
                step("The request journal: this run's requests to /v1/plans", "emulator_list_requests")
                    .query("sandbox_id", "{{sandboxId}}")
                    .query("path_prefix", "/v1/plans")
                    .query("limit", "100")
                    .check("the faulted request and the one after it", r#"const d = json().data; pm.expect(d.some(e => e.status === 500 && e.fault && e.fault.action === "error_before_commit")).to.eql(true); pm.expect(d[d.length - 1].status).to.eql(200);"#)
                    .save("journalEntryId", "json().data[json().data.length - 1].id"),
                step("One journal entry", "emulator_get_request")
                    .path("id", "{{journalEntryId}}")
                    .check("the key masked", r#"pm.expect(json().request.headers.authorization).to.include("…"); pm.expect(json().request.headers.authorization).to.not.include(pm.collectionVariables.get("apiKey") || pm.environment.get("apiKey") || "none");"#),
                step("Prometheus metrics", "get_metrics")
                    .check("the request counter by route template", r#"pm.expect(pm.response.text()).to.include('twh_http_requests_total{method="GET",route="/v1/plans",status="200"}');"#),
            ],
        },
        Folder {
            name: "9. A month later: the invoice",
            description: "Advancing the emulator clock past the month's end issues the month's invoice.",
            steps: vec![
                step("Advance the clock 40 days", "emulator_advance_clock")
                    .body(json!({"seconds": 3_456_000}))
                    .check("later", r#"pm.expect(Date.parse(json().now)).to.be.above(Date.parse(pm.collectionVariables.get("clockNow")) + 3456000 * 1000 - 1);"#),
                step("Invoices", "list_invoices")
                    .query("limit", "100")
                    .check("at least one", r#"pm.expect(json().data.length).to.be.above(0);"#)
                    .save("invoiceId", "json().data[json().data.length - 1].id"),
                step("Get the invoice", "get_invoice")
                    .path("id", "{{invoiceId}}")
                    .check("lines summing to the total", r#"const i = json(); pm.expect(i.lines.map(l => l.meter)).to.include("ledger_lines"); pm.expect(i.subtotal).to.eql(i.base_amount + i.lines.reduce((s, l) => s + l.amount, 0));"#),
                step("The invoice as CSV", "get_invoice")
                    .path("id", "{{invoiceId}}")
                    .header("Accept", "text/csv")
                    .check("a CSV", r#"pm.expect(pm.response.headers.get("Content-Type")).to.include("text/csv");"#),
            ],
        },
        Folder {
            name: "10. Archiving",
            description: "Nothing with ledger history is erased: an archived item stays readable and takes no new movement.",
            steps: vec![
                step("Archive the item", "archive_item")
                    .path("id", "{{itemId}}")
                    .header("If-Match", "{{itemEtag}}")
                    .check("archived", r#"pm.expect(json().status).to.eql("archived");"#),
                step("An archived item takes no movement", "create_stock_movement")
                    .idempotency_key("{{$guid}}")
                    .body(movement("receipt", 1))
                    .status(409)
                    .check("item_archived", &check_code("item_archived")),
                step("Archive the warehouse", "archive_location")
                    .path("id", "{{locationId}}")
                    .header("If-Match", "{{locationEtag}}")
                    .check("archived", r#"pm.expect(json().status).to.eql("archived");"#),
            ],
        },
        Folder {
            name: "11. A scratch sandbox: plan, reset, key roll, delete",
            description: "What would end your own sandbox is done to a new one, with its own key.",
            steps: vec![
                step("Create a scratch sandbox with demo data", "create_sandbox")
                    .body(json!({"name": "postman-scratch-{{runId}}", "seed": "demo", "plan": "free"}))
                    .check("its keys", r#"pm.expect(json().secret_key).to.match(/^sk_test_/); pm.expect(json().restricted_key).to.match(/^rk_test_/);"#)
                    .save("scratchKey", "json().secret_key")
                    .save("scratchRestrictedKey", "json().restricted_key"),
                step("Its demo items", "list_items")
                    .auth("scratchKey")
                    .check("some", r#"pm.expect(json().data.length).to.be.above(0);"#),
                step("A restricted key may not write", "create_item")
                    .auth("scratchRestrictedKey")
                    .body(json!({"sku": "NOPE", "name": "Not allowed"}))
                    .status(403)
                    .check("forbidden", &check_code("forbidden")),
                step("Move it to the pro plan", "update_subscription")
                    .auth("scratchKey")
                    .body(json!({"plan": "pro"}))
                    .check("pro", r#"pm.expect(json().plan).to.eql("pro");"#),
                step("Reset it", "reset_sandbox").auth("scratchKey"),
                step("Empty after the reset", "list_items")
                    .auth("scratchKey")
                    .check("no items", r#"pm.expect(json().data).to.eql([]);"#),
                step("Roll its secret key", "roll_api_key")
                    .auth("scratchKey")
                    .check("a new key", r#"pm.expect(json().secret_key).to.match(/^sk_test_/); pm.expect(json().secret_key).to.not.eql(pm.collectionVariables.get("scratchKey"));"#)
                    .save("scratchKey", "json().secret_key"),
                step("Delete it", "delete_sandbox").auth("scratchKey"),
                step("Its key no longer works", "get_sandbox")
                    .auth("scratchKey")
                    .status(401)
                    .check("unauthenticated", &check_code("unauthenticated")),
                step("Create a sandbox from fixtures", "emulator_load_fixtures")
                    .body(json!({"sandboxes": [{
                        "name": "postman-fixtures-{{runId}}",
                        "items": [{"sku": "FX-1", "name": "Fixture item"}],
                        "locations": [{"code": "FX-WH", "name": "Fixture warehouse", "kind": "warehouse"}],
                        "movements": [{"type": "receipt", "sku": "FX-1", "location": "FX-WH", "quantity": 5}]
                    }]}))
                    .check("one sandbox with its keys", r#"const s = json().sandboxes; pm.expect(s).to.have.lengthOf(1); pm.expect(s[0].secret_key).to.match(/^sk_test_/); pm.expect(s[0].restricted_key).to.match(/^rk_test_/);"#)
                    .save("fixtureKey", "json().sandboxes[0].secret_key"),
                step("The fixture's stock level", "list_stock_levels")
                    .auth("fixtureKey")
                    .check("the receipt's 5", r#"pm.expect(json().data.map(l => l.quantity)).to.eql([5]);"#),
                step("Delete the fixture sandbox", "delete_sandbox").auth("fixtureKey"),
            ],
        },
    ]
}

/// `{{name}}` references in a string (Postman's dynamic `{{$…}}` variables excluded).
fn variables_in(text: &str, out: &mut Vec<String>) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = &after[..end];
        if !name.starts_with('$') {
            out.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
}

fn variables_in_value(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => variables_in(s, out),
        Value::Array(a) => a.iter().for_each(|v| variables_in_value(v, out)),
        Value::Object(o) => o.values().for_each(|v| variables_in_value(v, out)),
        _ => {}
    }
}

/// The documented parameters of an operation, `$ref`s resolved.
fn parameters<'a>(doc: &'a Value, op: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for p in op["parameters"].as_array().into_iter().flatten() {
        match p["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/parameters/");
                out.push(&doc["components"]["parameters"][name]);
            }
            None => out.push(p),
        }
    }
    out
}

fn js_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The test script of a step.
fn test_script(s: &Step, status: u16) -> Vec<String> {
    let mut tests = vec![
        "function json() { return pm.response.json(); }".to_owned(),
        format!(
            "pm.test({}, function () {{ pm.response.to.have.status({status}); }});",
            js_string(&format!("answers {status}"))
        ),
    ];
    for (name, code) in &s.checks {
        tests.push(format!("pm.test({}, function () {{ {code} }});", js_string(name)));
    }
    if !s.saves.is_empty() {
        tests.push(format!("if (pm.response.code === {status}) {{"));
        for (var, expr) in &s.saves {
            tests.push(format!("    pm.collectionVariables.set({}, {expr});", js_string(var)));
        }
        tests.push("}".to_owned());
    }
    let Some(until) = &s.until else { return tests };
    // Ask again (this same request next) until the condition holds, a bounded number of times.
    let mut script = vec![
        "function json() { return pm.response.json(); }".to_owned(),
        "const tries = Number(pm.collectionVariables.get(\"waitTries\") || 0);".to_owned(),
        format!(
            "let ready = false; try {{ ready = pm.response.code === {status} && Boolean({until}); }} catch (e) {{ ready = false; }}"
        ),
        format!("if (!ready && tries < {WAIT_TRIES_MAX}) {{"),
        "    pm.collectionVariables.set(\"waitTries\", tries + 1);".to_owned(),
        "    pm.execution.setNextRequest(pm.info.requestName);".to_owned(),
        "    setTimeout(function () {}, 100);".to_owned(),
        "} else {".to_owned(),
        "    pm.collectionVariables.unset(\"waitTries\");".to_owned(),
    ];
    script.extend(tests.into_iter().skip(1).map(|l| format!("    {l}")));
    script.push("}".to_owned());
    script
}

fn event(listen: &str, exec: Vec<String>) -> Value {
    json!({"listen": listen, "script": {"type": "text/javascript", "exec": exec}})
}

fn bearer(var: &str) -> Value {
    json!({"type": "bearer", "bearer": [{"key": "token", "value": format!("{{{{{var}}}}}"), "type": "string"}]})
}

/// Builds one request item, checking it against the document.
fn request(doc: &Value, s: &Step, defined: &mut HashSet<String>) -> Result<Value, String> {
    let here = format!("step {:?} ({})", s.name, s.op);
    let (path, method, op) = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| item.as_object().into_iter().flatten().map(move |(m, op)| (path, m, op)))
        .find(|(_, _, op)| op["operationId"] == s.op)
        .ok_or_else(|| format!("{here}: the document has no operation {}", s.op))?;
    let params = parameters(doc, op);
    let param = |location: &str, name: &str| {
        params.iter().find(|p| p["in"] == location && p["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    };

    // Every variable read was saved by an earlier step (or is given).
    let mut reads = Vec::new();
    s.path.iter().chain(&s.query).for_each(|(_, v)| variables_in(v, &mut reads));
    s.headers.iter().for_each(|(_, v)| variables_in(v, &mut reads));
    if let Some(b) = &s.body {
        variables_in_value(b, &mut reads);
    }
    reads.extend(s.auth_var.map(str::to_owned));
    if let Some(missing) = reads.iter().find(|v| !defined.contains(*v)) {
        return Err(format!("{here} reads {{{{{missing}}}}} before any step saves it"));
    }

    // Parameters: given ones are documented, required ones are given.
    for (name, _) in &s.path {
        param("path", name).ok_or_else(|| format!("{here}: no path parameter {name} in the document"))?;
    }
    for (name, _) in &s.query {
        param("query", name).ok_or_else(|| format!("{here}: no query parameter {name} in the document"))?;
    }
    for (name, _) in &s.headers {
        if !name.eq_ignore_ascii_case("accept") {
            param("header", name).ok_or_else(|| format!("{here}: no header parameter {name} in the document"))?;
        }
    }
    for p in &params {
        let name = p["name"].as_str().unwrap_or_default();
        let given = match p["in"].as_str() {
            Some("path") => s.path.iter().any(|(n, _)| *n == name),
            Some("header") => s.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
            _ => true,
        };
        if p["required"] == true && !given {
            return Err(format!("{here}: the required parameter {name} has no value"));
        }
    }
    let body_doc = &op["requestBody"];
    match (&s.body, body_doc.is_null()) {
        (Some(_), true) => return Err(format!("{here}: sends a body the document does not take")),
        (None, false) if body_doc["required"] == true => return Err(format!("{here}: the required body is missing")),
        _ => {}
    }

    // The expected status is documented.
    let responses = op["responses"].as_object().ok_or_else(|| format!("{here}: no responses"))?;
    let success = responses
        .keys()
        .find(|c| c.starts_with('2'))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{here}: no success status"))?;
    let status = s.status.unwrap_or(success);
    if !responses.contains_key(&status.to_string()) {
        return Err(format!("{here}: expects {status}, which the document does not list"));
    }

    // The URL: `:name` path variables (Postman's syntax), query parameters with their
    // descriptions, and the other documented query parameters present but disabled.
    let mut segments = Vec::new();
    let mut path_vars = Vec::new();
    for seg in path.trim_start_matches('/').split('/') {
        match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => {
                segments.push(format!(":{name}"));
                let value = s.path.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).unwrap_or_default();
                let description = param("path", name).and_then(|p| p["description"].as_str()).unwrap_or_default();
                path_vars.push(json!({"key": name, "value": value, "description": description}));
            }
            None => segments.push(seg.to_owned()),
        }
    }
    let mut query = Vec::new();
    let mut raw_query = Vec::new();
    for (name, value) in &s.query {
        let description = param("query", name).and_then(|p| p["description"].as_str()).unwrap_or_default();
        query.push(json!({"key": name, "value": value, "description": description}));
        raw_query.push(format!("{name}={value}"));
    }
    for p in &params {
        let name = p["name"].as_str().unwrap_or_default();
        if p["in"] == "query" && !s.query.iter().any(|(n, _)| *n == name) {
            query.push(json!({"key": name, "value": "", "description": p["description"], "disabled": true}));
        }
    }
    let mut raw = format!("{{{{baseUrl}}}}/{}", segments.join("/"));
    if !raw_query.is_empty() {
        raw = format!("{raw}?{}", raw_query.join("&"));
    }
    let mut url = Map::new();
    url.insert("raw".into(), json!(raw));
    url.insert("host".into(), json!(["{{baseUrl}}"]));
    url.insert("path".into(), json!(segments));
    if !query.is_empty() {
        url.insert("query".into(), Value::Array(query));
    }
    if !path_vars.is_empty() {
        url.insert("variable".into(), Value::Array(path_vars));
    }

    let mut headers = Vec::new();
    for (name, value) in &s.headers {
        let description = param("header", name).and_then(|p| p["description"].as_str()).unwrap_or_default();
        headers.push(json!({"key": name, "value": value, "description": description}));
    }
    let mut req = Map::new();
    req.insert("method".into(), json!(method.to_ascii_uppercase()));
    if let Some(b) = &s.body {
        headers.push(json!({"key": "Content-Type", "value": "application/json"}));
        let text = serde_json::to_string_pretty(b).map_err(|e| e.to_string())?;
        req.insert("body".into(), json!({"mode": "raw", "raw": text, "options": {"raw": {"language": "json"}}}));
    }
    req.insert("header".into(), Value::Array(headers));
    req.insert("url".into(), Value::Object(url));
    if let Some(var) = s.auth_var {
        req.insert("auth".into(), bearer(var));
    }
    let mut description = op["summary"].as_str().unwrap_or_default().to_owned();
    if let Some(d) = op["description"].as_str() {
        description = format!("{description}\n\n{d}");
    }
    description = format!("{description}\n\n`{} {path}` (`{}`)", method.to_ascii_uppercase(), s.op);
    req.insert("description".into(), json!(description));

    let mut events = Vec::new();
    if !s.prerequest.is_empty() {
        events.push(event("prerequest", s.prerequest.clone()));
    }
    events.push(event("test", test_script(s, status)));
    for (var, _) in &s.saves {
        defined.insert((*var).to_owned());
    }
    Ok(json!({"name": s.name, "event": events, "request": req, "response": []}))
}

/// Builds the collection from the document and the run in [`folders`].
fn build(doc: &Value, folders: &[Folder]) -> Result<Value, String> {
    let mut defined: HashSet<String> = GIVEN.iter().map(|v| (*v).to_owned()).collect();
    let mut names = HashSet::new();
    let mut used = BTreeSet::new();
    let mut saved = Vec::new();
    let mut items = Vec::new();
    for f in folders {
        let mut requests = Vec::new();
        for s in &f.steps {
            if !names.insert(s.name.clone()) {
                return Err(format!("two steps are named {:?} (names must be unique: waits repeat by name)", s.name));
            }
            requests.push(request(doc, s, &mut defined)?);
            used.insert(s.op);
            for (var, _) in &s.saves {
                if !saved.contains(var) {
                    saved.push(*var);
                }
            }
        }
        items.push(json!({"name": f.name, "description": f.description, "item": requests}));
    }
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, item)| item.as_object().into_iter().flatten().filter_map(|(_, op)| op["operationId"].as_str()))
        .collect();
    for (id, _) in LEFT_OUT {
        if used.contains(id) {
            return Err(format!("{id} is both in the run and left out"));
        }
        if !documented.contains(id) {
            return Err(format!("{id} is left out but not in the document"));
        }
    }
    let forgotten: Vec<_> =
        documented.iter().filter(|id| !used.contains(*id) && !LEFT_OUT.iter().any(|(l, _)| l == *id)).collect();
    if !forgotten.is_empty() {
        return Err(format!("operations neither in the run nor in LEFT_OUT: {forgotten:?}"));
    }

    let base_url = doc["servers"][0]["url"].as_str().unwrap_or("http://127.0.0.1:4010");
    let mut variables = vec![
        json!({"key": "baseUrl", "value": base_url, "type": "string", "description": "The emulator's URL (`twh-emulator serve` prints it)."}),
        json!({"key": "apiKey", "value": "", "type": "string", "description": "A sandbox's secret key `sk_test_…` (`twh-emulator serve` prints one)."}),
        json!({"key": "runId", "value": "", "type": "string", "description": "Set by the first request: makes this run's SKUs, codes and keys unique."}),
    ];
    for var in saved {
        variables.push(json!({"key": var, "value": "", "type": "string", "description": "Saved by the run."}));
    }
    let left_out: Vec<String> = LEFT_OUT.iter().map(|(id, why)| format!("- `{id}`: {why}")).collect();
    let description = format!(
        "{}\n\nGenerated from the OpenAPI document {} by `cargo xtask openapi`; do not edit.\n\nSet `baseUrl` and `apiKey`, then run the whole collection: requests are in order, each creates what later ones read and tests its status code. Left out of the run:\n{}",
        doc["info"]["description"].as_str().unwrap_or_default(),
        doc["info"]["version"].as_str().unwrap_or_default(),
        left_out.join("\n"),
    );
    Ok(json!({
        "info": {"name": doc["info"]["title"], "description": description, "schema": SCHEMA_V2_1},
        "auth": bearer("apiKey"),
        "variable": variables,
        "item": items,
    }))
}

/// The collection as committed: pretty-printed JSON with a final newline.
pub fn collection_text(doc: &Value) -> Result<String, String> {
    let collection = build(doc, &folders())?;
    let mut text = serde_json::to_string_pretty(&collection).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> &'static Value {
        twh_emulator::openapi::document()
    }

    #[test]
    fn committed_collection_is_fresh_and_is_what_the_emulator_serves() {
        let committed = std::fs::read_to_string(crate::root().join("openapi/postman.json")).expect("read");
        assert!(
            collection_text(doc()).expect("builds") == committed,
            "openapi/postman.json is stale: run `cargo xtask openapi`"
        );
        assert_eq!(twh_emulator::openapi::POSTMAN_COLLECTION, committed, "the emulator serves the committed file");
    }

    #[test]
    fn every_documented_operation_is_run_or_left_out_for_a_reason() {
        let c = build(doc(), &folders()).expect("builds");
        assert_eq!(c["info"]["schema"], SCHEMA_V2_1);
        assert_eq!(c["auth"]["bearer"][0]["value"], "{{apiKey}}");
        let requests: Vec<&Value> =
            c["item"].as_array().unwrap().iter().flat_map(|f| f["item"].as_array().unwrap()).collect();
        // Ledger writes carry an Idempotency-Key; every request tests its status.
        for r in &requests {
            let exec = r["event"].as_array().unwrap().iter().find(|e| e["listen"] == "test").unwrap()["script"]["exec"]
                .to_string();
            assert!(exec.contains("pm.response.to.have.status("), "{}", r["name"]);
            if r["request"]["url"]["raw"].as_str().unwrap().contains("/v1/stock-movements")
                && r["request"]["method"] == "POST"
            {
                assert!(
                    r["request"]["header"].as_array().unwrap().iter().any(|h| h["key"] == "Idempotency-Key"),
                    "{}",
                    r["name"]
                );
            }
        }
        // The first requests follow the path a newcomer takes.
        let first: Vec<&str> = requests.iter().map(|r| r["name"].as_str().unwrap()).collect();
        let at = |n: &str| first.iter().position(|x| *x == n).unwrap();
        assert!(at("Your sandbox") < at("Create an item"));
        assert!(at("Create an item") < at("Create a warehouse"));
        assert!(at("Create a warehouse") < at("Receive 10"));
        assert!(at("Receive 10") < at("The level now, with its ETag"));
        // Destructive operations are left out or come last, on a sandbox of their own.
        assert_eq!(requests.last().unwrap()["request"]["auth"]["bearer"][0]["value"], "{{scratchKey}}");
        let delete = at("Delete it");
        assert!(requests[delete]["request"]["auth"]["bearer"][0]["value"] == "{{scratchKey}}");
        assert!(requests.iter().all(|r| !r["request"]["url"]["raw"].as_str().unwrap().ends_with("/_emulator/reset")));
    }

    fn one(step: Step) -> Result<Value, String> {
        // A run with every operation of the document is needed to pass the coverage check, so the
        // checks on one step are tested through `request` directly.
        let mut defined: HashSet<String> = GIVEN.iter().map(|v| (*v).to_owned()).collect();
        request(doc(), &step, &mut defined)
    }

    #[test]
    fn a_step_that_reads_a_variable_before_it_is_saved_is_refused() {
        let e = one(step("Get", "get_item").path("id", "{{itemId}}")).unwrap_err();
        assert!(e.contains("reads {{itemId}} before any step saves it"), "{e}");
        let e = one(step("Auth", "get_sandbox").auth("scratchKey")).unwrap_err();
        assert!(e.contains("{{scratchKey}}"), "{e}");
        // Dynamic variables are Postman's own.
        assert!(one(step("Receive", "create_stock_movement").idempotency_key("{{$guid}}").body(json!({}))).is_ok());
    }

    #[test]
    fn a_step_the_document_does_not_describe_is_refused() {
        let e = one(step("Nope", "no_such_operation")).unwrap_err();
        assert!(e.contains("has no operation no_such_operation"), "{e}");
        let e = one(step("Receive", "create_stock_movement").body(json!({}))).unwrap_err();
        assert!(e.contains("required parameter Idempotency-Key has no value"), "{e}");
        let e = one(step("Plans", "list_plans").status(418)).unwrap_err();
        assert!(e.contains("expects 418"), "{e}");
        let e = one(step("Plans", "list_plans").query("colour", "blue")).unwrap_err();
        assert!(e.contains("no query parameter colour"), "{e}");
        let e = one(step("Plans", "list_plans").body(json!({}))).unwrap_err();
        assert!(e.contains("body the document does not take"), "{e}");
        let e = one(step("Item", "create_item")).unwrap_err();
        assert!(e.contains("required body is missing"), "{e}");
    }

    #[test]
    fn an_operation_neither_run_nor_left_out_is_refused() {
        let mut f = folders();
        let dropped = f[0].steps.remove(0).op;
        let e = build(doc(), &f).unwrap_err();
        assert!(e.contains(dropped), "{e}");
    }

    #[test]
    fn waiting_steps_are_bounded() {
        let s = step("Wait", "list_plans").until("json().data.length > 0");
        let script = test_script(&s, 200).join("\n");
        assert!(script.contains(&format!("tries < {WAIT_TRIES_MAX}")));
        assert!(script.contains("pm.execution.setNextRequest(pm.info.requestName)"));
    }
}
