//! The OpenAPI document agrees with what is served, what is routed, and what is committed.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_document_is_the_generated_one() {
    let env = Env::new().await;
    let r = env.anonymous().get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(r.text(), twh_emulator::openapi::document_text(), "served bytes");
    assert_eq!(&r.json(), twh_emulator::openapi::document());
    // Served with an API key as well (and the same).
    assert_eq!(env.api.get("/openapi.json").await.body, r.body);
    env.shutdown().await;
}

#[test]
fn committed_document_is_up_to_date() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json"))
        .expect("read openapi/openapi.json");
    assert!(
        committed == twh_emulator::openapi::document_text(),
        "openapi/openapi.json is stale: run `cargo xtask openapi`"
    );
}

#[test]
fn documented_paths_are_the_routed_paths() {
    let doc = twh_emulator::openapi::document();
    let documented: BTreeSet<&str> = doc["paths"].as_object().expect("paths").keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = twh_emulator::http::route_paths().into_iter().collect();
    let only_doc: Vec<_> = documented.difference(&routed).collect();
    let only_routes: Vec<_> = routed.difference(&documented).collect();
    assert!(
        only_doc.is_empty() && only_routes.is_empty(),
        "documented only: {only_doc:?}; routed only: {only_routes:?}"
    );
    // The document is sane: every operation has an id, responses, and a success answer.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            assert!(METHODS.contains(&method.as_str()), "{method} {path}");
            let op_id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(op_id.to_owned()), "duplicate operationId {op_id}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|c| c.starts_with('2')), "{method} {path} has no 2xx");
            // Every path parameter in the template is declared.
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                let declared = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" && p["name"] == name));
                assert!(declared, "{method} {path}: path parameter {name} undeclared");
            }
        }
    }
    assert!(doc["paths"]["/v1/stock-movements/{id}"]["put"].is_null(), "ledger_immutable methods are not documented");
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| match s {
            "{id}" => "x_0000000000000001",
            "{item_id}" => "itm_0000000000000001",
            "{location_id}" => "loc_0000000000000001",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_answers_exactly_the_documented_methods() {
    let env = Env::new().await;
    let doc = twh_emulator::openapi::document();
    let mut mismatches = Vec::new();
    let mut checked = 0;
    let paths: Vec<(&String, &Value)> = doc["paths"].as_object().expect("paths").iter().collect();
    // Requests that change the world (reset, delete the sandbox) go last so that the others
    // still authenticate; the check itself holds either way (401 is not 405).
    let mut requests = Vec::new();
    for (path, item) in &paths {
        for m in METHODS {
            requests.push((path.as_str(), m, !item[m].is_null()));
        }
    }
    let destructive =
        |p: &str, m: &str| (p == "/_emulator/reset" && m == "post") || (p == "/v1/sandbox" && m == "delete");
    requests.sort_by_key(|(p, m, _)| destructive(p, m));
    for (path, m, documented) in requests {
        let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes()).expect("method");
        let url = concrete(path);
        let a = &env.api;
        let rb = if method == Method::GET {
            a.req(method.clone(), &url)
        } else {
            a.req_json(method.clone(), &url, &json!({})).header("if-match", "\"999\"")
        };
        let r = a.send(rb).await;
        let answered = r.status != 405;
        if r.status == 405 {
            let code = r.code();
            assert!(
                code.as_deref() == Some("method_not_allowed") || code.as_deref() == Some("ledger_immutable"),
                "{m} {url}: 405 with {:?}",
                code
            );
            assert!(r.header("allow").is_some(), "{m} {url}: 405 without Allow");
        }
        if answered != documented {
            mismatches.push(format!(
                "{} {url}: documented {documented}, answered {} {}",
                m.to_uppercase(),
                r.status,
                r.text()
            ));
        }
        checked += 1;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert_eq!(checked, paths.len() * METHODS.len());
    env.shutdown().await;
}
