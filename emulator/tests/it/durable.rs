//! Durable state (`--data-dir`): the real binary is killed with SIGKILL under load and restarted
//! on the same directory; what it acknowledged is there exactly once. Also: the data dir's lock,
//! damaged files refused with the file named, SIGTERM, and a restart restoring the clock,
//! webhook deliveries in flight, billing and the whole exported state; and the binary runs without
//! transparent huge pages.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::{Config, Emulator};

use crate::common::{Api, id, next_month_start, parse_time};

/// A `twh-emulator serve --data-dir` child process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        Server::try_start(dir).unwrap_or_else(|e| panic!("the emulator did not start: {e}"))
    }

    /// Starts the binary; `Err` carries its stderr and exit status when it does not come up.
    fn try_start(dir: &Path) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_twh-emulator"))
            .args(["serve", "--port", "0", "--no-demo-sandbox", "--rate-limit-per-second", "0", "--log", "warn"])
            .args(["--webhook-retry-schedule", "5,300,1800"])
            .arg("--data-dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn twh-emulator");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        match first.strip_prefix("TWH emulator listening on ") {
            Some(base) => {
                let base = base.trim().to_owned();
                std::thread::spawn(move || lines.for_each(drop));
                let mut stderr = child.stderr.take().expect("stderr");
                std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                Ok(Server { child, base })
            }
            None => {
                let status = child.wait().expect("wait");
                let mut err = String::new();
                child.stderr.take().expect("stderr").read_to_string(&mut err).ok();
                Err(format!("{status}: {err}"))
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then the exit status (within 15 s).
    fn terminate(mut self) -> ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn sandbox(base: &str, plan: &str) -> Api {
    let created =
        Api::new(base, None).post("/v1/sandboxes", &json!({"name": "durable", "seed": "empty", "plan": plan})).await;
    let created = created.ok(201);
    Api::new(base, Some(created["secret_key"].as_str().expect("key")))
}

/// One write a writer sent, and what came back before the process died (if anything).
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    body: Value,
    /// (status, movement id or problem code), when an answer arrived.
    answer: Option<(u16, String)>,
}

/// Writers sending movements with fresh idempotency keys until the connection dies.
fn start_writers(
    api: &Api,
    round: usize,
    item: &str,
    locations: &[String; 2],
) -> (Arc<Mutex<Vec<Sent>>>, Vec<tokio::task::JoinHandle<()>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..8)
        .map(|w| {
            let (api, log, stop) = (api.clone(), log.clone(), stop.clone());
            let (item, l0, l1) = (item.to_owned(), locations[0].clone(), locations[1].clone());
            tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let body = match n % 4 {
                        0 | 1 => json!({"type": "receipt", "item_id": item, "location_id": l0, "quantity": 1 + n % 7}),
                        2 => json!({"type": "transfer", "item_id": item, "from_location_id": l0, "to_location_id": l1, "quantity": 2}),
                        // Sometimes refused (409 insufficient_stock): an answered 4xx is stored too.
                        _ => json!({"type": "shipment", "item_id": item, "location_id": l1, "quantity": 3}),
                    };
                    let key = format!("crash-{round}-{w}-{n}");
                    let at = {
                        let mut log = log.lock();
                        log.push(Sent { key: key.clone(), body: body.clone(), answer: None });
                        log.len() - 1
                    };
                    let rb = api.req_json(Method::POST, "/v1/stock-movements", &body).header("idempotency-key", &key);
                    match api.try_send(rb).await {
                        Ok(r) => {
                            let what = if r.status == 201 { id(&r.json()) } else { r.code().unwrap_or_default() };
                            log.lock()[at].answer = Some((r.status, what));
                        }
                        Err(_) => {
                            stop.store(true, Ordering::Relaxed); // the server is gone
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    (log, tasks)
}

/// `quantity == Σ delta` and `version == line count` for every pair, from the API alone; and
/// sequences gap-free. Returns the movements.
async fn check_ledger(api: &Api) -> Vec<Value> {
    let movements = api.all("/v1/stock-movements").await;
    for (i, m) in movements.iter().enumerate() {
        assert_eq!(m["sequence"], json!(i + 1), "sequences are gap-free");
    }
    let mut sums: HashMap<(String, String), (i64, u64)> = HashMap::new();
    for m in &movements {
        for line in m["lines"].as_array().expect("lines") {
            let pair = (m["item_id"].as_str().unwrap().to_owned(), line["location_id"].as_str().unwrap().to_owned());
            let e = sums.entry(pair).or_default();
            e.0 += line["delta"].as_i64().unwrap();
            e.1 += 1;
        }
    }
    let levels = api.all("/v1/stock-levels").await;
    let mut seen = 0;
    for l in levels {
        let pair = (l["item_id"].as_str().unwrap().to_owned(), l["location_id"].as_str().unwrap().to_owned());
        let (sum, count) = sums.get(&pair).copied().unwrap_or_default();
        assert_eq!(l["quantity"], json!(sum), "quantity == Σ delta for {pair:?}");
        assert_eq!(l["version"], json!(count), "version == line count for {pair:?}");
        seen += usize::from(count > 0);
    }
    assert_eq!(seen, sums.len(), "every pair with lines has its level");
    movements
}

/// Sends `sent` again with its key; returns the answers.
async fn retry(api: &Api, sent: &[Sent]) -> Vec<(u16, bool, String)> {
    let mut out = Vec::new();
    for s in sent {
        let rb = api.req_json(Method::POST, "/v1/stock-movements", &s.body).header("idempotency-key", &s.key);
        let r = api.send(rb).await;
        let what = if r.status == 201 { id(&r.json()) } else { r.code().unwrap_or_default() };
        out.push((r.status, r.replayed(), what));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_keeps_every_acknowledged_movement_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::start(dir.path());
    let mut api = sandbox(&server.base, "pro").await;
    let item = id(&api.item("CRASH-1").await);
    let locations = [id(&api.location("CRASH-A").await), id(&api.location("CRASH-B").await)];
    let mut answered: Vec<Sent> = Vec::new();
    // Kill points: early, mid and late in a burst of writes (each round adds to the same dir),
    // counted from the first answer, so a machine slow to answer (fsync on a busy disk) still
    // has acknowledged writes to lose.
    for (round, kill_after_ms) in [60u64, 250, 500].into_iter().enumerate() {
        let (log, tasks) = start_writers(&api, round, &item, &locations);
        let first = Instant::now();
        loop {
            let answered = log.lock().iter().any(|s| s.answer.is_some());
            if answered || first.elapsed() > Duration::from_secs(20) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.kill();
        for t in tasks {
            t.await.expect("writer");
        }
        let log = log.lock().clone();
        let (done, in_flight): (Vec<Sent>, Vec<Sent>) = log.into_iter().partition(|s| s.answer.is_some());
        assert!(!done.is_empty(), "round {round}: some writes were answered before the kill");

        server = Server::start(dir.path());
        api = Api::new(&server.base, api.key.as_deref());
        answered.extend(done);

        let movements = check_ledger(&api).await;
        let ids: HashSet<&str> = movements.iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), movements.len(), "no movement twice");
        for s in answered.iter().filter(|s| s.answer.as_ref().is_some_and(|a| a.0 == 201)) {
            let (_, movement) = s.answer.as_ref().unwrap();
            assert!(ids.contains(movement.as_str()), "round {round}: acknowledged {movement} (key {}) is lost", s.key);
        }
        // Every answered key again: the same answer, replayed, and no new entry.
        let again = retry(&api, &answered).await;
        for (s, (status, replayed, what)) in answered.iter().zip(&again) {
            let (status0, what0) = s.answer.as_ref().unwrap();
            assert_eq!((status, what), (status0, what0), "key {} answers as before the crash", s.key);
            assert!(replayed, "key {} is replayed", s.key);
        }
        assert_eq!(api.movement_count().await, movements.len(), "retries of answered keys write nothing");
        // Requests cut off by the kill may or may not have committed: their retry settles them,
        // once; a second retry of everything writes nothing more.
        retry(&api, &in_flight).await;
        let settled = check_ledger(&api).await.len();
        let all: Vec<Sent> = answered.iter().chain(&in_flight).cloned().collect();
        assert!(retry(&api, &all).await.iter().all(|(_, replayed, _)| *replayed), "every key replays");
        assert_eq!(check_ledger(&api).await.len(), settled, "retrying every key writes nothing");
    }
    server.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_writes_everything_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let mut api = sandbox(&server.base, "pro").await;
    let item = id(&api.item("TERM-1").await);
    let locations = [id(&api.location("TERM-A").await), id(&api.location("TERM-B").await)];
    let (log, tasks) = start_writers(&api, 0, &item, &locations);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = tokio::task::spawn_blocking(move || server.terminate()).await.expect("join");
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0");
    for t in tasks {
        t.await.expect("writer");
    }
    // Flushed and checkpointed: the database file alone holds everything.
    let wal = dir.path().join("twh.sqlite3-wal");
    assert!(std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0, "the WAL was checkpointed on exit");
    assert!(!dir.path().join("twh.lock").exists() || std::fs::File::open(dir.path().join("twh.lock")).is_ok());

    let server = Server::start(dir.path());
    api.base = server.base.clone();
    let movements = check_ledger(&api).await;
    let ids: HashSet<&str> = movements.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let acked: Vec<Sent> =
        log.lock().iter().filter(|s| s.answer.as_ref().is_some_and(|a| a.0 == 201)).cloned().collect();
    assert!(!acked.is_empty());
    for s in &acked {
        assert!(ids.contains(s.answer.as_ref().unwrap().1.as_str()), "acknowledged {} survives SIGTERM", s.key);
    }
    server.kill();
}

/// The command-line server turns transparent huge pages off for itself (see `main.rs`: first
/// touches of 2 MiB pages were multi-millisecond stalls inside requests).
#[cfg(target_os = "linux")]
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    let thp = status.lines().find(|l| l.starts_with("THP_enabled:"));
    server.kill();
    // Kernels before 5.0 have no such line (and no prctl either): nothing to check there.
    if let Some(line) = thp {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_emulator_on_the_same_data_dir_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Server::start(dir.path());
    let err = match Server::try_start(dir.path()) {
        Ok(_) => panic!("a second emulator opened a data dir in use"),
        Err(e) => e,
    };
    assert!(err.contains("exit status: 1"), "{err}");
    assert!(err.contains("is in use by another twh-emulator"), "{err}");
    assert!(err.contains(&format!("pid {}", first.pid())), "names the holder: {err}");
    assert!(err.contains(&dir.path().join("twh.lock").display().to_string()), "names the lock: {err}");
    // In-process, the same.
    let config = Config { data_dir: Some(dir.path().to_owned()), ..Config::default() };
    let e = refused(config.clone(), "in-process too").await;
    assert!(e.contains("is in use"), "{e}");
    // The first still serves; once it is gone the dir opens again.
    Api::new(&first.base, None).get("/_emulator/health").await.ok(200);
    first.kill();
    let emu = Emulator::start(config).await.expect("the lock died with its holder");
    emu.shutdown().await;
}

/// A data dir with a sandbox and some movements, closed cleanly (so the database file holds all).
async fn filled_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let emu =
        Emulator::start(Config { data_dir: Some(dir.path().to_owned()), ..Config::default() }).await.expect("start");
    let sb = emu.create_sandbox(Default::default()).expect("sandbox");
    let api = Api::new(&emu.base_url(), Some(&sb.secret_key));
    let (item, location) = (api.new_item().await, api.new_location().await);
    for _ in 0..40 {
        api.receipt(&item, &location, 7).await;
    }
    emu.shutdown().await;
    dir
}

/// The error of a start that must fail.
async fn refused(config: Config, what: &str) -> String {
    match Emulator::start(config).await {
        Ok(emu) => {
            emu.shutdown().await;
            panic!("{what}: the emulator started");
        }
        Err(e) => e.to_string(),
    }
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.path().join(e.file_name())).expect("copy");
    }
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_files_are_refused_naming_the_file_and_left_alone() {
    let good = filled_dir().await;
    let db_bytes = std::fs::read(good.path().join("twh.sqlite3")).expect("db");
    let marker = b"\"quantity_after\":";
    // Every copy (free pages may hold stale ones; at least one is live).
    let mut flipped = db_bytes.clone();
    let places: Vec<usize> = db_bytes
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i + marker.len())
        .collect();
    assert!(!places.is_empty(), "movement rows are in the file");
    for at in places {
        flipped[at] = if flipped[at] == b'9' { b'8' } else { b'9' };
    }
    let mut header = db_bytes.clone();
    header[..16].copy_from_slice(b"not a database!\0");
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("truncated to half", db_bytes[..db_bytes.len() / 2].to_vec(), "twh.sqlite3"),
        ("truncated to nothing", Vec::new(), "is empty"),
        ("a foreign header", header, "twh.sqlite3"),
        ("one digit changed in a movement", flipped, "checksum"),
    ];
    for (what, bytes, says) in cases {
        let dir = copy_dir(good.path());
        let file: PathBuf = dir.path().join("twh.sqlite3");
        std::fs::write(&file, &bytes).expect("damage");
        let config = Config { data_dir: Some(dir.path().to_owned()), ..Config::default() };
        let e = refused(config, what).await;
        assert!(e.contains(&file.display().to_string()), "{what}: the error names the file: {e}");
        assert!(e.contains(says), "{what}: {e}");
        assert_eq!(std::fs::read(&file).expect("db"), bytes, "{what}: never a silent reset");
    }
    // An incompatible schema version, and a missing database.
    let dir = copy_dir(good.path());
    let manifest = dir.path().join("twh-data.json");
    let text = std::fs::read_to_string(&manifest)
        .expect("manifest")
        .replace("\"schema_version\": 1", "\"schema_version\": 99");
    std::fs::write(&manifest, text).expect("write");
    let e = refused(Config { data_dir: Some(dir.path().to_owned()), ..Config::default() }, "v99").await;
    assert!(e.contains("schema version 99") && e.contains("twh-data.json"), "{e}");
    let dir = copy_dir(good.path());
    std::fs::remove_file(dir.path().join("twh.sqlite3")).expect("rm");
    let e = refused(Config { data_dir: Some(dir.path().to_owned()), ..Config::default() }, "no db").await;
    assert!(e.contains("twh.sqlite3") && e.contains("is missing"), "{e}");
    // The undamaged original still opens, with its 40 movements.
    let emu =
        Emulator::start(Config { data_dir: Some(good.path().to_owned()), ..Config::default() }).await.expect("good");
    let tenants = emu.state().world.tenants();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].state.lock().ledger.movement_count(), 40);
    emu.shutdown().await;
}

