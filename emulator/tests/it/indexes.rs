//! API.md §1 "Filters answer from indexes": every filter of every ledger list, paged with a small
//! random limit, returns exactly what a brute-force scan of the whole list keeps, in creation
//! order; every page but the last is full; the last has `next: None`; and the indexes rebuilt
//! from the stored records (export, import) answer the same.
//!
//! Drives the domain directly (no HTTP): proptest generates a catalogue (SKUs and names from a
//! small alphabet, so `q=` finds several), movements of every type, archives, patches (SKU,
//! name, threshold, kind) and corrupted snapshots, then checks every filter and combination.

use proptest::prelude::*;
use serde_json::{Value, json};
use twh_emulator::clock::Timestamp;
use twh_emulator::domain::ledger::{CatalogueFilter, IfMatch, Ledger, MovementFilter, Page, Window};
use twh_emulator::domain::model::{Item, Location, LocationKind, MovementType, Status};
use twh_emulator::domain::webhooks::{AttemptResult, DeliveryStatus, Webhooks};

#[derive(Clone, Debug)]
enum Op {
    Item { sku: String, name: String, threshold: Option<i64> },
    Location { code: String, kind: u8 },
    Move { kind: u8, item: usize, a: usize, b: usize, q: i64 },
    ArchiveItem(usize),
    ArchiveLocation(usize),
    PatchItem { item: usize, sku: Option<String>, name: Option<String>, threshold: Option<Option<i64>> },
    PatchLocation { location: usize, kind: u8 },
    Corrupt { item: usize, location: usize, delta: i64 },
}

fn word() -> impl Strategy<Value = String> {
    "[abAB][abcAB]{0,5}"
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (word(), word(), proptest::option::of(0i64..8)).prop_map(|(sku, name, threshold)| Op::Item { sku, name, threshold }),
        1 => (word(), 0u8..3).prop_map(|(code, kind)| Op::Location { code, kind }),
        8 => (0u8..4, 0usize..40, 0usize..8, 0usize..8, 1i64..6).prop_map(|(kind, item, a, b, q)| Op::Move { kind, item, a, b, q }),
        1 => (0usize..40).prop_map(Op::ArchiveItem),
        1 => (0usize..8).prop_map(Op::ArchiveLocation),
        1 => (0usize..40, proptest::option::of(word()), proptest::option::of(word()), proptest::option::of(proptest::option::of(0i64..8)))
            .prop_map(|(item, sku, name, threshold)| Op::PatchItem { item, sku, name, threshold }),
        1 => (0usize..8, 0u8..3).prop_map(|(location, kind)| Op::PatchLocation { location, kind }),
        1 => (0usize..40, 0usize..8, -4i64..4).prop_map(|(item, location, delta)| Op::Corrupt { item, location, delta }),
    ]
}

const KINDS: [&str; 3] = ["warehouse", "store", "virtual"];

fn apply(ledger: &mut Ledger, ops: &[Op]) {
    apply_from(ledger, ops, 0);
}

