//! The emulator handle's control plane (docs/guide/emulator.md): the sink,
//! clocks, faults, the request journal and fixtures, in-process and through
//! [`Emulator::connect`] to an emulator of another process (`twh-emulator serve`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use twh::emulator::{Emulator, RequestsQuery};
use twh::types::{self, CreateWebhookEndpoint, FaultAction};
use twh::{Error, ErrorKind};

use crate::common::{emu, new_item};

/// `twh-emulator serve --port 0` of this workspace (built by `cargo build -p twh-emulator`),
/// killed on drop.
pub struct Served {
    child: Child,
    pub base_url: String,
}

impl Served {
    pub fn start(extra: &[&str]) -> Served {
        // The test binary is target/<profile>/deps/it-…; the server is target/<profile>/twh-emulator.
        let exe = std::env::current_exe().expect("test binary");
        let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("twh-emulator");
        assert!(bin.exists(), "{} is missing: run `cargo build -p twh-emulator` first", bin.display());
        let mut child = Command::new(&bin)
            .args(["serve", "--port", "0", "--log", "warn"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("twh-emulator serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut base_url = None;
        for line in lines.by_ref().take(20) {
            let line = line.expect("a line");
            if let Some(url) = line.strip_prefix("export TWH_BASE_URL=") {
                base_url = Some(url.to_owned());
                break;
            }
        }
        // Keep reading what it prints: a closed pipe would end the server at its next line.
        std::thread::spawn(move || lines.for_each(drop));
        let base_url = base_url.expect("the server printed its URL");
        Served { child, base_url }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sink's entries once there are at least `count` (deliveries are sent in the background).
async fn sink_entries(emu: &Emulator, sink: &str, count: usize) -> Vec<types::SinkEntry> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = emu.sink(sink).await.expect("sink");
        if entries.len() >= count || Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Exercises the handle's methods against `emu`, whichever way it was made.
async fn every_method(emu: &Emulator) {
    let (client, created) = emu.create_sandbox_with(&types::CreateSandbox::default()).await.expect("sandbox");
    assert_eq!(client.get_sandbox().await.expect("its client works").id, created.id);

    // The sink: what a webhook endpoint pointed at it received.
    let sink = format!("handle-{}", &created.id[4..]);
    let url = format!("{}/_emulator/sink/{sink}", emu.base_url());
    let endpoint = client
        .create_webhook_endpoint(CreateWebhookEndpoint::builder().url(url).event_types(vec!["item.created".to_owned()]))
        .await
        .expect("endpoint");
    let item = client.create_item(new_item("SINK-1")).await.expect("item");
    let entries = sink_entries(emu, &sink, 1).await;
    assert_eq!(entries.len(), 1, "one delivery: {entries:?}");
    let body: serde_json::Value = serde_json::from_str(&entries[0].body).expect("a JSON event");
    assert_eq!(body["data"]["id"], item.id.as_str());
    assert!(entries[0].headers.contains_key("webhook-signature"), "{:?}", entries[0].headers);
    let verified = twh::webhooks::verify(
        entries[0].body.as_bytes(),
        &entries[0].headers,
        &endpoint.secret,
        twh::webhooks::DEFAULT_TOLERANCE,
    );
    assert!(verified.is_ok(), "the delivery verifies: {verified:?}");
    emu.clear_sink(&sink).await.expect("clear sink");
    assert!(emu.sink(&sink).await.expect("sink").is_empty());
    assert!(matches!(emu.sink("../x").await, Err(Error::InvalidRequest(_))), "a name that is no sink name");

    // The clock: whole seconds and a fraction.
    let before = emu.clock().await.expect("clock").now;
    let after = emu.advance_clock(Duration::from_secs(3600)).await.expect("advance");
    assert!(after >= before + chrono::Duration::hours(1), "{before} → {after}");
    let later = emu.advance_clock(Duration::from_millis(1500)).await.expect("advance by a fraction");
    assert!(later >= after + chrono::Duration::milliseconds(1500), "{after} → {later}");

    // Faults: armed, listed, fired, cleared.
    let spec = emu::fault(FaultAction::ErrorBeforeCommit, "GET", "/v1/plans", 2);
    let armed = emu.inject_fault(&spec).await.expect("fault");
    assert_eq!(emu.faults().await.expect("faults").len(), 1, "armed: {armed:?}");
    let failing = client.with_options(twh::RequestOptions::new().max_retries(0)).expect("client");
    let err = failing.list_plans().await.expect_err("the fault answers");
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(emu.faults().await.expect("faults")[0].remaining, 1, "one left");
    emu.clear_faults().await.expect("clear");
    assert!(emu.faults().await.expect("faults").is_empty());
    failing.list_plans().await.expect("no fault any more");

    // A bad fault is refused with the server's problem, and nothing is armed.
    let mut bad = spec.clone();
    bad.action = FaultAction::Delay;
    bad.delay_ms = Some(600_000);
    let err = emu.inject_fault(&bad).await.expect_err("a delay of 10 minutes");
    assert_eq!(err.kind(), ErrorKind::Validation, "{err:?}");
    assert!(emu.faults().await.expect("faults").is_empty());

    journal(emu, &client, &created.id).await;
    fixtures(emu).await;
}

/// The request journal: filters, every attempt of a retried call, paging, clearing.
async fn journal(emu: &Emulator, client: &twh::Client, sandbox_id: &str) {
    let mine = RequestsQuery { sandbox_id: Some(sandbox_id.to_owned()), ..Default::default() };
    let page = emu
        .requests(&RequestsQuery { method: Some("POST".into()), path_prefix: Some("/v1/items".into()), ..mine.clone() })
        .await
        .expect("journal");
    assert_eq!(page.data.len(), 1, "{:?}", page.data);
    let entry = &page.data[0];
    assert_eq!((entry.method.as_str(), entry.path.as_str(), entry.status), ("POST", "/v1/items", 201));
    assert_eq!(entry.sandbox_id.as_deref(), Some(sandbox_id));
    assert!(!entry.idempotent_replayed && entry.fault.is_none());
    assert_eq!(emu.request(&entry.id).await.expect("one entry"), *entry);

    // A call whose first attempt failed after commit: two attempts, one request id, the second replayed.
    let fault = emu::fault(FaultAction::ErrorAfterCommit, "POST", "/v1/locations", 1);
    emu.inject_fault(&fault).await.expect("fault");
    client
        .create_location(types::CreateLocation::builder().code("J-1").name("Journal"))
        .idempotency_key("journal-location-1")
        .await
        .expect("the retry gets the stored answer");
    let attempts = emu
        .requests(&RequestsQuery { idempotency_key: Some("journal-location-1".into()), ..mine.clone() })
        .await
        .expect("attempts");
    let seen: Vec<_> = attempts.data.iter().map(|e| (e.status, e.idempotent_replayed, e.fault.is_some())).collect();
    assert_eq!(seen, [(500, false, true), (201, true, false)], "{attempts:?}");
    assert_eq!(attempts.data[0].request_id, attempts.data[1].request_id);
    let by_id = emu
        .requests(&RequestsQuery { request_id: Some(attempts.data[0].request_id.clone()), ..Default::default() })
        .await
        .expect("by request id");
    assert_eq!(by_id.data, attempts.data);

    // Paging: one at a time, the stream sees every entry once, in order.
    let all = emu.requests(&RequestsQuery { limit: Some(100), ..mine.clone() }).await.expect("all");
    assert!(all.data.len() >= 4, "{}", all.data.len());
    let streamed: Vec<_> =
        emu.requests_stream(RequestsQuery { limit: Some(1), ..mine.clone() }).try_collect().await.expect("stream");
    assert_eq!(streamed, all.data);
    assert!(matches!(
        emu.requests(&RequestsQuery { limit: Some(0), ..Default::default() }).await,
        Err(Error::InvalidRequest(_))
    ));
    let err = emu
        .requests(&RequestsQuery { cursor: Some("not-a-cursor".into()), ..Default::default() })
        .await
        .expect_err("bad cursor");
    assert_eq!(err.status(), Some(400), "{err:?}");

    emu.clear_requests().await.expect("clear");
    assert!(emu.requests(&mine).await.expect("journal").data.is_empty());
}

/// Fixtures: sandboxes with known contents and keys, all or nothing.
async fn fixtures(emu: &Emulator) {
    let key = format!("sk_test_{}", twh::idempotency::new_key().replace('-', ""));
    let document = |quantity: i64| {
        serde_json::json!({"sandboxes": [{
            "name": "fixture shop",
            "secret_key": key,
            "items": [{"sku": "FIX-1", "name": "Fixed"}],
            "locations": [{"code": "WH", "name": "Warehouse"}],
            "movements": [
                {"type": "receipt", "sku": "FIX-1", "location": "WH", "quantity": 10},
                {"type": "shipment", "sku": "FIX-1", "location": "WH", "quantity": quantity},
            ],
        }]})
    };
    // Shipping more than there is: refused, naming the entry, and nothing is created (the key stays free).
    let err = emu.load_fixtures(&document(11)).await.expect_err("insufficient stock");
    assert_eq!(err.status(), Some(422), "{err:?}");
    assert!(err.errors().iter().any(|e| e.field.starts_with("sandboxes[0].movements[1]")), "{err:?}");

    let loaded = emu.load_fixtures(&document(4)).await.expect("fixtures");
    assert_eq!(loaded.len(), 1);
    let (client, sandbox) = &loaded[0];
    assert_eq!(sandbox.secret_key.expose(), key);
    assert_eq!(sandbox.name, "fixture shop");
    let items = client.list_items(&Default::default()).await.expect("items");
    assert_eq!(items.data.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(), ["FIX-1"]);
    let levels = client.list_stock_levels(&Default::default()).await.expect("levels");
    assert_eq!(levels.data.iter().map(|l| l.quantity).collect::<Vec<_>>(), [6]);
    let err = emu.load_fixtures(&document(4)).await.expect_err("the key is taken now");
    assert_eq!(err.code(), Some("key_taken"), "{err:?}");
}

#[tokio::test]
async fn every_method_in_process() {
    let emu = emu::start().await;
    assert!(!emu.is_connected());
    every_method(&emu).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn connects_to_an_emulator_of_this_process() {
    let server = emu::start().await;
    let emu = Emulator::connect(server.base_url(), None).await.expect("connect");
    assert!(emu.is_connected() && emu.inner().is_none());
    every_method(&emu).await;
    // A connected handle stops nothing.
    let base_url = emu.base_url();
    emu.shutdown().await;
    Emulator::connect(base_url, None).await.expect("still served");
    server.shutdown().await;
}

#[tokio::test]
async fn connects_to_a_served_emulator_with_its_admin_token() {
    let token = "admin-token-for-the-handle-test";
    let served = Served::start(&["--admin-token", token]);
    let emu = Emulator::connect(served.base_url.as_str(), Some(token)).await.expect("connect with the token");
    every_method(&emu).await;

    let err = Emulator::connect(served.base_url.as_str(), None).await.expect_err("no token");
    assert_eq!(err.status(), Some(401), "{err:?}");
    let err = Emulator::connect(served.base_url.as_str(), Some("wrong-token")).await.expect_err("a wrong token");
    assert_eq!(err.status(), Some(401), "{err:?}");
    // Nothing answers there: a connection error, not a hang.
    let err = Emulator::connect("http://127.0.0.1:9", None).await.expect_err("nothing there");
    assert_eq!(err.kind(), ErrorKind::Connection, "{err:?}");
}

/// `Options::deterministic`: two emulators with one seed give the same ids and keys, their clock
/// stands at 2030-01-01T00:00:00Z until advanced, and another seed differs.
#[tokio::test]
async fn a_deterministic_seed_repeats_ids_and_starts_the_clock_in_2030() {
    async fn run(seed: u64) -> (String, String, chrono::DateTime<chrono::Utc>) {
        let options = twh::emulator::Options { deterministic: Some(seed), ..Default::default() };
        let emulator = Emulator::start(options.into_config().expect("config")).await.expect("emulator");
        let client = emulator.create_sandbox().await.expect("sandbox");
        let item = client.create_item(new_item("SEEDED-1")).await.expect("item");
        let now = emulator.clock().await.expect("clock").now;
        let sandbox = client.get_sandbox().await.expect("sandbox").id;
        emulator.shutdown().await;
        (sandbox, item.id.clone(), now)
    }
    let (a, b, c) = (run(42).await, run(42).await, run(43).await);
    assert_eq!(a, b, "one seed, the same ids");
    assert_ne!((a.0.as_str(), a.1.as_str()), (c.0.as_str(), c.1.as_str()), "another seed differs");
    assert_eq!(a.2.to_rfc3339(), "2030-01-01T00:00:00+00:00");
}
