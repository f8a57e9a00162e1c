//! The dashboard's routes: `GET /_emulator/sandboxes` (the sandboxes with their keys, which the
//! page reads `/v1` with) and the page's own files under `/_emulator/ui`. The page itself is
//! driven in a real browser by `scripts/test-dashboard`.

use reqwest::Method;
use serde_json::{Value, json};
use twh_emulator::http::HttpConfig;
use twh_emulator::{Config, Emulator};

use crate::common::*;

async fn listing(admin: &Api, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let path = match &cursor {
            Some(c) => format!("/_emulator/sandboxes?limit={limit}&cursor={c}"),
            None => format!("/_emulator/sandboxes?limit={limit}"),
        };
        let page = admin.get(&path).await.ok(200);
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= limit, "a page holds at most `limit`");
        out.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(data.len(), limit, "a page before the end is full");
                cursor = Some(c.to_owned());
            }
            None => return out,
        }
    }
    panic!("the listing never ended");
}

/// Every sandbox, in creation order, across pages, each with the keys that work for it now: a
/// rolled key gives way to the new one, a deleted sandbox leaves the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_are_listed_with_their_live_keys() {
    let emu = Emulator::start(Config::default()).await.expect("start");
    let admin = Api::new(&emu.base_url(), None);
    let before: Vec<String> =
        listing(&admin, 100).await.iter().map(|s| s["id"].as_str().expect("id").to_owned()).collect();
    let mut created = Vec::new();
    for i in 0..5 {
        let plan = if i == 3 { "pro" } else { "free" };
        created.push(admin.post("/v1/sandboxes", &json!({"name": format!("list-{i}"), "plan": plan})).await.ok(201));
    }
    let listed = listing(&admin, 2).await;
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().expect("id")).collect();
    let mut want: Vec<&str> = before.iter().map(String::as_str).collect();
    want.extend(created.iter().map(|c| c["id"].as_str().expect("id")));
    assert_eq!(ids, want, "every sandbox once, in creation order");
    for (c, s) in created.iter().zip(&listed[before.len()..]) {
        for field in ["id", "name", "plan", "secret_key", "restricted_key", "created_at"] {
            assert_eq!(c[field], s[field], "{field} of {}", c["id"]);
        }
        // The listed keys are the sandbox's own.
        let own = admin.with_key(s["restricted_key"].as_str()).get("/v1/sandbox").await.ok(200);
        assert_eq!(own["id"], s["id"]);
    }

    // A rolled key: the listing shows the new permanent one.
    let first = &created[0];
    let old = first["secret_key"].as_str().expect("key");
    let rolled = admin.with_key(Some(old)).post("/v1/api-keys/roll", &json!({})).await.ok(201);
    let new = rolled["secret_key"].as_str().expect("new key");
    let after = listing(&admin, 100).await;
    let shown = after.iter().find(|s| s["id"] == first["id"]).expect("still listed");
    assert_eq!(shown["secret_key"].as_str(), Some(new), "the rolled key's successor is shown");

    // A deleted sandbox is gone.
    let gone = &created[1];
    admin.with_key(gone["secret_key"].as_str()).delete("/v1/sandbox", None).await;
    let after = listing(&admin, 3).await;
    assert!(after.iter().all(|s| s["id"] != gone["id"]), "a deleted sandbox is not listed");
    assert_eq!(after.len(), before.len() + 4);
    emu.shutdown().await;
}

/// Bad paging input is refused with a problem, like every list.
#[tokio::test]
async fn the_sandbox_listing_refuses_bad_paging() {
    let emu = Emulator::start(Config::default()).await.expect("start");
    let admin = Api::new(&emu.base_url(), None);
    for cursor in ["nope", "12.itm_abc", "x.sbx_abc", "12.sbx_a%2Fb"] {
        admin.get(&format!("/_emulator/sandboxes?cursor={cursor}")).await.expect(400, "invalid_cursor");
    }
    for query in ["limit=0", "limit=101", "limit=x", "colour=blue"] {
        admin.get(&format!("/_emulator/sandboxes?{query}")).await.expect(422, "validation_failed");
    }
    emu.shutdown().await;
}

/// The page and every file it names answer with their media type and a self-only policy; an
/// unknown file is a 404 problem; the admin routes' Origin rule covers the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_files_are_served_from_the_binary() {
    let emu = Emulator::start(Config::default()).await.expect("start");
    let api = Api::new(&emu.base_url(), None);
    let page = api.get("/_emulator/ui").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let html = page.text();
    let mut files: Vec<String> = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let url = part.split('"').next().expect("quoted");
            if let Some(name) = url.strip_prefix("/_emulator/ui/") {
                files.push(name.to_owned());
            } else {
                assert!(url.starts_with('/'), "the page names only its own origin's files: {url}");
            }
        }
    }
    assert!(files.iter().any(|f| f == "app.js") && files.iter().any(|f| f == "style.css"), "{files:?}");
    // The modules app.js imports.
    let app = api.get("/_emulator/ui/app.js").await.text();
    for line in app.lines().filter(|l| l.starts_with("import ")) {
        let name = line.rsplit("\"./").next().expect("relative import").trim_end_matches("\";");
        files.push(name.to_owned());
    }
    for name in &files {
        let r = api.get(&format!("/_emulator/ui/{name}")).await;
        assert_eq!(r.status, 200, "{name}");
        let want = match name.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected file type {other:?}"),
        };
        assert_eq!(r.header("content-type"), Some(want), "{name}");
    }
    for r in [&page, &api.get("/_emulator/ui/app.js").await] {
        let csp = r.header("content-security-policy").expect("a CSP");
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
    api.get("/_emulator/ui/secrets.json").await.expect(404, "not_found");
    let foreign = api.req(Method::GET, "/_emulator/ui").header("origin", "http://evil.example");
    api.send(foreign).await.expect(403, "forbidden_origin");
    let rebound = api.req(Method::GET, "/_emulator/ui").header("host", "evil.example");
    api.send(rebound).await.expect(403, "forbidden_origin");
    emu.shutdown().await;
}

/// With an admin token the page's files (no data, no secret) still load, and what it reads does
/// not without the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_token_the_page_loads_and_its_data_needs_the_token() {
    let http = HttpConfig { admin_token: Some("dash-t0ken".to_owned()), ..HttpConfig::default() };
    let emu = Emulator::start(Config { http, ..Config::default() }).await.expect("start");
    let anonymous = Api::new(&emu.base_url(), None);
    let page = anonymous.get("/_emulator/ui").await;
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("dash-t0ken"), "the token is never in the page");
    anonymous.get("/_emulator/sandboxes").await.expect(401, "unauthenticated");
    Api::new(&emu.base_url(), Some("dash-t0keN")).get("/_emulator/sandboxes").await.expect(401, "unauthenticated");
    Api::new(&emu.base_url(), Some("dash-t0ken")).get("/_emulator/sandboxes").await.ok(200);
    emu.shutdown().await;
}
