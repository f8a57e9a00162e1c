//! API.md §5 "Who may call it": the admin routes refuse other web pages (Origin), rebound names
//! (Host) and non-JSON bodies when no admin token is set; the token is needed when one is; a
//! non-loopback bind needs a token.

use std::net::{IpAddr, Ipv4Addr};

use reqwest::Method;
use serde_json::json;
use twh_emulator::{Config, Emulator, HttpConfig};

use crate::common::*;

/// A web page on another site could reset the emulator (`text/plain` needs no CORS preflight)
/// or, through DNS rebinding, read every tenant's keys: both refused, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_pages_and_rebound_names_cannot_use_the_control_plane() {
    let env = Env::new().await;
    let anon = env.anonymous();
    let evil = || {
        anon.req(Method::POST, "/_emulator/reset")
            .header("origin", "https://evil.example")
            .header("content-type", "text/plain")
            .body("{}")
    };
    anon.send(evil()).await.expect(403, "forbidden_origin");
    let rebound = anon.req(Method::GET, "/_emulator/state").header("host", "evil.example:8080");
    anon.send(rebound).await.expect(403, "forbidden_origin");
    let rebound = anon.req(Method::GET, "/_emulator/clock").header("host", "127.0.0.1.evil.example");
    anon.send(rebound).await.expect(403, "forbidden_origin");
    // A simple (preflight-free) body from no page at all is refused too.
    let plain = anon.req(Method::POST, "/_emulator/reset").header("content-type", "text/plain").body("{}");
    anon.send(plain).await.expect(415, "unsupported_media_type");
    let form = anon
        .req(Method::POST, "/v1/sandboxes")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=x");
    anon.send(form).await.expect(415, "unsupported_media_type");
    let sandbox = anon.req(Method::POST, "/v1/sandboxes").header("origin", "null").json(&json!({"name": "x"}));
    anon.send(sandbox).await.expect(403, "forbidden_origin");
    // Nothing was reset: the sandbox still answers.
    env.api.get("/v1/sandbox").await.ok(200);

    // The emulator's own pages and its loopback names are fine.
    let own = env.emu.base_url();
    let port = env.emu.addr().port();
    anon.send(anon.req(Method::GET, "/_emulator/clock").header("origin", own.as_str())).await.ok(200);
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "LOCALHOST".to_owned()] {
        anon.send(anon.req(Method::GET, "/_emulator/clock").header("host", host)).await.ok(200);
    }
    let created = anon
        .send(anon.req(Method::POST, "/v1/sandboxes").header("origin", own.as_str()).json(&json!({"name": "mine"})));
    created.await.ok(201);
    // The product API is not an admin route: its keys are its protection.
    let foreign = env.api.req(Method::GET, "/v1/items").header("origin", "https://app.example");
    env.api.send(foreign).await.ok(200);
    env.shutdown().await;
}

/// With an admin token the token decides (compared in constant time), whatever the Host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_token_the_token_decides() {
    let http = HttpConfig { admin_token: Some("t0ken".to_owned()), ..HttpConfig::default() };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let base = emu.base_url();
    let wrong = Api::new(&base, Some("t0keN"));
    wrong.get("/_emulator/state").await.expect(401, "unauthenticated");
    Api::new(&base, Some("t0ke")).get("/_emulator/state").await.expect(401, "unauthenticated");
    let right = Api::new(&base, Some("t0ken"));
    right.get("/_emulator/state").await.ok(200);
    right.send(right.req(Method::GET, "/_emulator/clock").header("host", "emulator.internal")).await.ok(200);
    emu.shutdown().await;
}

/// Open admin routes on a reachable address would give the emulator to anyone on the network.
#[tokio::test]
async fn a_non_loopback_bind_needs_an_admin_token() {
    let host = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    let refused = Emulator::start(Config { host, ..Config::default() }).await.expect_err("refused");
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    let text = refused.to_string();
    assert!(text.contains("--host") && text.contains("--admin-token"), "{text}");
    let http = HttpConfig { admin_token: Some("t".to_owned()), ..HttpConfig::default() };
    let emu = Emulator::start(Config { host, http, ..Config::default() }).await.expect("with a token");
    emu.shutdown().await;
}

