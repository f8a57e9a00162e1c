//! Fixtures (API.md §5): `POST /_emulator/fixtures` and `serve --fixtures FILE` create sandboxes
//! with known keys and contents, through the ledger (levels, events, webhook deliveries to the
//! built-in sink); a bad entry is 422 naming its path and creates nothing; a key in use is 409
//! `key_taken`; with `--data-dir` the fixtures survive a SIGKILL and load only into an empty dir.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use twh_emulator::domain::billing::{PerMeter, Plans};
use twh_emulator::domain::registry::Settings;
use twh_emulator::ids;
use twh_emulator::{Config, HttpConfig};

use crate::common::{Api, Env, eventually, id};

fn secret_key() -> String {
    ids::random("sk_test_", 40)
}

fn restricted_key() -> String {
    ids::random("rk_test_", 24)
}

/// A sandbox with two items, two locations, a receipt, a transfer, a shipment (an issue) and an
/// adjustment by SKU and code, and an endpoint to `sink` signing with `whsec`.
fn shop(name: &str, sk: &str, rk: &str, sink: &str, whsec: &str) -> Value {
    json!({
        "name": name, "plan": "pro", "secret_key": sk, "restricted_key": rk,
        "items": [
            {"sku": "TEE", "name": "T-shirt", "low_stock_threshold": 5},
            {"sku": "MUG", "name": "Mug", "unit": "each", "attributes": {"colour": "white"}}
        ],
        "locations": [
            {"code": "WH", "name": "Warehouse", "kind": "warehouse"},
            {"code": "SHOP", "name": "Shop", "kind": "store"}
        ],
        "movements": [
            {"type": "receipt", "sku": "TEE", "location": "WH", "quantity": 100, "reference": "PO-1"},
            {"type": "receipt", "sku": "MUG", "location": "WH", "quantity": 10},
            {"type": "transfer", "sku": "TEE", "from_location": "WH", "to_location": "SHOP", "quantity": 30},
            {"type": "shipment", "sku": "TEE", "location": "SHOP", "quantity": 4, "reference": "SO-1"},
            {"type": "adjustment", "sku": "MUG", "location": "WH", "quantity": -2, "reason": "count"}
        ],
        "webhook_endpoints": [{"url": sink, "event_types": ["stock_movement.created"], "secret": whsec}]
    })
}

fn sandbox_count(env: &Env) -> usize {
    env.emu.state().world.tenants().len()
}

/// The id of the item with this SKU and of the location with this code.
async fn ids_of(api: &Api, sku: &str, code: &str) -> (String, String) {
    let item = api.get(&format!("/v1/items?sku={sku}")).await.ok(200);
    let location = api.get(&format!("/v1/locations?code={code}")).await.ok(200);
    (id(&item["data"][0]), id(&location["data"][0]))
}

async fn quantity(api: &Api, sku: &str, code: &str) -> i64 {
    let (item, location) = ids_of(api, sku, code).await;
    api.level(&item, &location).await["quantity"].as_i64().expect("quantity")
}

