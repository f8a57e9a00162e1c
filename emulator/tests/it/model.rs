//! A model-based test of the catalogue and the ledger: random sequences of creates, patches
//! (valid, with a taken SKU, with too many attributes after the merge), archives, receipts and
//! shipments run against the domain `Ledger` and against a plain reference model, and after
//! every step lookups by id and by SKU, uniqueness, levels, the event count and the ledger's own
//! invariants must agree with the model. (Run in-process, without HTTP, so thousands of steps
//! take about a second.)

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::json;
use twh_emulator::clock::Timestamp;
use twh_emulator::domain::ledger::{CatalogueFilter, IfMatch, Ledger};
use twh_emulator::domain::model::{Item, Location, Status};
use twh_emulator::domain::paging::Window;

const SKUS: usize = 6;
const ITEMS_MAX: usize = 8;
const LOCATIONS: usize = 2;
const ATTRIBUTES_MAX: usize = 50;

#[derive(Clone, Debug)]
enum Op {
    Create { sku: usize },
    Patch { item: usize, sku: Option<usize>, attributes: usize },
    Archive { item: usize },
    Receipt { item: usize, location: usize, quantity: i64 },
    Shipment { item: usize, location: usize, quantity: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..SKUS).prop_map(|sku| Op::Create { sku }),
        3 => (0..ITEMS_MAX, proptest::option::of(0..SKUS), prop_oneof![0..10usize, 20..40usize, 45..60usize])
            .prop_map(|(item, sku, attributes)| Op::Patch { item, sku, attributes }),
        1 => (0..ITEMS_MAX).prop_map(|item| Op::Archive { item }),
        3 => (0..ITEMS_MAX, 0..LOCATIONS, 1..10i64).prop_map(|(item, location, quantity)| Op::Receipt { item, location, quantity }),
        2 => (0..ITEMS_MAX, 0..LOCATIONS, 1..10i64).prop_map(|(item, location, quantity)| Op::Shipment { item, location, quantity }),
    ]
}

#[derive(Clone, Debug)]
struct ModelItem {
    id: String,
    sku: String,
    archived: bool,
    attributes: usize,
}

#[derive(Default)]
struct Model {
    items: Vec<ModelItem>,
    levels: HashMap<(usize, usize), i64>,
    events: usize,
    next_attribute: usize,
}

fn sku(n: usize) -> String {
    format!("SKU-{n}")
}

fn run(ops: &[Op]) {
    let now = Timestamp(1_900_000_000_000_000);
    let mut ledger = Ledger::new();
    let mut m = Model::default();
    let locations: Vec<String> = (0..LOCATIONS)
        .map(|i| {
            let req =
                serde_json::from_value(json!({"code": format!("L{i}"), "name": "l", "kind": "warehouse"})).unwrap();
            ledger.create::<Location>(req, now).expect("location").id
        })
        .collect();
    m.events = LOCATIONS;
    for (step, op) in ops.iter().enumerate() {
        match op.clone() {
            Op::Create { sku: n } => {
                let req = serde_json::from_value(json!({"sku": sku(n), "name": "x"})).unwrap();
                let got = ledger.create::<Item>(req, now);
                let taken = m.items.iter().any(|i| i.sku == sku(n));
                assert_eq!(got.is_ok(), !taken, "step {step} {op:?}: {got:?}");
                if let Ok(item) = got {
                    m.items.push(ModelItem { id: item.id, sku: sku(n), archived: false, attributes: 0 });
                    m.events += 1;
                }
            }
            Op::Patch { item, sku: new_sku, attributes } => {
                let Some(current) = m.items.get(item).cloned() else { continue };
                let start = m.next_attribute;
                m.next_attribute += attributes;
                let added: serde_json::Map<String, serde_json::Value> =
                    (start..start + attributes).map(|k| (format!("k{k}"), json!(k))).collect();
                let mut body = json!({"attributes": added});
                if let Some(n) = new_sku {
                    body["sku"] = json!(sku(n));
                }
                let patch = serde_json::from_value(body).unwrap();
                let got = ledger.update::<Item>(&current.id, patch, &IfMatch::Any, now);
                let taken = new_sku.is_some_and(|n| m.items.iter().any(|i| i.sku == sku(n) && i.id != current.id));
                let ok = attributes <= ATTRIBUTES_MAX && !taken && current.attributes + attributes <= ATTRIBUTES_MAX;
                assert_eq!(got.is_ok(), ok, "step {step} {op:?}: {got:?}");
                if ok {
                    let changed = attributes > 0 || new_sku.is_some_and(|n| sku(n) != current.sku);
                    let entry = &mut m.items[item];
                    entry.attributes += attributes;
                    if let Some(n) = new_sku {
                        entry.sku = sku(n);
                    }
                    m.events += usize::from(changed);
                }
            }
            Op::Archive { item } => {
                let Some(current) = m.items.get(item).cloned() else { continue };
                ledger.archive::<Item>(&current.id, &IfMatch::Any, now).expect("archive");
                m.events += usize::from(!current.archived);
                m.items[item].archived = true;
            }
            Op::Receipt { item, location, quantity } | Op::Shipment { item, location, quantity } => {
                let Some(current) = m.items.get(item).cloned() else { continue };
                let shipment = matches!(op, Op::Shipment { .. });
                let kind = if shipment { "shipment" } else { "receipt" };
                let req = serde_json::from_value(json!({
                    "type": kind, "item_id": current.id, "location_id": locations[location], "quantity": quantity
                }))
                .unwrap();
                let got = ledger.create_movement(req, None, now);
                let level = m.levels.get(&(item, location)).copied().unwrap_or_default();
                let ok = !current.archived && (!shipment || level >= quantity);
                assert_eq!(got.is_ok(), ok, "step {step} {op:?}: {got:?}");
                if ok {
                    let delta = if shipment { -quantity } else { quantity };
                    *m.levels.entry((item, location)).or_default() += delta;
                    m.events += 2;
                }
            }
        }
        check(&ledger, &m, &locations, step);
    }
}

fn check(ledger: &Ledger, m: &Model, locations: &[String], step: usize) {
    for i in &m.items {
        let entry = ledger.entry::<Item>(&i.id).expect("by id");
        assert_eq!(entry.sku, i.sku, "step {step}");
        assert_eq!(entry.status == Status::Archived, i.archived, "step {step}");
    }
    for n in 0..SKUS {
        let filter = CatalogueFilter { key: Some(sku(n)), ..CatalogueFilter::default() };
        let found: Vec<String> =
            ledger.list::<Item>(&filter, Window { start: 0, limit: 100 }).data.into_iter().map(|e| e.id).collect();
        let expected: Vec<String> = m.items.iter().filter(|i| i.sku == sku(n)).map(|i| i.id.clone()).collect();
        assert!(expected.len() <= 1, "step {step}: SKU {n} is not unique in the model");
        assert_eq!(found, expected, "step {step}: lookup of {}", sku(n));
    }
    for (&(item, location), &quantity) in &m.levels {
        let level = ledger.level(&m.items[item].id, &locations[location], None).expect("level");
        assert_eq!(level.quantity, quantity, "step {step}");
    }
    assert_eq!(ledger.event_count(), m.events, "step {step}: events");
    ledger.check_invariants().unwrap_or_else(|e| panic!("step {step}: {e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// 64 sequences of up to 120 steps: about 5,000 steps, each checked whole.
    #[test]
    fn catalogue_and_ledger_agree_with_the_model(ops in proptest::collection::vec(op(), 40..120)) {
        run(&ops);
    }
}