/// Idle connections (opened, nothing sent) are closed after the header timeout, and past the
/// connection cap new ones wait their turn instead of taking every descriptor: the emulator
/// keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_and_capped() {
    use tokio::io::AsyncReadExt;
    let http = HttpConfig {
        header_read_timeout: std::time::Duration::from_millis(300),
        connections_max: 16,
        ..HttpConfig::default()
    };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let mut idle = Vec::new();
    for _ in 0..48 {
        idle.push(tokio::net::TcpStream::connect(emu.addr()).await.expect("connect"));
    }
    let started = std::time::Instant::now();
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf)).await;
        // Closed by the server: end of stream, or a reset.
        assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "an idle connection stayed open");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    Api::new(&emu.base_url(), None).get("/_emulator/health").await.ok(200);
    emu.shutdown().await;
}

/// Byte bounds: a sink keeps requests of at most 1 MiB (it kept up to 2 MB each, 256 × 1,000 of
/// them), and a state import is bounded (it took 1 GiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_and_state_import_have_byte_bounds() {
    assert!(HttpConfig::default().state_body_limit_bytes <= 128 << 20);
    let http = HttpConfig { state_body_limit_bytes: 4096, ..HttpConfig::default() };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let anon = Api::new(&emu.base_url(), None);
    let big = "x".repeat((1 << 20) + 1);
    let r =
        anon.send(anon.req(Method::POST, "/_emulator/sink/big").header("content-type", "application/json").body(big));
    r.await.expect(413, "payload_too_large");
    anon.post("/_emulator/sink/small", &json!({"ok": true})).await.ok(204);
    assert_eq!(anon.get("/_emulator/sink/small").await.ok(200)["data"].as_array().map(Vec::len), Some(1));
    let state = json!({"format_version": 1, "padding": "y".repeat(8192)});
    anon.send(anon.req_json(Method::PUT, "/_emulator/state", &state)).await.expect(413, "payload_too_large");
    emu.shutdown().await;
}

/// Issue 19 item 13: what expires (idempotency records, keys past their grace period) is freed
/// as time passes, without a clock advance; it used to be dropped only when a clock advance
/// walked over it, so a long-running emulator kept every record and every rolled key forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_and_keys_are_freed_without_a_clock_advance() {
    let mut config = Config::default();
    config.settings.idempotency_ttl_seconds = 1;
    config.settings.key_grace_seconds = 1;
    let env = Env::with_config(config).await;
    for _ in 0..3 {
        env.api.post_key("/v1/items", &key(), &json!({"sku": unique("SKU"), "name": "x"})).await.ok(201);
    }
    let rolled = env.api.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let new_key = rolled["secret_key"].as_str().unwrap().to_owned();
    let world = env.emu.state().world.clone();
    let tenant = world.tenant(&env.sandbox.id).unwrap();
    assert!(tenant.state.lock().ledger.idempotency.len() >= 3);
    assert!(world.keys().contains_key(&env.sandbox.secret_key));
    let freed = eventually("expired records and keys freed", 10, || {
        let (world, tenant) = (world.clone(), tenant.clone());
        let old = env.sandbox.secret_key.clone();
        async move {
            let records = tenant.state.lock().ledger.idempotency.len();
            (records == 0 && !world.keys().contains_key(&old)).then_some(())
        }
    })
    .await;
    let () = freed;
    // The new key still works.
    env.api.with_key(Some(&new_key)).get("/v1/items").await.ok(200);
    env.shutdown().await;
}

/// Issue 19 item 15: tenant tags (the part of every ledger id that names the sandbox) have 64
/// bits; with 32, two of 10,000 sandboxes shared one about once in a hundred emulators, and an
/// id of one then resolved in the other.
#[tokio::test]
async fn tenant_tags_in_ids_have_64_bits() {
    let env = Env::new().await;
    let item = id(&env.api.item(&unique("SKU")).await);
    let digits = item.strip_prefix("itm_").unwrap();
    assert_eq!(digits.len(), 16 + 6, "{item}: a 16-digit tag and a 6-digit position");
    let (_, other) = env.other_tenant();
    other.get(&format!("/v1/items/{item}")).await.expect(404, "not_found");
    env.shutdown().await;
}

