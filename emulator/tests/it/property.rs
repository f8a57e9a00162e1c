//! The ledger invariants under random concurrent load (API.md §4): for every pair
//! `quantity == Σ delta` and `version == number of lines`; sequences gap-free 1..n; one
//! `stock_movement.created` per movement and one `stock_level.updated` per line; rejected requests
//! write nothing; a key executes at most once.
//!
//! proptest generates, per case, 8 lists of ~50 operations (receipts, shipments, adjustments,
//! transfers, reversals, batches, retries with the same key, keys shared between tasks, invalid
//! requests, reads, and one archive of an item and a location mid-run); 8 tokio tasks run them at
//! once over HTTP. 8 cases: about 3,500 operations in all (more movements: batches hold several).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::{Value, json};
use twh_emulator::{Config, Emulator};

use crate::common::*;

const ITEMS: usize = 4;
const LOCATIONS: usize = 4;
/// Item and location index archived mid-run.
const DOOMED: usize = 3;
/// Item 0 has this low-stock threshold (to exercise `stock_level.below_threshold`).
const THRESHOLD: i64 = 5;
const TASKS: usize = 8;
const SHARED_SLOTS: usize = 6;

#[derive(Clone, Debug)]
enum Simple {
    Receipt { item: usize, loc: usize, q: i64 },
    Shipment { item: usize, loc: usize, q: i64 },
    Adjust { item: usize, loc: usize, q: i64 },
    Transfer { item: usize, from: usize, to: usize, q: i64 },
}

#[derive(Clone, Debug)]
enum Op {
    Move(Simple),
    /// A shipment that may go below zero.
    NegativeShipment {
        item: usize,
        loc: usize,
        q: i64,
    },
    /// Reverse one of this task's committed movements.
    Reverse {
        pick: usize,
    },
    Batch(Vec<Simple>),
    /// Send this task's previous request again with the same key: must replay byte for byte.
    Retry,
    /// A movement that fails validation (quantity 0).
    Invalid {
        item: usize,
        loc: usize,
    },
    /// A receipt under a key shared by every task: executes once in all.
    Shared {
        slot: usize,
    },
    /// Read one level: its ETag is its version.
    Read {
        item: usize,
        loc: usize,
    },
    /// Archive the doomed item and location.
    ArchiveDoomed,
}