/// Checks a sandbox made by [`shop`]: keys, levels, ledger, events, usage, endpoint secret, and
/// that `sink` (of `sink_api`'s emulator) received the five `stock_movement.created` deliveries
/// signed with `whsec`.
async fn check_shop(api: &Api, rk: &str, whsec: &str, sink_api: &Api, sink: &str) {
    let sandbox = api.get("/v1/sandbox").await.ok(200);
    assert_eq!(sandbox["plan"], "pro");
    assert_eq!(quantity(api, "TEE", "WH").await, 70);
    assert_eq!(quantity(api, "TEE", "SHOP").await, 26);
    assert_eq!(quantity(api, "MUG", "WH").await, 8);
    let movements = api.all("/v1/stock-movements").await;
    let sequences: Vec<u64> = movements.iter().map(|m| m["sequence"].as_u64().unwrap()).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    let types: Vec<&str> = movements.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["receipt", "receipt", "transfer", "shipment", "adjustment"]);
    assert_eq!(movements[0]["reference"], "PO-1");
    assert_eq!(movements[2]["lines"].as_array().unwrap().len(), 2, "a transfer is two lines");
    let events = api.all("/v1/events").await;
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(
        (
            count("item.created"),
            count("location.created"),
            count("stock_movement.created"),
            count("stock_level.updated")
        ),
        (2, 2, 5, 6)
    );
    let usage = api.get("/v1/usage").await.ok(200);
    let lines = usage["meters"].as_array().unwrap().iter().find(|m| m["meter"] == "ledger_lines").unwrap().clone();
    assert_eq!(lines["quantity"], 6, "the fixture's lines are metered: {usage}");
    let endpoints = api.all("/v1/webhook-endpoints").await;
    assert_eq!(endpoints.len(), 1);
    let secret = api.get(&format!("/v1/webhook-endpoints/{}/secret", id(&endpoints[0]))).await.ok(200);
    assert_eq!(secret["secret"], whsec, "the given signing secret");
    // The restricted key reads and may not write.
    let read_only = api.with_key(Some(rk));
    assert_eq!(read_only.get("/v1/sandbox").await.ok(200)["id"], sandbox["id"]);
    read_only.post("/v1/items", &json!({"sku": "NEW", "name": "New"})).await.expect(403, "forbidden");
    // The sink received each movement's event, signed with the given secret.
    let movement_events: Vec<&str> =
        events.iter().filter(|e| e["type"] == "stock_movement.created").map(|e| e["id"].as_str().unwrap()).collect();
    let received = eventually("five deliveries in the sink", 20, || async {
        let got = sink_api.get(&format!("/_emulator/sink/{sink}")).await.ok(200)["data"].as_array().unwrap().clone();
        (got.len() >= 5).then_some(got)
    })
    .await;
    let secret = twh_webhooks::Secret::parse(whsec).expect("secret");
    let mut ids: Vec<&str> = Vec::new();
    for r in &received {
        let h = twh_webhooks::Headers {
            id: r["headers"]["webhook-id"].as_str().unwrap(),
            timestamp: r["headers"]["webhook-timestamp"].as_str().unwrap(),
            signature: r["headers"]["webhook-signature"].as_str().unwrap(),
        };
        let body = r["body"].as_str().unwrap();
        twh_webhooks::verify(&secret, h, body.as_bytes(), chrono::Utc::now().timestamp(), 300).expect("signature");
        ids.push(r["headers"]["webhook-id"].as_str().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut want = movement_events.clone();
    want.sort_unstable();
    assert_eq!(ids, want, "one delivery per stock_movement.created event");
    // The ledger goes on from the fixture like from any API call.
    let (tee, shop) = ids_of(api, "TEE", "SHOP").await;
    let next = api.shipment(&tee, &shop, 26).await.ok(201);
    assert_eq!(next["sequence"], 6);
    api.shipment(&tee, &shop, 1).await.expect(409, "insufficient_stock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixtures_over_http_create_sandboxes_with_the_given_keys_contents_and_deliveries() {
    let env = Env::new().await;
    let before = sandbox_count(&env);
    let (sk, rk) = (secret_key(), restricted_key());
    let whsec = twh_webhooks::Secret::generate().expose();
    let sink_url = format!("{}/_emulator/sink/fixtures-http", env.emu.base_url());
    let doc = json!({"sandboxes": [shop("shop", &sk, &rk, &sink_url, &whsec), {"name": "empty one"}]});
    let created = env.anonymous().post("/_emulator/fixtures", &doc).await.ok(201);
    let sandboxes = created["sandboxes"].as_array().expect("sandboxes");
    assert_eq!(sandboxes.len(), 2);
    assert_eq!(
        (sandboxes[0]["secret_key"].as_str(), sandboxes[0]["restricted_key"].as_str()),
        (Some(&*sk), Some(&*rk))
    );
    assert_eq!((&sandboxes[0]["name"], &sandboxes[0]["plan"]), (&json!("shop"), &json!("pro")));
    assert_eq!(sandboxes[1]["plan"], "free", "the default plan");
    for (field, prefix) in [("secret_key", "sk_test_"), ("restricted_key", "rk_test_")] {
        let drawn = sandboxes[1][field].as_str().expect("a drawn key");
        assert!(twh_emulator::domain::fixtures::key_is_well_formed(drawn, prefix), "{drawn}");
    }
    assert_eq!(sandbox_count(&env), before + 2);

    let api = env.api.with_key(Some(&sk));
    assert_eq!(api.get("/v1/sandbox").await.ok(200)["id"], sandboxes[0]["id"]);
    check_shop(&api, &rk, &whsec, &env.anonymous(), "fixtures-http").await;
    let empty = env.api.with_key(sandboxes[1]["secret_key"].as_str());
    assert_eq!(empty.get("/v1/sandbox").await.ok(200)["name"], "empty one");
    assert!(empty.all("/v1/items").await.is_empty());
    assert!(empty.all("/v1/events").await.is_empty());
    // Another sandbox's data stays its own.
    assert!(env.api.all("/v1/items").await.is_empty());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_is_422_naming_its_path_and_creates_nothing() {
    // A `free` plan of 5 ledger lines a month, to meet its quota.
    let mut plans = Plans::default();
    plans.free.quotas = PerMeter { ledger_lines: 5, ..plans.free.quotas };
    let env =
        Env::with_config(Config { settings: Settings { plans, ..Settings::default() }, ..Config::default() }).await;
    let before = sandbox_count(&env);
    let (sk, rk) = (secret_key(), restricted_key());
    let good = || {
        json!({"name": "good", "secret_key": sk, "restricted_key": rk,
        "items": [{"sku": "A", "name": "A"}, {"sku": "B", "name": "B"}],
        "locations": [{"code": "L1", "name": "One", "kind": "store"}, {"code": "L2", "name": "Two", "kind": "virtual"}],
        "movements": [
            {"type": "receipt", "sku": "A", "location": "L1", "quantity": 5},
            {"type": "shipment", "sku": "A", "location": "L1", "quantity": 2},
            {"type": "transfer", "sku": "A", "from_location": "L1", "to_location": "L2", "quantity": 1}
        ]})
    };
    let doc = |edit: &dyn Fn(&mut Value)| {
        let mut second = good();
        second["name"] = json!("second");
        second.as_object_mut().unwrap().remove("secret_key");
        second.as_object_mut().unwrap().remove("restricted_key");
        edit(&mut second);
        json!({"sandboxes": [good(), second]})
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "sandboxes[1].movements[3].sku",
            Box::new(|s| {
                push(s, "movements", json!({"type": "receipt", "sku": "NOPE", "location": "L1", "quantity": 1}))
            }),
        ),
        (
            "sandboxes[1].movements[3].location",
            Box::new(|s| {
                push(s, "movements", json!({"type": "receipt", "sku": "B", "location": "NOPE", "quantity": 1}))
            }),
        ),
        (
            "sandboxes[1].movements[3].to_location",
            Box::new(|s| {
                push(
                    s,
                    "movements",
                    json!({"type": "transfer", "sku": "A", "from_location": "L1", "to_location": "NOPE", "quantity": 1}),
                )
            }),
        ),
        (
            "sandboxes[1].movements[3].from_location",
            Box::new(|s| {
                push(s, "movements", json!({"type": "transfer", "sku": "A", "to_location": "L1", "quantity": 1}))
            }),
        ),
        (
            "sandboxes[1].movements[3].location",
            Box::new(|s| push(s, "movements", json!({"type": "shipment", "sku": "A", "quantity": 1}))),
        ),
        // An issue of more than is there: insufficient stock.
        (
            "sandboxes[1].movements[3].quantity",
            Box::new(|s| {
                push(s, "movements", json!({"type": "shipment", "sku": "A", "location": "L1", "quantity": 3}))
            }),
        ),
        (
            "sandboxes[1].movements[3].quantity",
            Box::new(|s| {
                push(
                    s,
                    "movements",
                    json!({"type": "transfer", "sku": "A", "from_location": "L2", "to_location": "L1", "quantity": 2}),
                )
            }),
        ),
        (
            "sandboxes[1].movements[3].quantity",
            Box::new(|s| push(s, "movements", json!({"type": "receipt", "sku": "A", "location": "L1", "quantity": 0}))),
        ),
        // The plan's hard ledger_lines quota (5): the fourth movement would write the 5th and 6th.
        (
            "sandboxes[1].movements[4]",
            Box::new(|s| {
                push(s, "movements", json!({"type": "receipt", "sku": "B", "location": "L1", "quantity": 1}));
                push(
                    s,
                    "movements",
                    json!({"type": "transfer", "sku": "B", "from_location": "L1", "to_location": "L2", "quantity": 1}),
                );
            }),
        ),
        ("sandboxes[1].items[2].sku", Box::new(|s| push(s, "items", json!({"sku": "A", "name": "again"})))),
        ("sandboxes[1].items[2].sku", Box::new(|s| push(s, "items", json!({"sku": "has space", "name": "x"})))),
        (
            "sandboxes[1].items[2].colour",
            Box::new(|s| push(s, "items", json!({"sku": "C", "name": "C", "colour": "red"}))),
        ),
        (
            "sandboxes[1].items[2].low_stock_threshold",
            Box::new(|s| push(s, "items", json!({"sku": "C", "name": "C", "low_stock_threshold": -1}))),
        ),
        ("sandboxes[1].locations[2].code", Box::new(|s| push(s, "locations", json!({"code": "L1", "name": "again"})))),
        (
            "sandboxes[1].locations[2].kind",
            Box::new(|s| push(s, "locations", json!({"code": "L3", "name": "x", "kind": "moon"}))),
        ),
        (
            "sandboxes[1].webhook_endpoints[0].url",
            Box::new(|s| push(s, "webhook_endpoints", json!({"url": "ftp://x", "event_types": ["*"]}))),
        ),
        (
            "sandboxes[1].webhook_endpoints[0].event_types[0]",
            Box::new(|s| push(s, "webhook_endpoints", json!({"url": "http://127.0.0.1:9/x", "event_types": ["nope"]}))),
        ),
        (
            "sandboxes[1].webhook_endpoints[0].secret",
            Box::new(|s| {
                push(
                    s,
                    "webhook_endpoints",
                    json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": "whsec_c2hvcnQ="}),
                )
            }),
        ),
        (
            "sandboxes[1].webhook_endpoints[0].secret",
            Box::new(|s| {
                let bare = twh_webhooks::Secret::generate().expose().trim_start_matches("whsec_").to_owned();
                push(
                    s,
                    "webhook_endpoints",
                    json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": bare}),
                );
            }),
        ),
        ("sandboxes[1].name", Box::new(|s| s["name"] = json!(""))),
        ("sandboxes[1].plan", Box::new(|s| s["plan"] = json!("gold"))),
        (
            "sandboxes[1].name",
            Box::new(|s| {
                s.as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "sandboxes[1].items",
            Box::new(|s| {
                s["items"] =
                    json!((0..10_001).map(|i| json!({"sku": format!("S{i}"), "name": "x"})).collect::<Vec<_>>())
            }),
        ),
    ];
    let anon = env.anonymous();
    for (path, edit) in &cases {
        let r = anon.post("/_emulator/fixtures", &doc(&**edit)).await;
        r.expect(422, "validation_failed");
        assert_eq!(r.error_fields(), [*path], "{}", r.text());
        assert!(r.json()["detail"].as_str().unwrap().contains(path), "the detail names the path: {}", r.text());
    }
    let r = anon.post("/_emulator/fixtures", &json!({"sandboxes": []})).await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), ["sandboxes"]);
    let many: Vec<Value> = (0..101).map(|i| json!({"name": format!("s{i}")})).collect();
    let r = anon.post("/_emulator/fixtures", &json!({"sandboxes": many})).await;
    assert_eq!((r.status, r.error_fields()), (422, vec!["sandboxes".to_owned()]), "{}", r.text());
    anon.send(
        anon.req(reqwest::Method::POST, "/_emulator/fixtures").header("content-type", "application/json").body("{"),
    )
    .await
    .expect(400, "invalid_json");

    // Nothing was created: no sandbox, and the first sandbox's given keys open nothing.
    assert_eq!(sandbox_count(&env), before);
    for key in [&sk, &rk] {
        env.api.with_key(Some(key)).get("/v1/sandbox").await.expect(401, "unauthenticated");
    }
    // The same document without the bad entry loads.
    let created = anon.post("/_emulator/fixtures", &doc(&|_| {})).await.ok(201);
    assert_eq!(created["sandboxes"][0]["secret_key"], json!(sk));
    assert_eq!(sandbox_count(&env), before + 2);
    let api = env.api.with_key(Some(&sk));
    assert_eq!((quantity(&api, "A", "L1").await, quantity(&api, "A", "L2").await), (2, 1));
    env.shutdown().await;
}

/// A change to a fixture sandbox that makes it bad.
type Edit = Box<dyn Fn(&mut Value)>;

fn push(sandbox: &mut Value, list: &str, entry: Value) {
    match sandbox.get_mut(list).and_then(Value::as_array_mut) {
        Some(a) => a.push(entry),
        None => sandbox[list] = json!([entry]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_use_is_409_key_taken_and_a_malformed_key_is_422() {
    let env = Env::new().await;
    let anon = env.anonymous();
    let before = sandbox_count(&env);
    let post = |doc: Value| {
        let anon = anon.clone();
        async move { anon.post("/_emulator/fixtures", &doc).await }
    };
    // In use by an existing sandbox (made by the API).
    for (field, key) in [("secret_key", &env.sandbox.secret_key), ("restricted_key", &env.sandbox.restricted_key)] {
        let r = post(json!({"sandboxes": [{"name": "ok"}, {"name": "x", field: key}]})).await;
        r.expect(409, "key_taken");
        assert_eq!(r.error_fields(), [format!("sandboxes[1].{field}")]);
    }
    // Given twice in one document.
    let sk = secret_key();
    let r = post(json!({"sandboxes": [{"name": "a", "secret_key": sk}, {"name": "b", "secret_key": sk}]})).await;
    r.expect(409, "key_taken");
    assert_eq!(r.error_fields(), ["sandboxes[1].secret_key"]);
    assert_eq!(sandbox_count(&env), before);
    // In use by an earlier fixture.
    post(json!({"sandboxes": [{"name": "a", "secret_key": sk}]})).await.ok(201);
    let r = post(json!({"sandboxes": [{"name": "again", "secret_key": sk}]})).await;
    r.expect(409, "key_taken");
    assert_eq!(sandbox_count(&env), before + 1);
    // Malformed: wrong prefix, too short, too long, upper case, punctuation.
    let malformed = [
        ("secret_key", ids::random("rk_test_", 30)),
        ("secret_key", ids::random("sk_live_", 30)),
        ("secret_key", ids::random("sk_test_", 23)),
        ("secret_key", ids::random("sk_test_", 65)),
        ("secret_key", format!("sk_test_{}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
        ("restricted_key", format!("rk_test_{}-x", "a".repeat(30))),
        ("restricted_key", ids::random("sk_test_", 30)),
    ];
    for (field, key) in malformed {
        let r = post(json!({"sandboxes": [{"name": "m", field: key}]})).await;
        r.expect(422, "validation_failed");
        assert_eq!(r.error_fields(), [format!("sandboxes[0].{field}")], "{key}");
        env.api.with_key(Some(&key)).get("/v1/sandbox").await.expect(401, "unauthenticated");
    }
    assert_eq!(sandbox_count(&env), before + 1);
    env.shutdown().await;

    // With an admin token, the route needs it like every control route.
    let http = HttpConfig { admin_token: Some("t0ken".to_owned()), ..HttpConfig::default() };
    let env = Env::with_config(Config { http, ..Config::default() }).await;
    let doc = json!({"sandboxes": [{"name": "a"}]});
    env.anonymous().post("/_emulator/fixtures", &doc).await.expect(401, "unauthenticated");
    env.api.with_key(Some("t0ken")).post("/_emulator/fixtures", &doc).await.ok(201);
    env.shutdown().await;
}

/// A `twh-emulator serve` child process and what it printed before `# Ctrl-C`.
struct Served {
    child: Child,
    base: String,
    lines: Vec<String>,
}

impl Served {
    /// Starts the binary with `args`; `Err` carries the exit status and stderr when it does not
    /// come up.
    fn start(args: &[&str]) -> Result<Served, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_twh-emulator"))
            .args(["serve", "--port", "0", "--rate-limit-per-second", "0", "--log", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twh-emulator");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut lines = Vec::new();
        for line in stdout.by_ref() {
            let line = line.unwrap_or_default();
            let done = line.starts_with("# Ctrl-C");
            lines.push(line);
            if done {
                break;
            }
        }
        let Some(base) = lines.first().and_then(|l| l.strip_prefix("TWH emulator listening on ")) else {
            let status = child.wait().expect("wait");
            let mut err = String::new();
            child.stderr.take().expect("stderr").read_to_string(&mut err).ok();
            return Err(format!("{status}\n{err}"));
        };
        let base = base.trim().to_owned();
        std::thread::spawn(move || stdout.for_each(drop));
        let mut stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Ok(Served { child, base, lines })
    }

    /// The `# sandbox <id> <secret key> <restricted key> <name>` lines, by name.
    fn sandboxes(&self) -> HashMap<String, (String, String, String)> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("# sandbox "))
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let mut next = || parts.next().expect("a part").to_owned();
                let (id, sk, rk, name) = (next(), next(), next(), next());
                (name, (id, sk, rk))
            })
            .collect()
    }

    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn write(dir: &Path, name: &str, doc: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(doc).expect("json")).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fixtures_loads_the_file_prints_the_keys_and_refuses_a_bad_file() {
    // The deliveries go to the built-in sink of an in-process emulator (the served one's port is
    // not known before it starts).
    let sink = Env::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (sk, rk) = (secret_key(), restricted_key());
    let whsec = twh_webhooks::Secret::generate().expose();
    let sink_url = format!("{}/_emulator/sink/fixtures-serve", sink.emu.base_url());
    let doc = json!({"sandboxes": [shop("the shop", &sk, &rk, &sink_url, &whsec), {"name": "second"}]});
    let file = write(dir.path(), "fixtures.json", &doc);
    let served =
        tokio::task::spawn_blocking(move || Served::start(&["--fixtures", &file])).await.unwrap().expect("start");
    let printed = served.sandboxes();
    let (shop_id, printed_sk, printed_rk) = printed.get("the shop").expect("a line for the shop").clone();
    assert_eq!((printed_sk.as_str(), printed_rk.as_str()), (sk.as_str(), rk.as_str()));
    assert!(printed.contains_key("second"), "{:?}", served.lines);
    let demo = served.lines.iter().find_map(|l| l.strip_prefix("export TWH_API_KEY=")).expect("the demo key still");
    let api = Api::new(&served.base, Some(&sk));
    assert_eq!(api.get("/v1/sandbox").await.ok(200)["id"], json!(shop_id));
    check_shop(&api, &rk, &whsec, &sink.anonymous(), "fixtures-serve").await;
    assert_eq!(api.with_key(Some(demo)).get("/v1/sandbox").await.ok(200)["name"], "demo");
    let second = &printed["second"];
    assert_eq!(api.with_key(Some(&second.1)).get("/v1/sandbox").await.ok(200)["id"], json!(second.0));
    // No demo sandbox asked for: none, and the fixtures still load.
    let file = write(dir.path(), "second.json", &json!({"sandboxes": [{"name": "only"}]}));
    let quiet = tokio::task::spawn_blocking(move || Served::start(&["--fixtures", &file, "--no-demo-sandbox"]))
        .await
        .unwrap()
        .expect("start");
    assert!(!quiet.lines.iter().any(|l| l.starts_with("export TWH_API_KEY=")), "{:?}", quiet.lines);
    assert_eq!(quiet.sandboxes().len(), 1);
    drop((served, quiet));

    // A bad file: the start fails, naming the entry, with nothing printed on stdout.
    let mut bad = doc.clone();
    bad["sandboxes"][0]["movements"][3]["sku"] = json!("NOPE");
    let bad_file = write(dir.path(), "bad.json", &bad);
    let refused = tokio::task::spawn_blocking(move || Served::start(&["--fixtures", &bad_file])).await.unwrap();
    let err = refused.err().expect("a bad file fails the start");
    assert!(!err.starts_with("exit status: 0"), "{err}");
    assert!(err.contains("sandboxes[0].movements[3].sku"), "{err}");
    assert!(err.contains("no item of this sandbox's `items` has this sku"), "{err}");
    for (name, text) in [
        ("syntax.json", "{\"sandboxes\": ["),
        ("shape.json", "{\"sandboxes\": [{\"name\": \"a\", \"items\": [{\"sku\": 1}]}]}"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let path = path.to_str().unwrap().to_owned();
        let err = tokio::task::spawn_blocking(move || Served::start(&["--fixtures", &path])).await.unwrap().err();
        let err = err.expect("refused");
        assert!(err.contains(name), "the error names the file: {err}");
        if name == "shape.json" {
            assert!(err.contains("sandboxes[0].items[0].sku"), "{err}");
        }
    }
    let missing = dir.path().join("missing.json").to_str().unwrap().to_owned();
    let err = tokio::task::spawn_blocking(move || Served::start(&["--fixtures", &missing])).await.unwrap().err();
    assert!(err.expect("refused").contains("missing.json"));
    sink.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_data_dir_fixtures_survive_sigkill_and_load_only_into_an_empty_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().unwrap().to_owned();
    let (sk, rk) = (secret_key(), restricted_key());
    let doc = json!({"sandboxes": [{"name": "kept", "secret_key": sk, "restricted_key": rk,
        "items": [{"sku": "A", "name": "A"}], "locations": [{"code": "L", "name": "L"}],
        "movements": [{"type": "receipt", "sku": "A", "location": "L", "quantity": 7}]}]});
    let file = write(dir.path(), "fixtures.json", &doc);
    let start = |args: Vec<String>| async move {
        tokio::task::spawn_blocking(move || Served::start(&args.iter().map(String::as_str).collect::<Vec<_>>()))
            .await
            .unwrap()
            .expect("start")
    };
    let args = vec!["--fixtures".to_owned(), file.clone(), "--data-dir".to_owned(), data.clone()];
    let first = start(args.clone()).await;
    let (kept_id, _, _) = first.sandboxes()["kept"].clone();
    // And one more over HTTP, acknowledged before the kill.
    let sk2 = secret_key();
    let more = json!({"sandboxes": [{"name": "posted", "secret_key": sk2, "items": [{"sku": "P", "name": "P"}],
        "locations": [{"code": "L", "name": "L"}], "movements": [{"type": "receipt", "sku": "P", "location": "L", "quantity": 3}]}]});
    Api::new(&first.base, None).post("/_emulator/fixtures", &more).await.ok(201);
    first.kill(); // SIGKILL: no shutdown code runs

    // Restarted on the same dir with the same file: recovered, not loaded again; same keys.
    let second = start(args).await;
    assert!(second.lines.iter().any(|l| l.starts_with("# fixtures not loaded")), "{:?}", second.lines);
    assert_eq!(second.sandboxes()["kept"], (kept_id.clone(), sk.clone(), rk.clone()));
    let api = Api::new(&second.base, Some(&sk));
    assert_eq!(api.get("/v1/sandbox").await.ok(200)["id"], json!(kept_id));
    assert_eq!(quantity(&api, "A", "L").await, 7);
    assert_eq!(api.all("/v1/events").await.len(), 4, "item, location, movement and level events");
    let posted = api.with_key(Some(&sk2));
    assert_eq!(quantity(&posted, "P", "L").await, 3);
    let state = Api::new(&second.base, None).get("/_emulator/state").await.ok(200);
    let names: Vec<&str> =
        state["tenants"].as_array().unwrap().iter().map(|t| t["sandbox"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "kept").count(), 1, "loaded once: {names:?}");
    // The demo sandbox of the first start was recovered too, after the fixtures.
    assert!(names.contains(&"demo"), "{names:?}");
    second.kill();
}