/// `VmRSS` and `VmHWM` (peak) of `pid`, in bytes.
fn rss_and_peak(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).expect("field");
        line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).expect("kB") * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Issue 19 item 4, its acceptance figure: 64 concurrent bodies of 4 MB that do not fit their
/// type (`[0,0,…]`), unauthenticated (`POST /v1/sandboxes`) and with a key (a movement batch),
/// raise the real binary's peak RSS by less than 200 MB over idle. They used to be re-parsed
/// into a `serde_json::Value` tree (tens of bytes a `0`), several GB for 64 of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_bad_four_megabyte_bodies_stay_within_200_mb_of_idle() {
    use std::io::BufRead;
    /// Kills the child when the test ends, failed or not.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_twh-emulator"))
            .args(["serve", "--port", "0", "--log", "error", "--rate-limit-per-second", "0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn twh-emulator"),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let (mut base, mut key) = (String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(b) = line.strip_prefix("TWH emulator listening on ") {
            base = b.trim().to_owned();
        }
        if let Some(k) = line.strip_prefix("export TWH_API_KEY=") {
            key = k.trim().to_owned();
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    assert!(!base.is_empty() && !key.is_empty(), "the emulator started");
    let pid = child.0.id();
    // A debug build spends about a second of CPU on each bad 4 MB body: room for 64 on a busy
    // machine.
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(600)).build().expect("client");
    let api = Api { http, ..Api::new(&base, Some(&key)) };
    api.get("/v1/items").await.ok(200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // The peak of the start (the demo sandbox) is not the idle figure: reset the peak to now.
    let reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let (idle, idle_peak) = rss_and_peak(pid);

    // Just under the 4 MiB body limit: "[0,0,...,0]".
    let n = ((4 << 20) - 2) / 2;
    let mut body = String::with_capacity(4 << 20);
    body.push('[');
    for i in 0..n {
        body.push_str(if i == 0 { "0" } else { ",0" });
    }
    body.push(']');
    let body = bytes::Bytes::from(body);
    assert!(body.len() <= 4 << 20 && body.len() > 4_000_000);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (api, body) = (api.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let (path, key) =
                if i % 2 == 0 { ("/v1/sandboxes", None) } else { ("/v1/stock-movements/batch", api.key.clone()) };
            let a = api.with_key(key.as_deref());
            let rb = a
                .req(Method::POST, path)
                .header("content-type", "application/json")
                .header("idempotency-key", format!("bad-body-{i}"))
                .body(body);
            a.send(rb).await.status
        }));
    }
    for t in tasks {
        let status = t.await.expect("task");
        assert!((400..500).contains(&status), "a bad body is a 4xx, got {status}");
    }
    let (_, peak) = rss_and_peak(pid);
    let grown = peak.saturating_sub(if reset { idle } else { idle_peak });
    println!("idle RSS {} MB, peak RSS under 64 bad 4 MB bodies {} MB (+{} MB)", idle >> 20, peak >> 20, grown >> 20);
    assert!(grown < 200 << 20, "peak RSS grew by {} MB over idle", grown >> 20);
    // And the emulator still answers.
    api.get("/v1/items").await.ok(200);
    drop(child);
}

/// Issue 19 (README bounds, keys per sandbox): rolls within a grace period used to pile up keys
/// without end (each roll leaves the previous key valid for 24 h). At most ten secret keys a
/// sandbox now: a roll past it ends the grace period of the oldest; the newest still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_holds_at_most_ten_secret_keys_however_often_it_rolls() {
    let env = Env::new().await;
    let mut current = env.api.clone();
    let mut all = vec![env.sandbox.secret_key.clone()];
    for _ in 0..25 {
        let rolled = current.post("/v1/api-keys/roll", &json!({})).await.ok(201);
        let next = rolled["secret_key"].as_str().unwrap().to_owned();
        all.push(next.clone());
        current = current.with_key(Some(&next));
    }
    let keys = env.emu.state().world.keys();
    let held = keys.values().filter(|g| g.tenant_id == env.sandbox.id).count();
    assert_eq!(held, 10 + 1, "ten secret keys and the restricted one");
    current.get("/v1/items").await.ok(200);
    env.api.with_key(Some(&all[all.len() - 10])).get("/v1/items").await.ok(200);
    env.api.with_key(Some(&all[0])).get("/v1/items").await.expect(401, "unauthenticated");
    env.shutdown().await;
}

