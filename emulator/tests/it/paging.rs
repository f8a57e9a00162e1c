//! API.md §1 lists: creation order, stable under concurrent writes (nothing skipped or repeated).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::common::*;

/// Pages through `path` with `limit=7`, returning every element seen, page by page.
async fn page_through(a: &Api, path: &str, writes: Option<&AtomicUsize>) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=7&cursor={c}"),
            None => format!("{path}{sep}limit=7"),
        };
        let page = a.get(&url).await.ok(200);
        let data = page["data"].as_array().expect("data");
        assert!(data.len() <= 7, "limit respected");
        out.extend(data.iter().cloned());
        pages += 1;
        // Let the writers in between pages: wait (by their progress, bounded) for two more writes.
        if let Some(written) = writes {
            let target = written.load(Ordering::Acquire) + 2;
            let start = std::time::Instant::now();
            let all_done = 2 * WRITES_PER_WRITER;
            while written.load(Ordering::Acquire) < target.min(all_done)
                && start.elapsed() < std::time::Duration::from_millis(200)
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10_000, "paging does not end");
    }
    out
}

/// Checks that `paged` holds every one of `initial` once, and is exactly a prefix of `all`
/// (the list at the end, in creation order): nothing skipped, repeated or reordered.
fn check_paged(what: &str, initial: &[Value], paged: &[Value], all: &[Value]) {
    let ids: Vec<String> = paged.iter().map(id).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{what}: an element was repeated");
    for (i, v) in initial.iter().enumerate() {
        assert_eq!(ids.get(i), Some(&id(v)), "{what}: element {i} that existed when paging began was skipped or moved");
    }
    let all_ids: Vec<String> = all.iter().map(id).collect();
    assert!(paged.len() <= all.len());
    assert_eq!(ids, all_ids[..ids.len()], "{what}: the pages are not a prefix of the list in creation order");
}

/// Writes per writer while one list is paged.
const WRITES_PER_WRITER: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_items_and_movements_under_concurrent_inserts() {
    let env = Env::new().await;
    let a = env.api.clone();
    let loc = a.new_location().await;
    let item = a.new_item().await;
    for _ in 0..48 {
        a.new_item().await;
    }
    for i in 0..60 {
        a.receipt(&item, &loc, i + 1).await;
    }
    for path in ["/v1/items", "/v1/stock-movements", "/v1/events", "/v1/stock-movements?type=receipt"] {
        let initial = a.all(path).await;
        assert!(initial.len() >= 49, "{path}: enough to page");
        // Writers: one adds items, one adds movements (and so events), a bounded number each.
        let written = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (a, written, item, loc) = (a.clone(), written.clone(), item.clone(), loc.clone());
                tokio::spawn(async move {
                    for _ in 0..WRITES_PER_WRITER {
                        if w == 0 {
                            a.new_item().await;
                        } else {
                            a.movement(&json!({"type": "receipt", "item_id": item, "location_id": loc, "quantity": 1}))
                                .await
                                .ok(201);
                        }
                        written.fetch_add(1, Ordering::AcqRel);
                    }
                })
            })
            .collect();
        // Make sure the writers are going before paging starts.
        while written.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let paged = page_through(&a, path, Some(&written)).await;
        let during = written.load(Ordering::Acquire);
        for w in writers {
            w.await.expect("writer");
        }
        assert!(during > 2, "{path}: writes happened while paging");
        let all = a.all(path).await;
        assert!(all.len() > initial.len(), "{path}: elements were inserted");
        check_paged(path, &initial, &paged, &all);
        if path.starts_with("/v1/stock-movements") {
            let seqs: Vec<i64> = paged.iter().map(|m| m["sequence"].as_i64().unwrap_or_default()).collect();
            assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{path}: increasing: {seqs:?}");
            if path == "/v1/stock-movements" {
                assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap-free: {seqs:?}");
            }
        }
    }
    env.check_invariants();
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_boundaries_and_filters() {
    let env = Env::new().await;
    let a = &env.api;
    let loc = a.new_location().await;
    let mut items = Vec::new();
    for _ in 0..14 {
        items.push(a.new_item().await);
    }
    // Exactly two full pages of 7.
    let first = a.get("/v1/items?limit=7").await.ok(200);
    assert_eq!(first["data"].as_array().map(Vec::len), Some(7));
    let c = first["next_cursor"].as_str().expect("cursor").to_owned();
    let second = a.get(&format!("/v1/items?limit=7&cursor={c}")).await.ok(200);
    assert_eq!(second["data"].as_array().map(Vec::len), Some(7));
    let ids: Vec<String> =
        first["data"].as_array().into_iter().chain(second["data"].as_array()).flatten().map(id).collect();
    assert_eq!(ids, items);
    // A last page may come with a cursor that leads to an empty page; never to a repeat.
    if let Some(c2) = second["next_cursor"].as_str() {
        let third = a.get(&format!("/v1/items?limit=7&cursor={c2}")).await.ok(200);
        assert_eq!(third["data"], json!([]));
        assert!(third["next_cursor"].is_null());
    }
    // Default limit 20.
    for _ in 0..10 {
        a.new_item().await;
    }
    let page = a.get("/v1/items").await.ok(200);
    assert_eq!(page["data"].as_array().map(Vec::len), Some(20));
    assert!(page["next_cursor"].is_string());
    // A filter that matches sparsely still pages in order with no repeats.
    for (i, it) in items.iter().enumerate() {
        a.receipt(it, &loc, 1).await;
        if i % 3 == 0 {
            a.receipt(&items[0], &loc, 1).await;
        }
    }
    let paged = page_through(a, &format!("/v1/stock-movements?item_id={}", items[0]), None).await;
    let all = a.all(&format!("/v1/stock-movements?item_id={}", items[0])).await;
    assert_eq!(paged, all);
    assert_eq!(paged.len(), 1 + 5);
    let levels = page_through(a, "/v1/stock-levels", None).await;
    assert_eq!(levels.len(), 14);
    let pairs: HashSet<String> = levels.iter().map(|l| l["item_id"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(pairs.len(), 14);
    env.shutdown().await;
}