/// Applies `ops` as the `first`th op on (times never go back), picking among the items and
/// locations the ledger already has.
fn apply_from(ledger: &mut Ledger, ops: &[Op], first: usize) {
    let ids = |v: Vec<Value>| v.iter().map(|x| x["id"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    let mut items = ids(all(|w| ledger.list::<Item>(&CatalogueFilter::default(), w)));
    let mut locations = ids(all(|w| ledger.list::<Location>(&CatalogueFilter::default(), w)));
    for (i, op) in ops.iter().enumerate() {
        let now = Timestamp(1_700_000_000_000_000 + ((first + i) as i64 / 3) * 1_000_000);
        let pick = |v: &Vec<String>, i: usize| v.get(i % v.len().max(1)).cloned();
        match op {
            Op::Item { sku, name, threshold } => {
                let req = serde_json::from_value(json!({"sku": sku, "name": name, "low_stock_threshold": threshold}))
                    .expect("item body");
                if let Ok(item) = ledger.create::<Item>(req, now) {
                    items.push(item.id);
                }
            }
            Op::Location { code, kind } => {
                let req = serde_json::from_value(json!({"code": code, "name": code, "kind": KINDS[*kind as usize]}))
                    .expect("location body");
                if let Ok(location) = ledger.create::<Location>(req, now) {
                    locations.push(location.id);
                }
            }
            Op::Move { kind, item, a, b, q } => {
                let (Some(item), Some(a), Some(b)) = (pick(&items, *item), pick(&locations, *a), pick(&locations, *b))
                else {
                    continue;
                };
                let body = match kind {
                    0 => json!({"type": "receipt", "item_id": item, "location_id": a, "quantity": q}),
                    1 => {
                        json!({"type": "shipment", "item_id": item, "location_id": a, "quantity": q, "allow_negative": true})
                    }
                    2 => {
                        json!({"type": "adjustment", "item_id": item, "location_id": a, "quantity": -q, "allow_negative": true})
                    }
                    _ => {
                        json!({"type": "transfer", "item_id": item, "from_location_id": a, "to_location_id": b, "quantity": q, "allow_negative": true})
                    }
                };
                let _ = ledger.create_movement(serde_json::from_value(body).expect("movement body"), None, now);
            }
            Op::ArchiveItem(i) => {
                if let Some(id) = pick(&items, *i) {
                    let _ = ledger.archive::<Item>(&id, &IfMatch::Any, now);
                }
            }
            Op::ArchiveLocation(i) => {
                if let Some(id) = pick(&locations, *i) {
                    let _ = ledger.archive::<Location>(&id, &IfMatch::Any, now);
                }
            }
            Op::PatchItem { item, sku, name, threshold } => {
                let Some(id) = pick(&items, *item) else { continue };
                let mut patch = serde_json::Map::new();
                if let Some(s) = sku {
                    patch.insert("sku".into(), json!(s));
                }
                if let Some(n) = name {
                    patch.insert("name".into(), json!(n));
                }
                if let Some(t) = threshold {
                    patch.insert("low_stock_threshold".into(), json!(t));
                }
                let patch = serde_json::from_value(Value::Object(patch)).expect("item patch");
                let _ = ledger.update::<Item>(&id, patch, &IfMatch::Any, now);
            }
            Op::PatchLocation { location, kind } => {
                let Some(id) = pick(&locations, *location) else { continue };
                let patch = serde_json::from_value(json!({"kind": KINDS[*kind as usize]})).expect("location patch");
                let _ = ledger.update::<Location>(&id, patch, &IfMatch::Any, now);
            }
            Op::Corrupt { item, location, delta } => {
                if let (Some(item), Some(location)) = (pick(&items, *item), pick(&locations, *location)) {
                    let _ = ledger.corrupt_level(&item, &location, *delta);
                }
            }
        }
    }
}

/// Pages through a list with `limit`, checking that every page but the last is full.
fn page_through<T: serde::Serialize>(what: &str, limit: usize, mut list: impl FnMut(Window) -> Page<T>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = 0;
    for _ in 0..10_000 {
        let page = list(Window { start, limit });
        let n = page.data.len();
        out.extend(page.data.iter().map(|v| serde_json::to_value(v).expect("json")));
        match page.next {
            Some(next) => {
                assert_eq!(n, limit, "{what}: a short page before the end");
                assert!(next >= start, "{what}: the cursor went back");
                start = next;
            }
            None => return out,
        }
    }
    panic!("{what}: paging does not end");
}

fn all<T: serde::Serialize>(list: impl FnMut(Window) -> Page<T>) -> Vec<Value> {
    page_through("unfiltered", 100, list)
}

fn check(ledger: &Ledger, limit: usize) {
    let items = all(|w| ledger.list::<Item>(&CatalogueFilter::default(), w));
    let locations = all(|w| ledger.list::<Location>(&CatalogueFilter::default(), w));
    let movements = all(|w| ledger.movements(&MovementFilter::default(), w).expect("movements"));
    let levels = all(|w| ledger.levels(None, None, false, w));
    let events = all(|w| ledger.events(None, None, w).expect("events"));
    assert_eq!(
        items.len(),
        ledger.list::<Item>(&CatalogueFilter::default(), Window { start: 0, limit: 100_000 }).data.len()
    );

    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let contains = |v: &Value, key: &str, q: &str| {
        let q = q.to_lowercase();
        s(v, key).to_lowercase().contains(&q) || s(v, "name").to_lowercase().contains(&q)
    };

    // Items: sku (exact), q, status, and combinations.
    let mut queries: Vec<String> =
        vec!["a".into(), "B".into(), "ab".into(), "abc".into(), "bca".into(), "aBcA".into(), "zz".into()];
    queries.extend(items.iter().take(3).map(|v| s(v, "sku")));
    let statuses = [None, Some(Status::Active), Some(Status::Archived)];
    for status in statuses {
        for key in
            [None].into_iter().chain(items.iter().take(4).map(|v| Some(s(v, "sku")))).chain([Some("nope".to_owned())])
        {
            for q in [None].into_iter().chain(queries.iter().cloned().map(Some)) {
                let f = CatalogueFilter { key: key.clone(), q: q.clone(), status, kind: None };
                let got = page_through("items", limit, |w| ledger.list::<Item>(&f, w));
                let want: Vec<Value> = items
                    .iter()
                    .filter(|v| key.as_ref().is_none_or(|k| s(v, "sku") == *k))
                    .filter(|v| q.as_ref().is_none_or(|q| contains(v, "sku", q)))
                    .filter(|v| status.is_none_or(|st| v["status"] == serde_json::to_value(st).expect("status")))
                    .cloned()
                    .collect();
                assert_eq!(got, want, "items {f:?}");
            }
        }
    }
    // Locations: code (exact), q, status, kind.
    for status in statuses {
        for kind in [None, Some(LocationKind::Warehouse), Some(LocationKind::Store), Some(LocationKind::Virtual)] {
            for key in [None].into_iter().chain(locations.iter().take(2).map(|v| Some(s(v, "code")))) {
                for q in [None, Some("a"), Some("Bc"), Some("abca")] {
                    let f = CatalogueFilter { key: key.clone(), q: q.map(str::to_owned), status, kind };
                    let got = page_through("locations", limit, |w| ledger.list::<Location>(&f, w));
                    let want: Vec<Value> = locations
                        .iter()
                        .filter(|v| key.as_ref().is_none_or(|k| s(v, "code") == *k))
                        .filter(|v| q.is_none_or(|q| contains(v, "code", q)))
                        .filter(|v| status.is_none_or(|st| v["status"] == serde_json::to_value(st).expect("status")))
                        .filter(|v| kind.is_none_or(|k| v["kind"] == serde_json::to_value(k).expect("kind")))
                        .cloned()
                        .collect();
                    assert_eq!(got, want, "locations {f:?}");
                }
            }
        }
    }

    // Movements: item_id, location_id (any line), type, after_sequence, created_after/before.
    let item_ids: Vec<Option<String>> =
        [None].into_iter().chain(items.iter().take(5).map(|v| Some(s(v, "id")))).collect();
    let location_ids: Vec<Option<String>> =
        [None].into_iter().chain(locations.iter().take(4).map(|v| Some(s(v, "id")))).collect();
    let types = [
        None,
        Some(MovementType::Receipt),
        Some(MovementType::Shipment),
        Some(MovementType::Adjustment),
        Some(MovementType::Transfer),
    ];
    let middle = movements.get(movements.len() / 2).map(|m| m["created_at"].clone());
    let middle: Option<Timestamp> = middle.map(|t| serde_json::from_value(t).expect("time"));
    for item in &item_ids {
        for location in &location_ids {
            for kind in types {
                for (after_sequence, created_after, created_before) in
                    [(None, None, None), (Some(3u64), None, None), (None, middle, None), (None, None, middle)]
                {
                    let f = MovementFilter {
                        item_id: item.clone(),
                        location_id: location.clone(),
                        kind,
                        after_sequence,
                        created_after,
                        created_before,
                    };
                    let got = page_through("movements", limit, |w| ledger.movements(&f, w).expect("movements"));
                    let want: Vec<Value> = movements
                        .iter()
                        .filter(|m| item.as_ref().is_none_or(|i| s(m, "item_id") == *i))
                        .filter(|m| {
                            location.as_ref().is_none_or(|l| {
                                m["lines"]
                                    .as_array()
                                    .is_some_and(|ls| ls.iter().any(|line| s(line, "location_id") == *l))
                            })
                        })
                        .filter(|m| kind.is_none_or(|k| s(m, "type") == k.as_str()))
                        .filter(|m| after_sequence.is_none_or(|a| m["sequence"].as_u64().unwrap_or(0) > a))
                        .filter(|m| {
                            let t: Timestamp = serde_json::from_value(m["created_at"].clone()).expect("time");
                            created_after.is_none_or(|a| t > a) && created_before.is_none_or(|b| t < b)
                        })
                        .cloned()
                        .collect();
                    assert_eq!(got, want, "movements {f:?}");
                }
            }
        }
    }

    // Levels: item_id, location_id, below_threshold (the item's current threshold, the snapshot).
    let threshold =
        |item_id: &str| items.iter().find(|v| s(v, "id") == item_id).and_then(|v| v["low_stock_threshold"].as_i64());
    for item in &item_ids {
        for location in &location_ids {
            for below in [false, true] {
                let got =
                    page_through("levels", limit, |w| ledger.levels(item.as_deref(), location.as_deref(), below, w));
                let want: Vec<Value> = levels
                    .iter()
                    .filter(|l| item.as_ref().is_none_or(|i| s(l, "item_id") == *i))
                    .filter(|l| location.as_ref().is_none_or(|i| s(l, "location_id") == *i))
                    .filter(|l| {
                        !below || threshold(&s(l, "item_id")).is_some_and(|t| l["quantity"].as_i64().unwrap_or(0) < t)
                    })
                    .cloned()
                    .collect();
                assert_eq!(got, want, "levels item {item:?} location {location:?} below {below}");
            }
        }
    }

    // Events: the views the handler serializes are byte for byte the rendered events.
    let whole = Window { start: 0, limit: usize::MAX };
    let views = ledger.event_views(None, None, whole).expect("event views");
    let rendered = ledger.events(None, None, whole).expect("events");
    assert_eq!(
        serde_json::to_string(&views.data).expect("json"),
        serde_json::to_string(&rendered.data).expect("json"),
        "event views"
    );

    // Events: type.
    for kind in
        ["item.created", "item.updated", "location.archived", "stock_movement.created", "stock_level.below_threshold"]
    {
        let got = page_through("events", limit, |w| ledger.events(Some(kind), None, w).expect("events"));
        let want: Vec<Value> = events.iter().filter(|e| s(e, "type") == kind).cloned().collect();
        assert_eq!(got, want, "events {kind}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_filter_agrees_with_a_brute_force_scan(
        ops in proptest::collection::vec(op(), 20..160),
        limit in 1usize..6,
    ) {
        let mut ledger = Ledger::new();
        apply(&mut ledger, &ops);
        check(&ledger, limit);
        // The indexes are not stored: rebuilt from the records, they answer the same.
        let text = serde_json::to_string(&ledger).expect("export");
        let mut restored: Ledger = serde_json::from_str(&text).expect("import");
        restored.rebuild().expect("rebuild");
        check(&restored, limit);
    }
}

fn to_json<T: serde::Serialize>(data: Vec<T>) -> Vec<Value> {
    data.iter().map(|x| serde_json::to_value(x).expect("json")).collect()
}

/// Inserts only (what may happen between two pages of a reader): items, locations, movements.
fn insert_op() -> impl Strategy<Value = Op> {
    op().prop_filter("an insert", |o| matches!(o, Op::Item { .. } | Op::Location { .. } | Op::Move { .. }))
}

/// The key of a list entry: its id, or a level's pair.
fn key(v: &Value) -> String {
    match v["id"].as_str() {
        Some(id) => id.to_owned(),
        None => format!("{}@{}", v["item_id"], v["location_id"]),
    }
}

/// Pages through one list with one insert applied between every two pages, and checks what
/// the reader got against the whole list before and after: nothing twice, in list order (a
/// subsequence of the list after), and nothing skipped (every entry listed before, and still
/// listed after, was read). The filters here are the ones an entry cannot leave.
fn page_under_inserts(
    ledger: &mut Ledger,
    inserts: &[Op],
    tick: &mut usize,
    limit: usize,
    what: &str,
    list: &dyn Fn(&Ledger, Window) -> Vec<Value>,
    next: &dyn Fn(&Ledger, Window) -> Option<usize>,
) {
    let whole = |l: &Ledger| list(l, Window { start: 0, limit: usize::MAX }).iter().map(key).collect::<Vec<_>>();
    let before = whole(ledger);
    let mut read = Vec::new();
    let mut start = 0;
    let mut pending = inserts.iter();
    loop {
        let w = Window { start, limit };
        let page = list(ledger, w);
        assert!(page.len() <= limit, "{what}: an oversized page");
        read.extend(page.iter().map(key));
        let Some(n) = next(ledger, w) else { break };
        assert_eq!(page.len(), limit, "{what}: a short page before the end");
        assert!(n >= start, "{what}: the cursor went back");
        start = n;
        if let Some(op) = pending.next() {
            apply_from(ledger, std::slice::from_ref(op), *tick);
            *tick += 1;
        }
    }
    let after = whole(ledger);
    let mut rest = after.iter();
    for k in &read {
        assert!(
            rest.any(|a| a == k),
            "{what}: {k} read twice, out of order, or not listed: read {read:?}, list {after:?}"
        );
    }
    for k in before.iter().filter(|k| after.contains(k)) {
        assert!(read.contains(k), "{what}: {k} skipped: read {read:?}, list {after:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Acceptance: paging under concurrent inserts never repeats or skips, for every filter
    /// whose membership an insert cannot change (the ledger's lock orders a reader's pages and
    /// the writers' inserts, so one insert between two pages is what concurrency can do).
    #[test]
    fn filtered_paging_under_inserts_never_repeats_or_skips(
        ops in proptest::collection::vec(op(), 20..120),
        inserts in proptest::collection::vec(insert_op(), 40..80),
        limit in 1usize..5,
    ) {
        let mut ledger = Ledger::new();
        apply(&mut ledger, &ops);
        let mut tick = ops.len();
        let items = all(|w| ledger.list::<Item>(&CatalogueFilter::default(), w));
        let locations = all(|w| ledger.list::<Location>(&CatalogueFilter::default(), w));
        let item = items.first().map(key);
        let location = locations.first().map(key);
        // Unfiltered lists.
        page_under_inserts(&mut ledger, &inserts, &mut tick, limit, "items",
            &|l, w| to_json(l.list::<Item>(&CatalogueFilter::default(), w).data),
            &|l, w| l.list::<Item>(&CatalogueFilter::default(), w).next);
        page_under_inserts(&mut ledger, &inserts, &mut tick, limit, "movements",
            &|l, w| to_json(l.movements(&MovementFilter::default(), w).expect("movements").data),
            &|l, w| l.movements(&MovementFilter::default(), w).expect("movements").next);
        // Movements by item, location, type, and together.
        for kind in [None, Some(MovementType::Receipt), Some(MovementType::Transfer)] {
            for (it, lo) in [(item.clone(), None), (None, location.clone()), (item.clone(), location.clone()), (None, None)] {
                let f = MovementFilter { item_id: it, location_id: lo, kind, ..MovementFilter::default() };
                page_under_inserts(&mut ledger, &inserts, &mut tick, limit, &format!("movements {f:?}"),
                    &|l, w| to_json(l.movements(&f, w).expect("movements").data),
                    &|l, w| l.movements(&f, w).expect("movements").next);
            }
        }
        // Events by type.
        for kind in [None, Some("stock_movement.created"), Some("item.created")] {
            page_under_inserts(&mut ledger, &inserts, &mut tick, limit, &format!("events {kind:?}"),
                &|l, w| to_json(l.events(kind, None, w).expect("events").data),
                &|l, w| l.events(kind, None, w).expect("events").next);
        }
        // Levels by item, location.
        for (it, lo) in [(item.clone(), None), (None, location.clone()), (None, None)] {
            page_under_inserts(&mut ledger, &inserts, &mut tick, limit, &format!("levels {it:?} {lo:?}"),
                &|l, w| to_json(l.levels(it.as_deref(), lo.as_deref(), false, w).data),
                &|l, w| l.levels(it.as_deref(), lo.as_deref(), false, w).next);
        }
    }
}

/// The case: past 20,000 entries (the old bound of a page's scan), an exact or a
/// selective filter still answers its matches on the first page, with no cursor after them.
#[test]
fn selective_filters_answer_on_the_first_page_of_a_large_tenant() {
    let mut ledger = Ledger::new();
    let now = Timestamp(1_700_000_000_000_000);
    fn body<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("body")
    }
    let location = ledger.create::<Location>(body(json!({"code": "WH", "name": "Main"})), now).expect("location").id;
    let bulk = ledger.create::<Item>(body(json!({"sku": "BULK", "name": "Bulk"})), now).expect("item").id;
    for i in 0..25_000 {
        ledger.create::<Item>(body(json!({"sku": format!("SKU-{i:05}"), "name": "Widget"})), now).expect("item");
        let receipt = json!({"type": "receipt", "item_id": bulk, "location_id": location, "quantity": 1});
        ledger.create_movement(body(receipt), None, now).expect("receipt");
    }
    let rare = ledger.create::<Item>(body(json!({"sku": "RARE-1", "name": "Rare gadget"})), now).expect("item").id;
    let shipment = json!({"type": "adjustment", "item_id": rare, "location_id": location, "quantity": 3});
    ledger.create_movement(body(shipment), None, now).expect("adjustment");
    let first = Window { start: 0, limit: 20 };

    let f = CatalogueFilter { key: Some("SKU-24999".into()), ..CatalogueFilter::default() };
    let page = ledger.list::<Item>(&f, first);
    assert_eq!((page.data.len(), page.next), (1, None), "sku= is an exact lookup");
    let f = CatalogueFilter { q: Some("GADGET".into()), ..CatalogueFilter::default() };
    let page = ledger.list::<Item>(&f, first);
    assert_eq!((page.data.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), page.next), (vec![rare.clone()], None));
    let f = CatalogueFilter { q: Some("sku-2499".into()), ..CatalogueFilter::default() };
    let page = ledger.list::<Item>(&f, first);
    assert_eq!((page.data.len(), page.next), (10, None), "SKU-24990..SKU-24999");

    let f = MovementFilter { item_id: Some(rare.clone()), ..MovementFilter::default() };
    let page = ledger.movements(&f, first).expect("movements");
    assert_eq!((page.data.len(), page.next), (1, None));
    let f = MovementFilter { kind: Some(MovementType::Adjustment), ..MovementFilter::default() };
    assert_eq!(ledger.movements(&f, first).expect("movements").data.len(), 1);
    let f = MovementFilter { kind: Some(MovementType::Receipt), ..MovementFilter::default() };
    let page = ledger.movements(&f, first).expect("movements");
    assert_eq!((page.data.len(), page.next), (20, Some(20)), "a full page and a cursor while more exist");

    let page = ledger.events(Some("item.created"), None, Window { start: 30_000, limit: 20 }).expect("events");
    assert_eq!(page.data.len(), 20, "full pages deep in the log");
    let page = ledger.levels(Some(&rare), None, false, first);
    assert_eq!((page.data.len(), page.next), (1, None));
    assert!(ledger.index_bytes() > 0);
}

/// Every filter of `GET /v1/webhook-deliveries` (endpoint, event, status and their
/// combinations), paged with `limit`, against a brute-force scan of the whole list.
fn check_deliveries(ledger: &Ledger, hooks: &Webhooks, limit: usize) {
    let everything = all(|w| hooks.deliveries(ledger, None, None, None, w));
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let mut endpoints: Vec<Option<String>> = vec![None];
    let mut events: Vec<Option<String>> = vec![None];
    for d in &everything {
        for (list, k) in [(&mut endpoints, "endpoint_id"), (&mut events, "event_id")] {
            if !list.contains(&Some(s(d, k))) && list.len() < 5 {
                list.push(Some(s(d, k)));
            }
        }
    }
    endpoints.push(Some("whe_nope".to_owned()));
    events.push(Some("evt_nope".to_owned()));
    let statuses = [
        None,
        Some(DeliveryStatus::Pending),
        Some(DeliveryStatus::Failed),
        Some(DeliveryStatus::Succeeded),
        Some(DeliveryStatus::Dead),
    ];
    for endpoint in &endpoints {
        for event in &events {
            for status in statuses {
                let got = page_through("deliveries", limit, |w| {
                    hooks.deliveries(ledger, endpoint.as_deref(), event.as_deref(), status, w)
                });
                let want: Vec<Value> = everything
                    .iter()
                    .filter(|d| endpoint.as_ref().is_none_or(|e| s(d, "endpoint_id") == *e))
                    .filter(|d| event.as_ref().is_none_or(|e| s(d, "event_id") == *e))
                    .filter(|d| status.is_none_or(|st| d["status"] == serde_json::to_value(st).expect("status")))
                    .cloned()
                    .collect();
                assert_eq!(got, want, "deliveries endpoint {endpoint:?} event {event:?} status {status:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// Deliveries' filters (API.md §1: by endpoint, event and status, which changes both ways:
    /// pending, failed, succeeded, dead, and replayed) against a brute-force scan, before and
    /// after the indexes are rebuilt from the stored records.
    #[test]
    fn delivery_filters_agree_with_a_brute_force_scan(
        ops in proptest::collection::vec(op(), 20..80),
        endpoints in proptest::collection::vec(0usize..3, 1..4),
        rounds in proptest::collection::vec(proptest::collection::vec(0u8..5, 0..40), 1..5),
        limit in 1usize..5,
    ) {
        let mut ledger = Ledger::new();
        let mut hooks = Webhooks::default();
        let start = Timestamp(1_700_000_000_000_000);
        let kinds = [json!(["*"]), json!(["item.created"]), json!(["stock_movement.created", "location.created"])];
        for e in endpoints {
            let req = serde_json::from_value(json!({"url": "http://127.0.0.1:9/hook", "event_types": kinds[e]}))
                .expect("endpoint body");
            hooks.create_endpoint(&ledger.tag, req, start).expect("endpoint");
        }
        let half = ops.len() / 2;
        apply(&mut ledger, &ops[..half]);
        hooks.fan_out(&ledger, 0, None, start);
        let from = ledger.event_count();
        apply_from(&mut ledger, &ops[half..], half);
        hooks.fan_out(&ledger, from, None, start);
        let generator = twh_emulator::ids::Generator::system();
        for (r, results) in rounds.iter().enumerate() {
            // Far enough on that every retry is due.
            let at = Timestamp(start.0 + (r as i64 + 1) * 100_000_000_000);
            let claimed = hooks.claim_due(&ledger, at, results.len(), |_| true);
            for (c, result) in claimed.iter().zip(results) {
                let (status_code, error) = match result {
                    0 => (Some(200), None),
                    1 => (Some(500), None),
                    2 => (Some(410), None),
                    3 => (None, Some("connection refused".to_owned())),
                    _ => (Some(204), None),
                };
                let attempt = AttemptResult { status_code, duration_ms: 1, error, retry_after_seconds: None };
                for (kind, data) in hooks.record(&ledger, c.delivery, at, attempt, &[1, 2], &generator) {
                    let from = ledger.event_count();
                    ledger.emit_snapshot(kind, data, at);
                    hooks.fan_out(&ledger, from, None, at);
                }
            }
            // Replay the dead ones (dead -> pending; refused for an endpoint a 410 disabled).
            let dead = hooks.deliveries(&ledger, None, None, Some(DeliveryStatus::Dead), Window { start: 0, limit: 3 });
            for d in dead.data {
                let _ = hooks.replay(&ledger, &d.id, at);
            }
        }
        check_deliveries(&ledger, &hooks, limit);
        // The indexes are not stored: rebuilt from the records, they answer the same.
        let text = serde_json::to_string(&hooks).expect("export");
        let mut restored: Webhooks = serde_json::from_str(&text).expect("import");
        restored.rebuild(ledger.event_count() as u64).expect("rebuild");
        check_deliveries(&ledger, &restored, limit);
    }
}
