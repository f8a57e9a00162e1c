//! API.md "Reconciliation and jobs" and §5 `corrupt-stock-level`: reconciliation finds nothing
//! after a random workload, exactly the skewed pair after the fault, runs nightly on clock
//! advance, and answers CSV.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// A small deterministic generator (the workload must be reproducible).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// Random receipts, shipments (some refused), adjustments, transfers, batches and reversals.
async fn random_workload(a: &Api, items: &[String], locs: &[String], ops: usize, seed: u64) {
    let mut rng = Lcg(seed);
    let mut created: Vec<String> = Vec::new();
    for _ in 0..ops {
        let item = &items[rng.next(items.len())];
        let l0 = &locs[rng.next(locs.len())];
        let l1 = &locs[rng.next(locs.len())];
        let q = (rng.next(40) + 1) as i64;
        let body = match rng.next(7) {
            0 | 1 => json!({"type": "receipt", "item_id": item, "location_id": l0, "quantity": q}),
            2 => json!({"type": "shipment", "item_id": item, "location_id": l0, "quantity": q}),
            3 => {
                json!({"type": "adjustment", "item_id": item, "location_id": l0, "quantity": q - 20, "allow_negative": true})
            }
            4 if l0 != l1 => {
                json!({"type": "transfer", "item_id": item, "from_location_id": l0, "to_location_id": l1, "quantity": q, "allow_negative": true})
            }
            5 => {
                let movements: Vec<Value> = (0..3)
                    .map(|i| json!({"type": "receipt", "item_id": item, "location_id": &locs[(i + 1) % locs.len()], "quantity": q}))
                    .collect();
                a.post_key("/v1/stock-movements/batch", &key(), &json!({"movements": movements})).await.ok(201);
                continue;
            }
            _ if !created.is_empty() => {
                let m = created.swap_remove(rng.next(created.len()));
                let r = a
                    .post_key(&format!("/v1/stock-movements/{m}/reverse"), &key(), &json!({"allow_negative": true}))
                    .await;
                assert!(r.status == 201 || r.status == 409, "{}", r.text());
                continue;
            }
            _ => json!({"type": "receipt", "item_id": item, "location_id": l1, "quantity": q}),
        };
        let r = a.movement(&body).await;
        match r.status {
            201 => created.push(id(&r.json())),
            409 => assert_eq!(r.code().as_deref(), Some("insufficient_stock")),
            _ => panic!("{}", r.text()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_finds_nothing_then_exactly_the_corrupted_pair_and_runs_nightly() {
    let env = Env::new().await;
    let a = &env.api;
    let mut items = Vec::new();
    for _ in 0..4 {
        items.push(a.new_item().await);
    }
    let mut locs = Vec::new();
    for _ in 0..3 {
        locs.push(a.new_location().await);
    }
    random_workload(a, &items, &locs, 300, 42).await;
    let levels = a.all("/v1/stock-levels").await;
    assert!(levels.len() >= 10, "{} levels", levels.len());

    // Nothing to find after a random workload.
    let r = a.post("/v1/reconciliations", &json!({})).await;
    let run = r.ok(201);
    assert_eq!(r.header("location"), Some(format!("/v1/reconciliations/{}", id(&run)).as_str()));
    assert!(id(&run).starts_with("rec_"));
    assert_eq!(run["status"], "completed");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["checked"].as_u64(), Some(levels.len() as u64));
    assert_eq!((run["discrepancy_count"].as_u64(), run["discrepancies"].clone()), (Some(0), json!([])));
    assert_eq!(a.get(&format!("/v1/reconciliations/{}", id(&run))).await.ok(200), run);

    // Skew one snapshot (not the ledger).
    let target = levels[levels.len() / 2].clone();
    let (item, loc) = (target["item_id"].as_str().unwrap(), target["location_id"].as_str().unwrap());
    let before = target["quantity"].as_i64().unwrap();
    let ctl = env.anonymous();
    let fault = json!({"tenant_id": env.sandbox.id, "item_id": item, "location_id": loc, "delta": 7});
    let skewed = ctl.post("/_emulator/faults/corrupt-stock-level", &fault).await.ok(200);
    assert_eq!(
        (skewed["snapshot_quantity"].as_i64(), skewed["ledger_quantity"].as_i64()),
        (Some(before + 7), Some(before))
    );
    let level = a.level(item, loc).await;
    assert_eq!(level["quantity"].as_i64(), Some(before + 7), "the snapshot reads skewed");
    assert_eq!(level["version"], target["version"], "no ledger line was written");
    env.check_invariants(); // the ledger itself is intact

    let run = a.post("/v1/reconciliations", &json!({})).await.ok(201);
    assert_eq!(run["checked"].as_u64(), Some(levels.len() as u64));
    assert_eq!(run["discrepancy_count"], 1);
    assert_eq!(
        run["discrepancies"],
        json!([{"item_id": item, "location_id": loc, "snapshot_quantity": before + 7, "ledger_quantity": before, "difference": 7}])
    );
    // Limited to a location: only there.
    let here = a.post("/v1/reconciliations", &json!({"location_id": loc})).await.ok(201);
    assert_eq!((here["discrepancy_count"].as_u64(), here["location_id"].as_str()), (Some(1), Some(loc)));
    let checked_here = levels.iter().filter(|l| l["location_id"] == loc).count() as u64;
    assert_eq!(here["checked"].as_u64(), Some(checked_here));
    let elsewhere = locs.iter().find(|l| l.as_str() != loc).unwrap();
    let there = a.post("/v1/reconciliations", &json!({"location_id": elsewhere})).await.ok(201);
    assert_eq!(there["discrepancy_count"], 0);
    a.post("/v1/reconciliations", &json!({"location_id": "loc_nope"})).await.expect(404, "not_found");
    a.post("/v1/reconciliations", &json!({"color": "red"})).await.expect(422, "validation_failed");

    // CSV with Accept: text/csv.
    let csv =
        a.send(a.req(Method::GET, &format!("/v1/reconciliations/{}", id(&run))).header("accept", "text/csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(
        parse_csv(&csv.text()),
        vec![
            vec!["item_id", "location_id", "snapshot_quantity", "ledger_quantity", "difference"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            vec![item.to_owned(), loc.to_owned(), (before + 7).to_string(), before.to_string(), "7".to_owned()],
        ]
    );

    // The nightly run happens on clock advance, at 00:00 UTC, and writes its event.
    let manual_events = a.all("/v1/events?type=reconciliation.completed").await.len();
    assert_eq!(manual_events, 4);
    let midnight = next_midnight(env.now().await);
    env.advance_to(midnight + chrono::Duration::seconds(1)).await;
    let runs = a.all("/v1/reconciliations").await;
    let nightly: Vec<&Value> = runs.iter().filter(|r| r["trigger"] == "nightly").collect();
    assert_eq!(nightly.len(), 1, "{runs:?}");
    let n = nightly[0];
    assert!(
        parse_time(&n["created_at"]) >= midnight
            && parse_time(&n["created_at"]) < midnight + chrono::Duration::seconds(1)
    );
    assert_eq!(n["discrepancies"], run["discrepancies"]);
    let events = a.all("/v1/events?type=reconciliation.completed").await;
    assert_eq!(events.len(), manual_events + 1);
    assert_eq!(events.last().unwrap()["data"]["id"], n["id"]);
    // Three more days: three more nightly runs (an unchanged ledger gives the same result).
    env.advance_to(midnight + chrono::Duration::days(3) + chrono::Duration::seconds(1)).await;
    let nightly: Vec<Value> =
        a.all("/v1/reconciliations").await.into_iter().filter(|r| r["trigger"] == "nightly").collect();
    assert_eq!(nightly.len(), 4);
    let days: Vec<i64> = nightly.iter().map(|r| (parse_time(&r["created_at"]) - midnight).num_hours()).collect();
    assert_eq!(days, [0, 24, 48, 72]);
    assert!(nightly.iter().all(|r| r["discrepancy_count"] == 1));

    // The skew is not lost in an export/import round trip.
    let state = ctl.get("/_emulator/state").await;
    ctl.send(
        ctl.req(Method::PUT, "/_emulator/state").header("content-type", "application/json").body(state.body.clone()),
    )
    .await
    .ok(204);
    assert_eq!(a.level(item, loc).await["quantity"].as_i64(), Some(before + 7));
    assert_eq!(a.post("/v1/reconciliations", &json!({})).await.ok(201)["discrepancy_count"], 1);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corruption_fault_checks_its_target() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    let unmoved = a.new_location().await;
    a.receipt(&item, &loc, 3).await;
    let ctl = env.anonymous();
    let post = |v: Value| {
        let ctl = ctl.clone();
        async move { ctl.post("/_emulator/faults/corrupt-stock-level", &v).await }
    };
    let sbx = env.sandbox.id.clone();
    post(json!({"tenant_id": "sbx_nope", "item_id": item, "location_id": loc, "delta": 1}))
        .await
        .expect(404, "not_found");
    post(json!({"tenant_id": sbx, "item_id": "itm_nope", "location_id": loc, "delta": 1}))
        .await
        .expect(404, "not_found");
    post(json!({"tenant_id": sbx, "item_id": item, "location_id": loc, "delta": 0}))
        .await
        .expect(422, "validation_failed");
    let r = post(json!({"tenant_id": sbx, "item_id": item, "location_id": unmoved, "delta": 1})).await;
    r.expect(422, "validation_failed");
    assert_eq!(r.error_fields(), ["location_id"]);
    post(json!({"tenant_id": sbx, "item_id": item, "location_id": loc})).await.expect(422, "validation_failed");
    // Another tenant's ids are not found through this tenant.
    let (other, _) = env.other_tenant();
    post(json!({"tenant_id": other.id, "item_id": item, "location_id": loc, "delta": 1}))
        .await
        .expect(404, "not_found");
    // Skews add up; a second fault on the pair moves it again.
    post(json!({"tenant_id": sbx, "item_id": item, "location_id": loc, "delta": -5})).await.ok(200);
    let s = post(json!({"tenant_id": sbx, "item_id": item, "location_id": loc, "delta": 2})).await.ok(200);
    assert_eq!((s["snapshot_quantity"].as_i64(), s["ledger_quantity"].as_i64()), (Some(0), Some(3)));
    // Later movements keep the ledger truthful and the skew in the snapshot.
    a.receipt(&item, &loc, 10).await;
    let lines: BTreeMap<String, i64> = a
        .all("/v1/stock-movements")
        .await
        .iter()
        .map(|m| (id(m), m["lines"][0]["quantity_after"].as_i64().unwrap()))
        .collect();
    assert_eq!(lines.values().copied().collect::<Vec<_>>(), [3, 13], "quantity_after comes from the ledger");
    assert_eq!(a.level(&item, &loc).await["quantity"], 10);
    let run = a.post("/v1/reconciliations", &json!({})).await.ok(201);
    assert_eq!(run["discrepancies"][0]["difference"], -3);
    env.check_invariants();
    env.shutdown().await;
}
