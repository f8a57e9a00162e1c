//! API.md §5 "Request journal": every field and filter, paging, replays and faults as separate
//! entries of one key, truncation, the entry and byte bounds, masked secrets, DELETE, and a
//! journal turned off.

use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::{Config, Emulator, HttpConfig};

use crate::common::*;

/// The whole journal (every page), oldest first.
async fn journal(admin: &Api, query: &str) -> Vec<Value> {
    let path = if query.is_empty() { "/_emulator/requests".to_owned() } else { format!("/_emulator/requests?{query}") };
    admin.all(&path).await
}

/// The last four characters of a secret.
fn last4(s: &str) -> &str {
    &s[s.len() - 4..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_an_entry() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    let body = json!({"sku": unique("J"), "name": "Journal"});
    let created = a
        .send(
            a.req_json(Method::POST, "/v1/items", &body)
                .header("idempotency-key", "jk-1")
                .header("x-request-id", "req-journal-1"),
        )
        .await;
    let item = created.ok(201);
    let read = a.get(&format!("/v1/items/{}?expand=none", id(&item))).await;
    // A query parameter the route does not know: 422, journaled all the same.
    assert_eq!(read.status, 422);
    // Control-plane reads are not journaled: only the two /v1 requests are there.
    let all = journal(&admin, "").await;
    assert_eq!(all.len(), 2, "{all:#?}");
    let e = &all[0];
    assert!(e["id"].as_str().is_some_and(|i| i.starts_with("jrn_")), "{e}");
    assert_eq!(e["request_id"], "req-journal-1");
    assert_eq!(e["request_id"].as_str(), created.header("x-request-id"));
    let at = parse_time(&e["at"]);
    let now = env.now().await;
    assert!(at <= now && now - at < chrono::Duration::seconds(60), "at {at}, now {now}");
    assert_eq!(e["sandbox_id"], env.sandbox.id.as_str());
    assert_eq!(
        (e["method"].as_str(), e["path"].as_str(), e["query"].as_str()),
        (Some("POST"), Some("/v1/items"), Some(""))
    );
    assert_eq!(e["status"], 201);
    assert!(e["duration_us"].as_u64().is_some_and(|d| d > 0), "{e}");
    assert_eq!(e["idempotency_key"], "jk-1");
    assert_eq!(e["idempotent_replayed"], false);
    assert_eq!(e["fault"], Value::Null);
    let key = &env.sandbox.secret_key;
    assert_eq!(e["request"]["headers"]["authorization"], format!("Bearer sk_test_…{}", last4(key)));
    assert_eq!(e["request"]["headers"]["content-type"], "application/json");
    assert_eq!(e["request"]["body"], body);
    assert_eq!(
        (e["request"]["truncated"].as_bool(), e["request"]["size_bytes"].as_u64()),
        (Some(false), Some(serde_json::to_vec(&body).unwrap().len() as u64))
    );
    assert_eq!(e["response"]["body"], item, "the response body is the JSON sent");
    assert_eq!(e["response"]["headers"]["etag"], "\"1\"");
    assert_eq!(e["response"]["headers"]["x-request-id"], "req-journal-1");
    assert_eq!(e["response"]["size_bytes"].as_u64(), Some(created.body.len() as u64));

    let g = &all[1];
    assert_eq!(
        (g["method"].as_str(), g["query"].as_str(), g["status"].as_u64()),
        (Some("GET"), Some("expand=none"), Some(422))
    );
    assert_eq!(g["path"], format!("/v1/items/{}", id(&item)));
    assert_eq!(g["request"]["body"], Value::Null, "no body");
    assert_eq!(g["response"]["body"]["code"], "validation_failed");
    assert_eq!(g["idempotency_key"], Value::Null);
    // GET of one entry is the same entry.
    let one = admin.get(&format!("/_emulator/requests/{}", e["id"].as_str().unwrap())).await.ok(200);
    assert_eq!(&one, e);
    admin.get("/_emulator/requests/jrn_999999").await.expect(404, "not_found");
    admin.get("/_emulator/requests/nope").await.expect(404, "not_found");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_and_paging() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    let (other, b) = env.other_tenant();
    let item = a.new_item().await;
    a.get(&format!("/v1/items/{item}")).await.ok(200);
    a.get("/v1/items/itm_missing").await.expect(404, "not_found");
    b.get("/v1/items").await.ok(200);
    env.anonymous().get("/v1/items").await.expect(401, "unauthenticated");
    a.post_key("/v1/locations", "lk-1", &json!({"code": unique("L"), "name": "L"})).await.ok(201);

    let ours = journal(&admin, &format!("sandbox_id={}", env.sandbox.id)).await;
    assert_eq!(ours.len(), 4, "{ours:#?}");
    assert!(ours.iter().all(|e| e["sandbox_id"] == env.sandbox.id.as_str()));
    let theirs = journal(&admin, &format!("sandbox_id={}", other.id)).await;
    assert_eq!(theirs.len(), 1);
    let all = journal(&admin, "").await;
    assert_eq!(all.len(), 6);
    assert_eq!(all.iter().filter(|e| e["sandbox_id"].is_null()).count(), 1, "the 401 has no sandbox");

    let posts = journal(&admin, "method=post").await;
    assert_eq!(posts.iter().map(|e| e["path"].as_str().unwrap()).collect::<Vec<_>>(), ["/v1/items", "/v1/locations"]);
    let under = journal(&admin, "path_prefix=/v1/items/").await;
    assert_eq!(under.len(), 2);
    assert_eq!(journal(&admin, "status=404").await.len(), 1);
    assert_eq!(journal(&admin, "status=4xx").await.len(), 2);
    assert_eq!(journal(&admin, "status=201").await.len(), 2);
    let rid = all[1]["request_id"].as_str().unwrap().to_owned();
    let by_id = journal(&admin, &format!("request_id={rid}")).await;
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0]["id"], all[1]["id"]);
    let by_key = journal(&admin, "idempotency_key=lk-1").await;
    assert_eq!(by_key.len(), 1);
    assert_eq!(by_key[0]["path"], "/v1/locations");
    assert!(journal(&admin, "method=GET&status=201").await.is_empty(), "filters combine");

    // Paging: limit 1 walks every entry once, in order; the last id follows what comes next.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/_emulator/requests?limit=2&cursor={c}"),
            None => "/_emulator/requests?limit=2".to_owned(),
        };
        let page = admin.get(&url).await.ok(200);
        let data = page["data"].as_array().unwrap().clone();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|e| e["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(c, data.last().unwrap()["id"].as_str().unwrap());
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(seen, all.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
    let last = all.last().unwrap()["id"].as_str().unwrap().to_owned();
    let after = admin.get(&format!("/_emulator/requests?cursor={last}")).await.ok(200);
    assert_eq!(after["data"], json!([]));
    a.get("/v1/sandbox").await.ok(200);
    let after = admin.get(&format!("/_emulator/requests?cursor={last}")).await.ok(200);
    assert_eq!(after["data"].as_array().unwrap().len(), 1);
    assert_eq!(after["data"][0]["path"], "/v1/sandbox");

    // Bad input: a clear problem.
    admin.get("/_emulator/requests?cursor=abc").await.expect(400, "invalid_cursor");
    // An empty cursor (a pasted null next_cursor) is the first page, as on every other list.
    let first = admin.get("/_emulator/requests?limit=2").await.ok(200);
    let empty = admin.get("/_emulator/requests?limit=2&cursor=").await.ok(200);
    assert_eq!(first["data"][0]["id"], empty["data"][0]["id"]);
    for bad in ["limit=0", "limit=101", "status=99", "status=6xx", "method=G%20T", "nope=1"] {
        admin.get(&format!("/_emulator/requests?{bad}")).await.expect(422, "validation_failed");
    }
    env.shutdown().await;
}

/// An after-commit fault and its retry: two entries under one key and one request id, the first
/// with its fault and 5xx, the second replayed; then a plain replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulted_write_and_its_retry_are_two_entries_of_one_key() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let fault = admin
        .post("/_emulator/faults", &json!({"method": "POST", "path_prefix": "/v1/stock-movements", "action": "error_after_commit", "status": 503, "times": 1}))
        .await
        .ok(201);
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 7});
    let send = || {
        a.req_json(Method::POST, "/v1/stock-movements", &body)
            .header("idempotency-key", "retry-me")
            .header("x-request-id", "req-call-1")
    };
    a.send(send()).await.expect(503, "injected_fault");
    let second = a.send(send()).await;
    second.ok(201);
    assert!(second.replayed());
    let entries = journal(&admin, "idempotency_key=retry-me").await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries, journal(&admin, "request_id=req-call-1").await, "one call: one request id");
    assert_eq!((entries[0]["status"].as_u64(), entries[0]["idempotent_replayed"].as_bool()), (Some(503), Some(false)));
    assert_eq!(entries[0]["fault"], json!({"id": fault["id"], "action": "error_after_commit"}));
    assert_eq!(entries[0]["response"]["body"]["code"], "injected_fault");
    assert_eq!((entries[1]["status"].as_u64(), entries[1]["idempotent_replayed"].as_bool()), (Some(201), Some(true)));
    assert_eq!(entries[1]["fault"], Value::Null);
    assert_eq!(entries[1]["response"]["headers"]["idempotent-replayed"], "true");
    assert_eq!(entries[1]["response"]["body"]["lines"][0]["delta"], 7);
    assert_eq!(a.movement_count().await, 1, "one movement for the two attempts");

    // A fault before commit is journaled with its action too.
    admin
        .post("/_emulator/faults", &json!({"path_prefix": "/v1/plans", "action": "error_before_commit", "times": 1}))
        .await
        .ok(201);
    a.get("/v1/plans").await.expect(500, "injected_fault");
    let plans = journal(&admin, "path_prefix=/v1/plans").await;
    assert_eq!(plans[0]["fault"]["action"], "error_before_commit");
    assert_eq!(plans[0]["sandbox_id"], env.sandbox.id.as_str());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_past_64_kib_are_truncated() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    // 100 KiB of JSON: refused (the name is too long) after it was read whole.
    let big = json!({"sku": "BIG", "name": "n".repeat(100 << 10)});
    let sent = serde_json::to_vec(&big).unwrap();
    a.post("/v1/items", &big).await.expect(422, "validation_failed");
    // A response past 64 KiB: a page of 100 items with 1 KiB attributes.
    for i in 0..100 {
        a.post("/v1/items", &json!({"sku": format!("T{i}"), "name": "x", "attributes": {"note": "y".repeat(1024)}}))
            .await
            .ok(201);
    }
    let page = a.get("/v1/items?limit=100").await;
    assert!(page.body.len() > 64 << 10, "{}", page.body.len());

    let first = &journal(&admin, "status=422").await[0];
    assert_eq!(first["request"]["truncated"], true);
    assert_eq!(first["request"]["size_bytes"].as_u64(), Some(sent.len() as u64));
    let kept = first["request"]["body"].as_str().expect("a truncated body is a string");
    assert_eq!(kept.len(), 64 << 10);
    assert_eq!(kept.as_bytes(), &sent[..64 << 10]);
    assert_eq!(first["response"]["truncated"], false);

    let list = &journal(&admin, "method=GET&path_prefix=/v1/items").await[0];
    assert_eq!(list["response"]["truncated"], true);
    assert_eq!(list["response"]["size_bytes"].as_u64(), Some(page.body.len() as u64));
    assert_eq!(list["response"]["body"].as_str().unwrap().as_bytes(), &page.body[..64 << 10]);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_keeps_at_most_its_entries_and_bytes() {
    let http = HttpConfig { journal_size: 5, ..HttpConfig::default() };
    let env = Env::with_config(Config { http, ..Config::default() }).await;
    let admin = env.anonymous();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(env.api.get("/v1/sandbox").await.header("x-request-id").unwrap().to_owned());
    }
    let kept: Vec<String> =
        journal(&admin, "").await.iter().map(|e| e["request_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kept, ids[3..], "the newest five, oldest first");
    env.shutdown().await;

    // 200 KiB: 60 KiB bodies, so at most three entries at once, the newest.
    let bytes_max = 200 << 10;
    let http = HttpConfig { journal_bytes: bytes_max, ..HttpConfig::default() };
    let env = Env::with_config(Config { http, ..Config::default() }).await;
    let admin = env.anonymous();
    let mut ids = Vec::new();
    for i in 0..6 {
        let r = env.api.post("/v1/items", &json!({"sku": format!("B{i}"), "name": "n".repeat(60 << 10)})).await;
        ids.push(r.header("x-request-id").unwrap().to_owned());
    }
    let kept: Vec<String> =
        journal(&admin, "").await.iter().map(|e| e["request_id"].as_str().unwrap().to_owned()).collect();
    assert!((1..=3).contains(&kept.len()), "{} entries", kept.len());
    assert_eq!(kept, ids[ids.len() - kept.len()..], "the newest, oldest first");
    let (entries, bytes) = env.emu.state().journal.len();
    assert_eq!(entries, kept.len());
    assert!(bytes <= bytes_max, "{bytes} bytes held");
    env.shutdown().await;
}

/// Neither a key nor a webhook signing secret is ever stored whole, in headers or bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_secrets_are_never_whole() {
    let env = Env::new().await;
    let admin = env.anonymous();
    let a = &env.api;
    let created = admin.post("/v1/sandboxes", &json!({"name": "j"})).await.ok(201);
    let (sk, rk) = (created["secret_key"].as_str().unwrap(), created["restricted_key"].as_str().unwrap());
    let c = env.api.with_key(Some(sk));
    let rolled = c.post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let new_sk = rolled["secret_key"].as_str().expect("a new key").to_owned();
    let endpoint =
        a.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"]})).await.ok(201);
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhook-endpoints/{}", id(&endpoint));
    let got = a.get(&format!("{path}/secret")).await.ok(200);
    let rotated = a.post(&format!("{path}/rotate-secret"), &json!({})).await.ok(200);
    let rotated = rotated["secret"].as_str().unwrap().to_owned();
    env.restricted().get("/v1/items").await.ok(200);
    a.send(a.req(Method::GET, "/v1/items").header("cookie", "session=abcdefghijklmnopqrstuvwxyz")).await.ok(200);

    let text = admin.get("/_emulator/requests?limit=100").await.text();
    let whole = [
        sk,
        rk,
        new_sk.as_str(),
        secret.as_str(),
        got["secret"].as_str().unwrap(),
        rotated.as_str(),
        env.sandbox.secret_key.as_str(),
        env.sandbox.restricted_key.as_str(),
        "abcdefghijklmnopqrstuvwxyz",
    ];
    for s in whole {
        assert!(!text.contains(s), "{s} is in the journal");
    }
    for (prefix, s) in [
        ("sk_test_", sk),
        ("rk_test_", rk),
        ("sk_test_", new_sk.as_str()),
        ("whsec_", secret.as_str()),
        ("whsec_", rotated.as_str()),
    ] {
        let masked = format!("{prefix}…{}", last4(s));
        assert!(text.contains(&masked), "{masked} is not in the journal");
    }
    let restricted = format!("Bearer rk_test_…{}", last4(&env.sandbox.restricted_key));
    assert!(text.contains(&restricted));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_empties_it_and_numbering_goes_on() {
    let env = Env::new().await;
    let admin = env.anonymous();
    env.api.get("/v1/sandbox").await.ok(200);
    let before = journal(&admin, "").await;
    assert_eq!(before.len(), 1);
    assert_eq!(admin.delete("/_emulator/requests", None).await.status, 204);
    assert!(journal(&admin, "").await.is_empty());
    env.api.get("/v1/sandbox").await.ok(200);
    let after = journal(&admin, "").await;
    assert_eq!(after.len(), 1);
    let n = |e: &Value| e["id"].as_str().unwrap()[4..].parse::<u64>().unwrap();
    assert!(n(&after[0]) > n(&before[0]), "a cursor handed out before the DELETE stays valid");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_of_size_zero_records_nothing() {
    let http = HttpConfig { journal_size: 0, ..HttpConfig::default() };
    let env = Env::with_config(Config { http, ..Config::default() }).await;
    let admin = env.anonymous();
    env.api.new_item().await;
    env.api.get("/v1/items").await.ok(200);
    assert!(journal(&admin, "").await.is_empty());
    assert_eq!(env.emu.state().journal.len(), (0, 0));
    env.shutdown().await;
}

/// The journal and /metrics are admin routes: the token when one is set, the Origin/Host rule
/// when not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_and_metrics_are_admin_routes() {
    let http = HttpConfig { admin_token: Some("j0urnal".to_owned()), ..HttpConfig::default() };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let base = emu.base_url();
    let anon = Api::new(&base, None);
    let wrong = Api::new(&base, Some("j0urnaL"));
    let right = Api::new(&base, Some("j0urnal"));
    for path in ["/_emulator/requests", "/metrics", "/_emulator/requests/jrn_1"] {
        anon.get(path).await.expect(401, "unauthenticated");
        wrong.get(path).await.expect(401, "unauthenticated");
    }
    anon.delete("/_emulator/requests", None).await.expect(401, "unauthenticated");
    right.get("/_emulator/requests").await.ok(200);
    assert_eq!(right.get("/metrics").await.status, 200);
    assert_eq!(right.delete("/_emulator/requests", None).await.status, 204);
    emu.shutdown().await;

    let env = Env::new().await;
    let anon = env.anonymous();
    for path in ["/_emulator/requests", "/metrics"] {
        anon.send(anon.req(Method::GET, path).header("origin", "https://evil.example"))
            .await
            .expect(403, "forbidden_origin");
        anon.send(anon.req(Method::GET, path).header("host", "evil.example")).await.expect(403, "forbidden_origin");
    }
    env.shutdown().await;
}

/// `twh-emulator requests`: one line per entry with its markers, filters, and `--follow`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requests_command_prints_and_follows_the_journal() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let body = json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1});
    a.post_key("/v1/stock-movements", "cli-key", &body).await.ok(201);
    assert!(a.post_key("/v1/stock-movements", "cli-key", &body).await.replayed());
    a.get("/v1/items/itm_none").await.expect(404, "not_found");
    let base = env.emu.base_url();
    let exe = env!("CARGO_BIN_EXE_twh-emulator");
    let run = |args: &[&str]| {
        let mut command = Command::new(exe);
        command.args(["requests", "--url", &base]).args(args);
        // Blocking, off the runtime's threads: the emulator answers on them.
        tokio::task::spawn_blocking(move || {
            let out = command.output().expect("run");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).expect("utf-8").lines().map(str::to_owned).collect::<Vec<_>>()
        })
    };
    let all = run(&[]).await.unwrap();
    assert_eq!(all.len(), 5, "{all:#?}");
    assert!(
        all[2].contains(" 201 POST   /v1/stock-movements ")
            && all[2].contains("idem=cli-key")
            && !all[2].contains("replayed"),
        "{}",
        all[2]
    );
    assert!(all[3].contains(" 201 POST ") && all[3].contains(" replayed"), "{}", all[3]);
    assert!(all[4].contains(" 404 GET    /v1/items/itm_none "), "{}", all[4]);
    assert!(all.iter().all(|l| l.contains(&env.sandbox.id)));
    let last = run(&["--limit", "1", "--method", "post"]).await.unwrap();
    assert_eq!(last.len(), 1);
    assert!(last[0].contains("replayed"));

    // --follow prints what comes later.
    let mut child = Command::new(exe)
        .args(["requests", "--url", &base, "--follow", "--interval-ms", "50", "--path-prefix", "/v1/sandbox"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        lines.next().map(|l| l.expect("line"))
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rid = a.get("/v1/sandbox").await.header("x-request-id").unwrap().to_owned();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), reader).await.expect("a line in time").unwrap();
    child.kill().expect("kill");
    let _ = child.wait();
    let line = line.expect("a line");
    assert!(line.contains(" 200 GET    /v1/sandbox ") && line.contains(&rid), "{line}");
    env.shutdown().await;
}