fn tenants_and_keys(state: &Value) -> (Value, Value) {
    (state["tenants"].clone(), state["keys"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigkill_restores_clock_webhooks_in_flight_billing_and_the_whole_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let api = sandbox(&server.base, "free").await;
    let ctl = api.with_key(None);
    // Billing: a plan change, then a month end with its invoice.
    api.post("/v1/subscription", &json!({"plan": "pro"})).await.ok(200);
    let now = parse_time(&ctl.get("/_emulator/clock").await.ok(200)["now"]);
    let to = (next_month_start(now) + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    ctl.post("/_emulator/clock/advance", &json!({"to": to})).await.ok(200);
    assert!(!api.get("/v1/invoices").await.ok(200)["data"].as_array().unwrap().is_empty(), "an invoice");
    // A mixed catalogue and ledger: updates, archives, batches, reversals, a skewed level, a
    // reconciliation, an import job.
    let item = api.item("RESTART-1").await;
    let etag = format!("\"{}\"", item["version"]);
    api.patch(&format!("/v1/items/{}", id(&item)), Some(&etag), &json!({"name": "Renamed"})).await.ok(200);
    let (item, a, b) = (id(&item), api.new_location().await, api.new_location().await);
    let gone = api.new_location().await;
    api.delete(&format!("/v1/locations/{gone}"), Some("*")).await.ok(200);
    let first = api.receipt(&item, &a, 50).await;
    let batch = json!({"movements": [
        {"type": "transfer", "item_id": item, "from_location_id": a, "to_location_id": b, "quantity": 5},
        {"type": "adjustment", "item_id": item, "location_id": b, "quantity": -1},
    ]});
    api.post_key("/v1/stock-movements/batch", "restart-batch", &batch).await.ok(201);
    let _ = first;
    let second = api.receipt(&item, &a, 20).await;
    api.post_key(&format!("/v1/stock-movements/{}/reverse", id(&second)), "restart-rev", &json!({})).await.ok(201);
    api.receipt(&item, &a, 9).await;
    let tenant = api.get("/v1/sandbox").await.ok(200)["id"].clone();
    let fault = json!({"tenant_id": tenant, "item_id": item, "location_id": b, "delta": 3});
    ctl.post("/_emulator/faults/corrupt-stock-level", &fault).await.ok(200);
    api.post("/v1/reconciliations", &json!({})).await.ok(201);
    let csv = format!(
        "type,item_id,location_id,quantity,reference\nreceipt,{item},{a},4,imp-1\nreceipt,{item},{a},5,imp-2\n"
    );
    let job =
        id(&api.post("/v1/jobs", &json!({"type": "import_movements", "format": "csv", "data": csv})).await.ok(202));
    crate::common::eventually("the import job", 10, || {
        let api = api.clone();
        let job = job.clone();
        async move { (api.get(&format!("/v1/jobs/{job}")).await.ok(200)["status"] == json!("completed")).then_some(()) }
    })
    .await;
    // A webhook delivery in flight: its receiver is down, so it waits for its 5 s retry.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let hook = json!({"url": format!("http://127.0.0.1:{port}/down"), "event_types": ["stock_movement.created"]});
    let endpoint = api.post("/v1/webhook-endpoints", &hook).await.ok(201);
    let moved = api.receipt(&item, &a, 1).await;
    let waiting = crate::common::eventually("a failed first attempt", 10, || {
        let api = api.clone();
        async move {
            let d = api.all("/v1/webhook-deliveries").await;
            d.into_iter().find(|d| d["status"] == json!("failed") && d["attempts"].as_array().unwrap().len() == 1)
        }
    })
    .await;

    let clock_before = ctl.get("/_emulator/clock").await.ok(200);
    let state_before = ctl.get("/_emulator/state").await.ok(200);
    let usage_before = api.get("/v1/usage").await.ok(200);
    server.kill();

    let server = Server::start(dir.path());
    let api = Api::new(&server.base, api.key.as_deref());
    let ctl = api.with_key(None);
    let clock_after = ctl.get("/_emulator/clock").await.ok(200);
    assert_eq!(clock_after["offset_seconds"], clock_before["offset_seconds"], "the clock's offset");
    assert!(parse_time(&clock_after["now"]) >= parse_time(&clock_before["now"]), "the clock never goes back");
    assert_eq!(
        tenants_and_keys(&ctl.get("/_emulator/state").await.ok(200)),
        tenants_and_keys(&state_before),
        "the exported state (every tenant and key) is what it was"
    );
    assert_eq!(api.get("/v1/subscription").await.ok(200)["plan"], json!("pro"));
    let usage_after = api.get("/v1/usage").await.ok(200);
    let meter = |u: &Value, m: &str| u["meters"].as_array().unwrap().iter().find(|x| x["meter"] == json!(m)).cloned();
    assert_eq!(meter(&usage_after, "ledger_lines"), meter(&usage_before, "ledger_lines"), "metered lines");
    assert_eq!(meter(&usage_after, "webhook_attempts"), meter(&usage_before, "webhook_attempts"));
    let delivery = api.get(&format!("/v1/webhook-deliveries/{}", id(&waiting))).await.ok(200);
    assert_eq!(delivery, waiting, "the delivery waits as it did (status, attempts, next_attempt_at)");

    // It resumes on schedule: moved to the sink, it is attempted when the clock reaches its time.
    let sink = format!("{}/_emulator/sink/resumed", server.base);
    api.patch(&format!("/v1/webhook-endpoints/{}", id(&endpoint)), Some("*"), &json!({"url": sink})).await.ok(200);
    ctl.post("/_emulator/clock/advance", &json!({"seconds": 10})).await.ok(200);
    let delivery = api.get(&format!("/v1/webhook-deliveries/{}", id(&waiting))).await.ok(200);
    assert_eq!(delivery["status"], json!("succeeded"), "{delivery}");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 2);
    let got = ctl.get("/_emulator/sink/resumed").await.ok(200)["data"].as_array().unwrap().clone();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(got[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["data"]["id"], moved["id"], "the movement's event, delivered after the restart");
    server.kill();
}

/// A sandbox deleted (or everything reset) while its webhook attempt is in flight: the attempt's
/// record must not reach the store for a sandbox it no longer has, or the directory refused to
/// open again ("a row names sandbox sbx_…, which has no state").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_or_resetting_during_a_webhook_attempt_leaves_a_dir_that_opens() {
    for reset in [false, true] {
        // A receiver that accepts and never answers: the attempt waits for its timeout.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", hung.local_addr().expect("addr"));
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((s, _)) = hung.accept().await {
                open.push(s);
            }
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let webhooks = twh_emulator::WebhookSettings { timeout: Duration::from_millis(500), ..Default::default() };
        let config = Config { data_dir: Some(dir.path().to_owned()), webhooks, ..Config::default() };
        let emu = Emulator::start(config.clone()).await.expect("start");
        let sb = emu.create_sandbox(Default::default()).expect("sandbox");
        let api = Api::new(&emu.base_url(), Some(&sb.secret_key));
        api.post("/v1/webhook-endpoints", &json!({"url": url, "event_types": ["*"]})).await.ok(201);
        api.new_item().await;
        let in_flight = || emu.state().dispatcher.stats().in_flight;
        let deadline = Instant::now() + Duration::from_secs(10);
        while in_flight() == 0 {
            assert!(Instant::now() < deadline, "no attempt in flight");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if reset {
            let ctl = api.with_key(None);
            ctl.send(ctl.req(Method::POST, "/_emulator/reset")).await.ok(204);
        } else {
            api.delete("/v1/sandbox", None).await.ok(204);
        }
        // The attempt times out and is recorded after the delete.
        tokio::time::sleep(Duration::from_millis(900)).await;
        emu.shutdown().await;
        let again = Emulator::start(config).await.expect("the data dir opens again");
        assert!(again.state().world.tenants().is_empty());
        again.shutdown().await;
        held.abort();
    }
}

/// Issue 19 item 5, the crash-and-race test: sandboxes with a webhook attempt in flight (to a
/// receiver that never answers), a CSV import running (job chunks) and reads (usage waiting to be
/// flushed) are deleted, or the whole emulator reset, while a keeper sandbox takes acknowledged
/// writes; then SIGKILL at once, and a restart on the same directory. Every round the directory
/// opens, the deleted sandboxes are gone, and everything the keeper acknowledged is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_and_resets_racing_attempts_jobs_and_usage_then_sigkill_leave_a_dir_that_opens_with_everything() {
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", hung.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = hung.accept().await {
            open.push(s);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..6 {
        let reset = round % 3 == 2;
        let server = Server::start(dir.path());
        let base = server.base.clone();
        // The doomed sandboxes: an endpoint that never answers, a job, reads.
        let mut doomed = Vec::new();
        for _ in 0..3 {
            let api = sandbox(&base, "pro").await;
            api.post("/v1/webhook-endpoints", &json!({"url": url, "event_types": ["*"]})).await.ok(201);
            let item = api.new_item().await;
            let loc = api.new_location().await;
            let rows: String = (0..3000).map(|i| format!("receipt,{item},{loc},,,{},,\n", 1 + i % 5)).collect();
            let csv =
                format!("type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason\n{rows}");
            api.post("/v1/jobs", &json!({"type": "import_movements", "format": "csv", "data": csv})).await.ok(202);
            for _ in 0..20 {
                api.get("/v1/items").await.ok(200);
            }
            doomed.push(api);
        }
        let keeper = if reset { None } else { Some(sandbox(&base, "pro").await) };
        let mut acknowledged = Vec::new();
        if let Some(k) = &keeper {
            let (item, loc) = (k.new_item().await, k.new_location().await);
            for n in 0..30 {
                let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1});
                let rb = k
                    .req_json(Method::POST, "/v1/stock-movements", &body)
                    .header("idempotency-key", format!("keep-{round}-{n}"));
                acknowledged.push(id(&k.send(rb).await.ok(201)));
            }
        }
        // The deletes (or the reset) race the attempts, the job chunks and the usage flushes...
        if reset {
            let ctl = Api::new(&base, None);
            ctl.send(ctl.req(Method::POST, "/_emulator/reset")).await.ok(204);
        } else {
            for api in &doomed {
                api.delete("/v1/sandbox", None).await.ok(204);
            }
        }
        // ...and the process dies right after, with all of that still under way.
        tokio::time::sleep(Duration::from_millis(20 * (round as u64 % 3))).await;
        server.kill();

        let again =
            Server::try_start(dir.path()).unwrap_or_else(|e| panic!("round {round}: the data dir must open: {e}"));
        for api in &doomed {
            let r = Api { base: again.base.clone(), ..api.clone() }.get("/v1/items").await;
            assert_eq!(r.status, 401, "round {round}: a deleted sandbox's key is gone");
        }
        if let Some(k) = &keeper {
            let k = Api { base: again.base.clone(), ..k.clone() };
            let movements: HashSet<String> = k.all("/v1/stock-movements").await.iter().map(id).collect();
            for m in &acknowledged {
                assert!(movements.contains(m), "round {round}: acknowledged movement {m} lost");
            }
            check_ledger(&k).await;
        }
        again.kill();
    }
    held.abort();
}
