//! API.md "Reconciliation and jobs": background CSV imports. The same 10,000-row file twice adds
//! each movement once; a bad row is reported by its line number and the rest still import; the
//! header and the bounds are checked up front.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::*;

const HEADER: &str = "type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason";

async fn submit(a: &Api, data: &str) -> Value {
    let r = a.post("/v1/jobs", &json!({"type": "import_movements", "format": "csv", "data": data})).await;
    let job = r.ok(202);
    assert_eq!(r.header("location"), Some(format!("/v1/jobs/{}", id(&job)).as_str()));
    assert!(id(&job).starts_with("job_"));
    assert_eq!(job["status"], "queued");
    job
}

async fn finished(a: &Api, job: &Value) -> Value {
    let path = format!("/v1/jobs/{}", id(job));
    eventually("the job to finish", 120, || async {
        let j = a.get(&path).await.ok(200);
        (j["status"] != "queued" && j["status"] != "running").then_some(j)
    })
    .await
}

async fn levels(a: &Api) -> BTreeMap<(String, String), i64> {
    a.all("/v1/stock-levels")
        .await
        .iter()
        .map(|l| {
            let key = (l["item_id"].as_str().unwrap().to_owned(), l["location_id"].as_str().unwrap().to_owned());
            (key, l["quantity"].as_i64().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_the_same_ten_thousand_rows_twice_adds_each_movement_once() {
    let env = Env::new().await;
    let a = &env.api;
    let mut items = Vec::new();
    for _ in 0..10 {
        items.push(a.new_item().await);
    }
    let mut locs = Vec::new();
    for _ in 0..5 {
        locs.push(a.new_location().await);
    }
    // 8,000 receipts, then 2,000 transfers (two lines each); the expected levels alongside.
    let mut csv = String::from(HEADER);
    csv.push('\n');
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for i in 0..10_000usize {
        let item = &items[i % 10];
        if i < 8000 {
            let loc = &locs[(i / 10) % 5];
            let q = (i % 7 + 1) as i64;
            csv.push_str(&format!("receipt,{item},{loc},,,{q},IMP-{i},\"PO {i}, pallet {}\"\n", i % 3));
            *expected.entry((item.clone(), loc.clone())).or_default() += q;
        } else {
            let (from, to) = (&locs[i % 5], &locs[(i + 1) % 5]);
            csv.push_str(&format!("transfer,{item},,{from},{to},1,IMP-{i},\n"));
            *expected.entry((item.clone(), from.clone())).or_default() -= 1;
            *expected.entry((item.clone(), to.clone())).or_default() += 1;
        }
    }
    let job = submit(a, &csv).await;
    assert_eq!(job["progress"], json!({"processed": 0, "total": 10_000}));
    let done = finished(a, &job).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"], json!({"processed": 10_000, "total": 10_000}));
    assert_eq!(
        (done["created"].as_u64(), done["skipped"].as_u64(), done["error_count"].as_u64()),
        (Some(10_000), Some(0), Some(0))
    );
    assert!(done["completed_at"].is_string());
    async fn last(a: &Api, after: u64) -> Vec<Value> {
        let path = format!("/v1/stock-movements?after_sequence={after}");
        a.get(&path).await.ok(200)["data"].as_array().unwrap().clone()
    }
    assert_eq!(last(a, 9_999).await.len(), 1);
    assert!(last(a, 10_000).await.is_empty());
    let m = &last(a, 0).await[0];
    assert_eq!((m["reference"].as_str(), m["reason"].as_str()), (Some("IMP-0"), Some("PO 0, pallet 0")));
    let before = levels(a).await;
    let nonzero: BTreeMap<_, _> = expected.iter().filter(|(_, q)| **q != 0).map(|(k, v)| (k.clone(), *v)).collect();
    assert_eq!(
        before.iter().filter(|(_, q)| **q != 0).map(|(k, v)| (k.clone(), *v)).collect::<BTreeMap<_, _>>(),
        nonzero
    );

    // The same file again: every row is skipped, nothing is added.
    let again = finished(a, &submit(a, &csv).await).await;
    assert_eq!(again["status"], "completed");
    assert_eq!((again["created"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(10_000)));
    assert!(last(a, 10_000).await.is_empty());
    assert_eq!(levels(a).await, before);
    // The import's lines are metered (under the job's id) like any other.
    let usage = a.get("/v1/usage").await.ok(200);
    let lines = usage["meters"].as_array().unwrap().iter().find(|m| m["meter"] == "ledger_lines").unwrap().clone();
    assert_eq!(lines["quantity"], 12_000);
    let export = a.get("/v1/usage/export?format=json").await.ok(200);
    let by_job: u64 = export["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["request_id"] == job["id"])
        .map(|r| r["quantity"].as_u64().unwrap())
        .sum();
    assert_eq!(by_job, 12_000);
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_reported_by_line_and_the_rest_still_import() {
    let env = Env::new().await;
    let a = &env.api;
    let item = a.new_item().await;
    let loc = a.new_location().await;
    // Columns in another order, some absent; CRLF line ends; a blank line.
    let data = [
        "reference,type,quantity,item_id,location_id".to_owned(),
        format!("B-1,receipt,10,{item},{loc}"),
        format!("B-2,receipt,abc,{item},{loc}"),
        format!("B-3,receipt,2,{item},{loc}"),
        String::new(),
        format!("B-4,shipment,1000,{item},{loc}"),
        format!("B-5,receipt,1.5,{item},{loc}"),
        format!(",receipt,1,{item},{loc}"),
        format!("B-6,gift,1,{item},{loc}"),
        format!("B-7,receipt,1,itm_nope,{loc}"),
        format!("B-8,receipt,1,{item}"),
        format!("B-9,receipt,3,{item},{loc}"),
    ]
    .join("\r\n");
    let done = finished(a, &submit(a, &data).await).await;
    assert_eq!(done["status"], "completed_with_errors", "{done}");
    assert_eq!(done["progress"], json!({"processed": 10, "total": 10}));
    assert_eq!(done["created"], 3);
    let errors: Vec<(u64, String)> = done["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["message"].as_str().unwrap().to_owned()))
        .collect();
    let lines: Vec<u64> = errors.iter().map(|e| e.0).collect();
    assert_eq!(lines, [3, 6, 7, 8, 9, 10, 11], "{errors:?}");
    assert_eq!(done["error_count"], 7);
    assert!(errors[0].1.contains("quantity"), "{}", errors[0].1);
    assert!(errors[1].1.contains("quantity"), "insufficient stock: {}", errors[1].1);
    assert!(errors[2].1.contains("quantity"), "{}", errors[2].1);
    assert!(errors[3].1.contains("reference"), "{}", errors[3].1);
    assert!(errors[4].1.contains("type"), "{}", errors[4].1);
    assert!(errors[5].1.contains("item_id"), "{}", errors[5].1);
    assert!(errors[6].1.contains("fields"), "{}", errors[6].1);
    assert_eq!(a.level(&item, &loc).await["quantity"], 15);
    // Fixed rows imported later: only what is new is added.
    let fixed = format!(
        "type,item_id,location_id,quantity,reference\nreceipt,{item},{loc},10,B-1\nreceipt,{item},{loc},4,B-2\n"
    );
    let done = finished(a, &submit(a, &fixed).await).await;
    assert_eq!((done["created"].as_u64(), done["skipped"].as_u64()), (Some(1), Some(1)));
    assert_eq!(a.level(&item, &loc).await["quantity"], 19);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_and_the_bounds_are_checked_up_front() {
    let env = Env::new().await;
    let a = &env.api;
    let post = |data: String| {
        let a = a.clone();
        async move { a.post("/v1/jobs", &json!({"type": "import_movements", "format": "csv", "data": data})).await }
    };
    for (data, why) in [
        ("type,item_id,quantity,colour,reference\n", "colour"),
        ("type,item_id,quantity\n", "reference"),
        ("type,item_id,quantity,reference,type\n", "twice"),
        ("\n\ntype,item_id,quantity,reference\n", "line 1"),
    ] {
        let r = post(data.to_owned()).await;
        r.expect(422, "validation_failed");
        assert_eq!(r.error_fields(), ["data"]);
        assert!(r.json()["errors"][0]["message"].as_str().unwrap().contains(why), "{}", r.text());
    }
    a.post("/v1/jobs", &json!({"type": "export", "format": "csv", "data": "x"})).await.expect(422, "validation_failed");
    a.post("/v1/jobs", &json!({"type": "import_movements", "format": "xlsx", "data": "x"}))
        .await
        .expect(422, "validation_failed");
    // 50,001 rows is one too many.
    let mut many = String::from("type,item_id,quantity,reference\n");
    for i in 0..50_001 {
        many.push_str(&format!("receipt,i,1,R{i}\n"));
    }
    let r = post(many).await;
    r.expect(422, "validation_failed");
    assert!(r.text().contains("50000"), "{}", r.text());
    // A body over the limit (4 MiB) is refused before anything.
    let r = post("x".repeat(5 << 20)).await;
    r.expect(413, "payload_too_large");
    // The unread rest of the body spoils the connection; the answer says it is closing.
    assert_eq!(r.header("connection"), Some("close"));
    a.get("/v1/jobs/job_nope").await.expect(404, "not_found");
    env.restricted().post("/v1/jobs", &json!({})).await.expect(403, "forbidden");
    // Another tenant cannot see a job.
    let job = submit(a, "type,item_id,quantity,reference\n").await;
    let (_, other) = env.other_tenant();
    other.get(&format!("/v1/jobs/{}", id(&job))).await.expect(404, "not_found");
    let empty = finished(a, &job).await;
    assert_eq!((empty["status"].as_str(), empty["progress"]["total"].as_u64()), (Some("completed"), Some(0)));
    env.shutdown().await;
}