/// Issue 19 (found by reading): each key change (a roll, a sandbox created or deleted) used to
/// copy the whole key map, every grant of every sandbox, under the key writer. The map is
/// persistent now: while a reader still holds the version from before a roll, the new version
/// shares all but the few grants on the changed path (a copied map would hold a second
/// reference to every one of the 2,000), and the roll, a delete and a create each change
/// exactly their own keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_change_copies_the_keys_it_touches_not_the_map() {
    let env = Env::new().await;
    let world = &env.emu.state().world;
    let mut secrets = Vec::new();
    for i in 0..1000 {
        let req = serde_json::from_value(json!({ "name": format!("s{i}") })).unwrap();
        let created = world.create_sandbox(req).expect("create");
        secrets.push((created.id, created.secret_key, created.restricted_key));
    }
    let before = world.keys();
    let (tenant, by, _) = &secrets[500];
    let rolled = world.roll_key(tenant, by).expect("a permanent key rolls");
    let after = world.keys();
    let others: Vec<&String> = secrets.iter().filter(|(t, ..)| t != tenant).flat_map(|(_, sk, rk)| [sk, rk]).collect();
    let shared_twice =
        others.iter().filter(|s| std::sync::Arc::strong_count(after.get(s.as_str()).unwrap()) > 1).count();
    assert!(shared_twice <= 100, "{shared_twice} of {} other grants were copied into the new map", others.len());
    // Both versions answer as of their time: the old one has no new key, the new one has it.
    assert!(before.get(&rolled.secret_key).is_none());
    assert_eq!(after.get(&rolled.secret_key).unwrap().tenant_id, *tenant);
    assert!(after.get(by.as_str()).unwrap().expires_at.is_some(), "the rolling key is in its grace period");
    drop(before);
    // A delete removes its sandbox's keys and no other.
    let count = world.keys().values().count();
    world.delete_sandbox(&secrets[7].0);
    let keys = world.keys();
    assert_eq!(keys.values().count(), count - 2);
    assert!(keys.get(&secrets[7].1).is_none() && keys.get(&secrets[7].2).is_none());
    assert!(keys.get(&secrets[8].1).is_some());
    env.shutdown().await;
}

/// Issue 19 item 7, at its scale: 1,200 connections that never send a byte are all closed after
/// the header-read timeout, and the emulator answers while they are open and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_hundred_idle_connections_are_closed_while_the_emulator_keeps_answering() {
    use tokio::io::AsyncReadExt;
    // Room for both ends of 1,200 connections in this one process (as the CLI does for itself).
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut files = getrlimit(Resource::Nofile);
        if files.current.is_some_and(|c| c < 4096) {
            files.current = files.maximum.map(|m| m.min(8192)).or(Some(8192));
            let _ = setrlimit(Resource::Nofile, files);
        }
    }
    let timeout = std::time::Duration::from_secs(1);
    let http = HttpConfig { header_read_timeout: timeout, ..HttpConfig::default() };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let anon = Api::new(&emu.base_url(), None);
    let mut idle = Vec::new();
    for _ in 0..1200 {
        idle.push(tokio::net::TcpStream::connect(emu.addr()).await.expect("connect"));
    }
    let asked = std::time::Instant::now();
    anon.get("/_emulator/health").await.ok(200);
    assert!(asked.elapsed() < timeout, "answered while 1,200 idle connections are open");
    let started = std::time::Instant::now();
    let mut closed = 0;
    for mut stream in idle {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(std::time::Duration::from_secs(20), stream.read(&mut buf)).await;
        closed += usize::from(matches!(read, Ok(Ok(0)) | Ok(Err(_))));
    }
    assert_eq!(closed, 1200, "every idle connection was closed by the server");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    anon.get("/_emulator/health").await.ok(200);
    emu.shutdown().await;
}