fn simple() -> impl Strategy<Value = Simple> {
    let item = 0..ITEMS;
    let loc = 0..LOCATIONS;
    prop_oneof![
        4 => (item.clone(), loc.clone(), 1..20i64).prop_map(|(item, loc, q)| Simple::Receipt { item, loc, q }),
        3 => (item.clone(), loc.clone(), 1..25i64).prop_map(|(item, loc, q)| Simple::Shipment { item, loc, q }),
        2 => (item.clone(), loc.clone(), prop_oneof![-10..0i64, 1..=10i64]).prop_map(|(item, loc, q)| Simple::Adjust { item, loc, q }),
        3 => (item, loc, 1..LOCATIONS, 1..15i64)
            .prop_map(|(item, from, offset, q)| Simple::Transfer { item, from, to: (from + offset) % LOCATIONS, q }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => simple().prop_map(Op::Move),
        1 => (0..ITEMS, 0..LOCATIONS, 1..30i64).prop_map(|(item, loc, q)| Op::NegativeShipment { item, loc, q }),
        2 => any::<usize>().prop_map(|pick| Op::Reverse { pick }),
        2 => prop::collection::vec(simple(), 1..6).prop_map(Op::Batch),
        2 => Just(Op::Retry),
        1 => (0..ITEMS, 0..LOCATIONS).prop_map(|(item, loc)| Op::Invalid { item, loc }),
        2 => (0..SHARED_SLOTS).prop_map(|slot| Op::Shared { slot }),
        1 => (0..ITEMS, 0..LOCATIONS).prop_map(|(item, loc)| Op::Read { item, loc }),
    ]
}

/// Per task a list of operations, with `ArchiveDoomed` inserted once somewhere.
fn plan() -> impl Strategy<Value = Vec<Vec<Op>>> {
    (prop::collection::vec(prop::collection::vec(op(), 50..60), TASKS), 0..TASKS, 0.0..1.0f64).prop_map(
        |(mut tasks, who, when)| {
            let list = &mut tasks[who];
            let at = ((list.len() as f64) * when) as usize;
            list.insert(at.min(list.len()), Op::ArchiveDoomed);
            tasks
        },
    )
}

/// The catalogue of a case, by index.
struct Catalogue {
    items: Vec<String>,
    locations: Vec<String>,
}

impl Catalogue {
    fn body(&self, s: &Simple) -> Value {
        match *s {
            Simple::Receipt { item, loc, q } => {
                json!({"type": "receipt", "item_id": self.items[item], "location_id": self.locations[loc], "quantity": q})
            }
            Simple::Shipment { item, loc, q } => {
                json!({"type": "shipment", "item_id": self.items[item], "location_id": self.locations[loc], "quantity": q})
            }
            Simple::Adjust { item, loc, q } => {
                json!({"type": "adjustment", "item_id": self.items[item], "location_id": self.locations[loc], "quantity": q})
            }
            Simple::Transfer { item, from, to, q } => json!({"type": "transfer", "item_id": self.items[item],
                "from_location_id": self.locations[from], "to_location_id": self.locations[to], "quantity": q}),
        }
    }
}

/// What one task saw.
#[derive(Default)]
struct Log {
    /// Movements this task's requests created (not replays): id → body as answered.
    created: Vec<Value>,
    /// Ids of movements allowed to drive a level below zero.
    may_go_negative: HashSet<String>,
    /// Shared slots whose first execution this task got.
    shared_fresh: Vec<usize>,
    /// Outcomes by kind (`201`, `retry replayed`, `409 insufficient_stock`, …), to show the mix.
    outcomes: BTreeMap<String, usize>,
}

impl Log {
    fn saw(&mut self, what: impl Into<String>) {
        *self.outcomes.entry(what.into()).or_default() += 1;
    }
}

/// A request that can be sent again: path, key, body, and what it answered.
struct Sent {
    path: String,
    key: String,
    body: Value,
    status: u16,
    answer: Bytes,
}

const CONFLICTS: [&str; 4] = ["insufficient_stock", "item_archived", "location_archived", "already_reversed"];

async fn run_task(a: Api, cat: Arc<Catalogue>, ops: Vec<Op>, task: usize) -> Log {
    let mut log = Log::default();
    let mut last: Option<Sent> = None;
    for op in ops {
        let (path, key, body) = match &op {
            Op::Move(s) => ("/v1/stock-movements".to_owned(), key(), cat.body(s)),
            Op::NegativeShipment { item, loc, q } => (
                "/v1/stock-movements".to_owned(),
                key(),
                json!({"type": "shipment", "item_id": cat.items[*item], "location_id": cat.locations[*loc], "quantity": q, "allow_negative": true}),
            ),
            Op::Reverse { pick } => {
                if log.created.is_empty() {
                    continue;
                }
                let target = id(&log.created[pick % log.created.len()]);
                (format!("/v1/stock-movements/{target}/reverse"), key(), json!({"reason": format!("task {task}")}))
            }
            Op::Batch(entries) => (
                "/v1/stock-movements/batch".to_owned(),
                key(),
                json!({"movements": entries.iter().map(|s| cat.body(s)).collect::<Vec<_>>()}),
            ),
            Op::Invalid { item, loc } => (
                "/v1/stock-movements".to_owned(),
                key(),
                json!({"type": "receipt", "item_id": cat.items[*item], "location_id": cat.locations[*loc], "quantity": 0}),
            ),
            Op::Shared { slot } => (
                "/v1/stock-movements".to_owned(),
                format!("shared-{slot}-{}", cat.items[0]),
                cat.body(&Simple::Receipt { item: slot % ITEMS, loc: slot % LOCATIONS, q: *slot as i64 + 1 }),
            ),
            Op::Retry => {
                let Some(prev) = &last else { continue };
                let again = a.post_key(&prev.path, &prev.key, &prev.body).await;
                assert!(again.replayed(), "retry of {} was not a replay: {} {}", prev.path, again.status, again.text());
                assert_eq!(again.status, prev.status);
                assert_eq!(again.body, prev.answer, "replay is byte-identical");
                log.saw("retry replayed");
                continue;
            }
            Op::Read { item, loc } => {
                let r = a.get(&format!("/v1/items/{}/stock-levels/{}", cat.items[*item], cat.locations[*loc])).await;
                let v = r.ok(200);
                assert_eq!(v["version"].as_u64(), Some(r.etag()), "level ETag is its version");
                log.saw("read");
                continue;
            }
            Op::ArchiveDoomed => {
                a.delete(&format!("/v1/items/{}", cat.items[DOOMED]), Some("*")).await.ok(200);
                a.delete(&format!("/v1/locations/{}", cat.locations[DOOMED]), Some("*")).await.ok(200);
                log.saw("archive");
                continue;
            }
        };
        let r = a.post_key(&path, &key, &body).await;
        match r.status {
            201 => {
                let v = r.json();
                let movements: Vec<Value> = match &op {
                    Op::Batch(entries) => {
                        let data = v["data"].as_array().expect("batch data").clone();
                        assert_eq!(data.len(), entries.len());
                        data
                    }
                    _ => vec![v],
                };
                log.saw(match (&op, r.replayed()) {
                    (Op::Batch(_), _) => "201 batch",
                    (Op::Reverse { .. }, _) => "201 reversal",
                    (Op::Shared { .. }, true) => "201 shared replayed",
                    _ => "201",
                });
                match (&op, r.replayed()) {
                    (Op::Shared { slot }, false) => log.shared_fresh.push(*slot),
                    (Op::Shared { .. }, true) => {}
                    (_, true) => panic!("a fresh key was replayed: {}", r.text()),
                    (_, false) => {}
                }
                if !r.replayed() {
                    for m in movements {
                        if matches!(op, Op::NegativeShipment { .. }) {
                            log.may_go_negative.insert(id(&m));
                        }
                        log.created.push(m);
                    }
                }
            }
            409 => {
                let code = r.code().unwrap_or_default();
                log.saw(format!("409 {code}"));
                assert!(CONFLICTS.contains(&code.as_str()), "unexpected conflict {code}: {}", r.text());
                let receipt = matches!(op, Op::Move(Simple::Receipt { .. }) | Op::Shared { .. });
                assert!(!(receipt && code == "insufficient_stock"), "a receipt never lacks stock");
                assert!(code != "already_reversed" || matches!(op, Op::Reverse { .. }));
                assert!(!matches!(op, Op::NegativeShipment { .. }) || code != "insufficient_stock");
            }
            422 => {
                assert!(matches!(op, Op::Invalid { .. }), "422 for {op:?}: {}", r.text());
                r.expect(422, "validation_failed");
                log.saw("422");
            }
            s => panic!("unexpected {s} for {op:?}: {}", r.text()),
        }
        last = Some(Sent { path, key, body, status: r.status, answer: r.body.clone() });
    }
    log
}

async fn run(plan: Vec<Vec<Op>>) -> BTreeMap<String, usize> {
    let emu = Emulator::start(Config::default()).await.expect("start");
    let sandbox = emu.create_sandbox(Default::default()).expect("sandbox");
    let a = Api::new(&emu.base_url(), Some(&sandbox.secret_key));
    let mut items = Vec::new();
    for i in 0..ITEMS {
        let mut body = json!({"sku": format!("P{i}"), "name": format!("Prop {i}")});
        if i == 0 {
            body["low_stock_threshold"] = json!(THRESHOLD);
        }
        items.push(id(&a.post("/v1/items", &body).await.ok(201)));
    }
    let mut locations = Vec::new();
    for i in 0..LOCATIONS {
        locations.push(id(&a.location(&format!("L{i}")).await));
    }
    let cat = Arc::new(Catalogue { items, locations });
    let tasks: Vec<_> =
        plan.into_iter().enumerate().map(|(t, ops)| tokio::spawn(run_task(a.clone(), cat.clone(), ops, t))).collect();
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.expect("task panicked"));
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for l in &logs {
        for (k, v) in &l.outcomes {
            *outcomes.entry(k.clone()).or_default() += v;
        }
    }

    // ---- the ledger holds exactly what was answered 201, in a gap-free sequence ----
    let ledger = a.all("/v1/stock-movements").await;
    let n = ledger.len();
    let seqs: Vec<u64> = ledger.iter().map(|m| m["sequence"].as_u64().unwrap_or_default()).collect();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>(), "sequences are 1..n");
    let mut created: HashMap<String, Value> = HashMap::new();
    for m in logs.iter().flat_map(|l| l.created.iter()) {
        assert!(created.insert(id(m), m.clone()).is_none(), "two requests answered with one movement {}", id(m));
    }
    let by_id: HashMap<String, &Value> = ledger.iter().map(|m| (id(m), m)).collect();
    assert_eq!(by_id.len(), n);
    assert_eq!(
        created.len(),
        n,
        "every committed movement was answered 201 exactly once, and nothing else was written"
    );
    for (mid, m) in &created {
        assert_eq!(by_id.get(mid).copied(), Some(m), "the ledger holds the movement as answered");
    }
    // Each shared key executed exactly once.
    let mut fresh: Vec<usize> = logs.iter().flat_map(|l| l.shared_fresh.iter().copied()).collect();
    fresh.sort_unstable();
    let mut dedup = fresh.clone();
    dedup.dedup();
    assert_eq!(fresh, dedup, "a shared key executed twice");
    let may_go_negative: HashSet<&String> = logs.iter().flat_map(|l| l.may_go_negative.iter()).collect();

    // ---- replay the ledger: running sums, versions, reversals, archive order ----
    let item_index: HashMap<&str, usize> = cat.items.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
    let mut sums: BTreeMap<(String, String), (i64, u64)> = BTreeMap::new();
    let mut reversed: HashSet<String> = HashSet::new();
    let mut lines_total = 0usize;
    let mut crossings = 0usize;
    let mut expected_level_events: Vec<Value> = Vec::new();
    for m in &ledger {
        let item = m["item_id"].as_str().expect("item_id").to_owned();
        let lines = m["lines"].as_array().expect("lines");
        let kind = m["type"].as_str().unwrap_or_default();
        assert_eq!(lines.len(), if kind == "transfer" { 2 } else { 1 }, "{m}");
        if kind == "transfer" {
            assert_eq!(lines[0]["delta"].as_i64(), lines[1]["delta"].as_i64().map(|d| -d));
            assert_ne!(lines[0]["location_id"], lines[1]["location_id"]);
        }
        if let Some(original) = m["reverses"].as_str() {
            assert!(reversed.insert(original.to_owned()), "{original} reversed twice");
            let o = by_id.get(original).unwrap_or_else(|| panic!("reverses unknown {original}"));
            assert!(o["sequence"].as_u64() < m["sequence"].as_u64());
            let undo: Vec<(Value, i64)> = o["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .map(|l| (l["location_id"].clone(), -l["delta"].as_i64().unwrap_or_default()))
                .collect();
            let got: Vec<(Value, i64)> =
                lines.iter().map(|l| (l["location_id"].clone(), l["delta"].as_i64().unwrap_or_default())).collect();
            assert_eq!(got, undo, "a reversal negates every line");
        }
        for l in lines {
            let loc = l["location_id"].as_str().expect("location_id").to_owned();
            let delta = l["delta"].as_i64().expect("delta");
            assert_ne!(delta, 0);
            let e = sums.entry((item.clone(), loc.clone())).or_default();
            let before = e.0;
            e.0 += delta;
            e.1 += 1;
            assert_eq!(
                l["quantity_after"].as_i64(),
                Some(e.0),
                "quantity_after is the running Σ delta in sequence order"
            );
            if delta < 0 && !may_go_negative.contains(&id(m)) {
                assert!(e.0 >= 0, "{} drove {item}@{loc} to {} without allow_negative", id(m), e.0);
            }
            lines_total += 1;
            expected_level_events.push(json!({"item_id": item, "location_id": loc, "quantity": e.0, "version": e.1,
                                               "last_movement_id": id(m), "updated_at": m["created_at"]}));
            if item_index.get(item.as_str()) == Some(&0) && before >= THRESHOLD && e.0 < THRESHOLD {
                crossings += 1;
            }
        }
    }

    // ---- the snapshots agree with the ledger ----
    let levels = a.all("/v1/stock-levels").await;
    assert_eq!(levels.len(), sums.len(), "one level per pair with lines");
    for l in &levels {
        let pair = (
            l["item_id"].as_str().unwrap_or_default().to_owned(),
            l["location_id"].as_str().unwrap_or_default().to_owned(),
        );
        let (sum, count) = sums.get(&pair).copied().unwrap_or_else(|| panic!("level of a pair with no lines: {l}"));
        assert_eq!(l["quantity"].as_i64(), Some(sum), "quantity == Σ delta for {pair:?}");
        assert_eq!(l["version"].as_u64(), Some(count), "version == line count for {pair:?}");
        let one = a.get(&format!("/v1/items/{}/stock-levels/{}", pair.0, pair.1)).await;
        assert_eq!(one.etag(), count);
        assert_eq!(&one.json(), l);
    }
    for i in &cat.items {
        for loc in &cat.locations {
            if !sums.contains_key(&(i.clone(), loc.clone())) {
                let v = a.level(i, loc).await;
                assert_eq!((v["quantity"].as_i64(), v["version"].as_u64()), (Some(0), Some(0)));
            }
        }
    }

    // ---- the events: one movement event per movement, one level event per line, in order ----
    let events = a.all("/v1/events").await;
    let count = |t: &str| events.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("stock_movement.created"), n);
    assert_eq!(count("stock_level.updated"), lines_total);
    assert_eq!(count("stock_level.below_threshold"), crossings);
    assert_eq!(count("item.created"), ITEMS);
    assert_eq!(count("location.created"), LOCATIONS);
    assert_eq!(count("item.archived"), 1);
    assert_eq!(count("location.archived"), 1);
    assert_eq!(events.len(), n + lines_total + crossings + ITEMS + LOCATIONS + 2);
    let movement_events: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "stock_movement.created").map(|e| &e["data"]).collect();
    assert_eq!(
        movement_events,
        ledger.iter().collect::<Vec<_>>(),
        "movement events in sequence order, with the movement"
    );
    let level_events: Vec<Value> =
        events.iter().filter(|e| e["type"] == "stock_level.updated").map(|e| e["data"].clone()).collect();
    assert_eq!(level_events, expected_level_events, "level events carry each line's level, in order");
    // Each movement's level events directly follow it (below_threshold may sit in between).
    let mut expect_lines = 0;
    for e in &events {
        match e["type"].as_str().unwrap_or_default() {
            "stock_movement.created" => {
                assert_eq!(expect_lines, 0, "a movement's level events were not all written with it");
                expect_lines = e["data"]["lines"].as_array().map_or(0, Vec::len);
            }
            "stock_level.updated" => {
                assert!(expect_lines > 0, "a level event outside its movement");
                expect_lines -= 1;
            }
            "stock_level.below_threshold" => {}
            _ => assert_eq!(expect_lines, 0),
        }
    }
    // After the archive events, no movement touches the doomed item or location.
    let doomed_item = &cat.items[DOOMED];
    let doomed_loc = &cat.locations[DOOMED];
    let mut item_gone = false;
    let mut loc_gone = false;
    for e in &events {
        match e["type"].as_str().unwrap_or_default() {
            "item.archived" => item_gone = true,
            "location.archived" => loc_gone = true,
            "stock_movement.created" => {
                let d = &e["data"];
                assert!(!(item_gone && d["item_id"] == json!(doomed_item)), "a movement of an archived item: {d}");
                let at_doomed =
                    d["lines"].as_array().is_some_and(|ls| ls.iter().any(|l| l["location_id"] == json!(doomed_loc)));
                assert!(!(loc_gone && at_doomed), "a movement at an archived location: {d}");
            }
            _ => {}
        }
    }

    // ---- the exported state and the server's own checker agree ----
    let state = a.with_key(None).get("/_emulator/state").await.ok(200);
    let tenant = &state["tenants"][0]["ledger"];
    assert_eq!(tenant["movements"].as_array().map(Vec::len), Some(n));
    assert_eq!(tenant["events"].as_array().map(Vec::len), Some(events.len()));
    let t = emu.state().world.tenant(&sandbox.id).expect("tenant");
    t.state.lock().ledger.check_invariants().expect("server-side invariants");
    emu.shutdown().await;
    outcomes
}

#[test]
fn random_concurrent_operations_keep_the_ledger_consistent() {
    let config =
        ProptestConfig { cases: 8, max_shrink_iters: 16, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let totals: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let result = runner.run(&plan(), |plan| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let outcomes = rt.block_on(run(plan));
        let mut totals = totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (k, v) in outcomes {
            *totals.entry(k).or_default() += v;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let totals = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    let ops: usize = totals.values().sum();
    eprintln!("property: {ops} operations over 8 cases: {totals:?}");
    assert!(ops >= 2_500, "thousands of operations: {ops}");
    // The mix really exercised rejections, reversals, batches, replays and the archive.
    for kind in [
        "201",
        "201 batch",
        "201 reversal",
        "201 shared replayed",
        "409 insufficient_stock",
        "409 item_archived",
        "409 location_archived",
        "422",
        "retry replayed",
        "read",
        "archive",
    ] {
        assert!(totals.get(kind).copied().unwrap_or_default() > 0, "no {kind} in {totals:?}");
    }
}
