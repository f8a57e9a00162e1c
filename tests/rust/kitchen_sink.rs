//! The kitchen sink (tests/KITCHEN_SINK.md) in Rust: one scenario through the `twh` SDK against
//! the in-process emulator. Steps are numbered as in KITCHEN_SINK.md; each prints its number
//! first and adds it to any error, so a failure names its step.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::TryStreamExt;
use twh::emulator::{Config, Emulator};
use twh::types::{
    CreateItem, CreateJob, CreateLocation, CreateMovement, CreateReconciliation, CreateSandbox, CreateWebhookEndpoint,
    DeliveryStatus, FaultAction, FaultSpec, JobFormat, JobStatus, JobType, ListItemsStatus, Meter, Plan,
    ReconciliationStatus, Seed, UpdateItem, UpdateLocation,
};
use twh::{Client, Error, EventQuery, InvoiceQuery, ItemQuery, MovementQuery, WebhookDeliveryQuery, webhooks};
use twh_kitchen_sink::{Received, Receiver};

/// Polls of background work (deliveries): this many, [`POLL_INTERVAL`] apart.
const POLL_COUNT_MAX: u32 = 200;
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// The flaky endpoint's retry schedule: 7 retries of 1 s (8 attempts in all).
const FLAKY_SCHEDULE_SECONDS: [u64; 7] = [1; 7];

/// The error classes step 11 wants seen, by type.
const ERROR_CLASSES: [&str; 9] = [
    "authentication",
    "not_found",
    "conflict",
    "idempotency_key_reused",
    "validation",
    "precondition_failed",
    "precondition_required",
    "quota_exceeded",
    "connection",
];

/// What the steps share.
struct Sink {
    emu: Emulator,
    client: Client,
    /// The secret key `client` uses (for the raw call of step 11).
    key: String,
    receiver: Receiver,
    /// Error classes raised and matched so far (step 11).
    seen: BTreeSet<&'static str>,
    items: [String; 3],
    wh_a: String,
    wh_b: String,
    good: Option<twh::WebhookEndpointWithSecret>,
    flaky: Option<twh::WebhookEndpointWithSecret>,
    /// The idempotent receipt of step 5.
    receipt_id: String,
    receipt_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl Sink {
    /// Records that `result` failed with the error class `class` (matched by variant), and
    /// returns the error.
    fn expect_err<T: std::fmt::Debug>(&mut self, class: &'static str, result: twh::Result<T>) -> Result<Error> {
        let e = match result {
            Ok(v) => bail!("expected a {class} error, got Ok({v:?})"),
            Err(e) => e,
        };
        let matched = match class {
            "authentication" => matches!(e, Error::Authentication(_)),
            "not_found" => matches!(e, Error::NotFound(_)),
            "conflict" => matches!(e, Error::Conflict(_)),
            "idempotency_key_reused" => matches!(e, Error::IdempotencyKeyReused(_)),
            "validation" => matches!(e, Error::Validation(_)),
            "precondition_failed" => matches!(e, Error::PreconditionFailed(_)),
            "quota_exceeded" => matches!(e, Error::QuotaExceeded(_)),
            "connection" => matches!(e, Error::Connection { .. }),
            _ => false,
        };
        ensure!(matched, "expected a {class} error, got {e:?}");
        if e.api_error().is_some() {
            ensure!(
                e.code().is_some() && e.request_id().is_some(),
                "{class}: the error lacks its code or request id: {e:?}"
            );
        }
        self.seen.insert(class);
        Ok(e)
    }

    fn good(&self) -> Result<&twh::WebhookEndpointWithSecret> {
        self.good.as_ref().context("the good endpoint is registered in step 4")
    }

    fn flaky(&self) -> Result<&twh::WebhookEndpointWithSecret> {
        self.flaky.as_ref().context("the flaky endpoint is registered in step 4")
    }

    /// Waits until the receiver has recorded a request matching `f`.
    async fn wait_received(&self, what: &str, f: impl Fn(&Received) -> bool) -> Result<Received> {
        for _ in 0..POLL_COUNT_MAX {
            if let Some(r) = self.receiver.recorded().into_iter().find(&f) {
                return Ok(r);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        bail!("the receiver never got {what}")
    }

    /// Waits until a delivery reaches `status`.
    async fn wait_delivery(&self, id: &str, status: DeliveryStatus) -> Result<twh::types::WebhookDelivery> {
        for _ in 0..POLL_COUNT_MAX {
            let d = self.client.get_webhook_delivery(id).await?;
            if d.status == status {
                return Ok(d);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        bail!("delivery {id} never became {status:?}")
    }
}

fn event_type(r: &Received) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["type"].as_str().map(str::to_owned)
}

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Runs one step, naming it in the output and in its error.
macro_rules! step {
    ($n:literal, $name:literal, $body:expr) => {{
        println!("== step {}: {}", $n, $name);
        $body.await.with_context(|| format!("step {} ({})", $n, $name))?;
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kitchen_sink() -> Result<()> {
    // 1. Emulator and sandbox. (A rolled key's grace period is one second here, so that the
    //    old key can be seen to fail without moving the clock across a month's end.)
    let mut config = Config::default();
    config.settings.key_grace_seconds = 1;
    let emu = Emulator::start(config).await?;
    let (client, created) =
        emu.create_sandbox_with(&CreateSandbox { name: None, seed: Some(Seed::Empty), plan: Some(Plan::Free) }).await?;
    let receiver = Receiver::start().await?;
    let mut s = Sink {
        emu,
        client,
        key: created.secret_key.expose().to_owned(),
        receiver,
        seen: BTreeSet::new(),
        items: Default::default(),
        wh_a: String::new(),
        wh_b: String::new(),
        good: None,
        flaky: None,
        receipt_id: String::new(),
        receipt_at: None,
    };
    step!(1, "emulator and sandbox", step_1(&mut s));
    step!(2, "items", step_2(&mut s));
    step!(3, "locations", step_3(&mut s));
    step!(4, "webhook receivers", step_4(&mut s));
    step!(5, "exactly once under a fault", step_5(&mut s));
    step!(6, "conditional and refused movements", step_6(&mut s));
    step!(7, "paging", step_7(&mut s));
    step!(8, "webhooks", step_8(&mut s));
    step!(9, "reconciliation and jobs", step_9(&mut s));
    step!(10, "quota and invoice", step_10(&mut s));
    step!(11, "every error class seen", step_11(&mut s));
    step!(12, "call control", step_12(&mut s));
    step!(13, "stop", step_13(s));
    Ok(())
}

async fn step_1(s: &mut Sink) -> Result<()> {
    let sandbox = s.client.get_sandbox().await?;
    ensure!(sandbox.id.starts_with("sbx_"), "{sandbox:?}");
    ensure!(sandbox.plan == Plan::Free);
    let old = s.client.clone();
    let rolled = s.client.roll_api_key().await?;
    let new = s.client.with_api_key(rolled.secret_key.expose())?;
    ensure!(new.get_sandbox().await?.id == sandbox.id, "the new key reads the sandbox");
    // After the grace period the old key is refused.
    s.emu.advance_clock(Duration::from_secs(2)).await?;
    let e = s.expect_err("authentication", old.get_sandbox().await)?;
    ensure!(e.status() == Some(401) && e.code() == Some("unauthenticated"), "{e:?}");
    s.client = new;
    s.key = rolled.secret_key.expose().to_owned();
    Ok(())
}

async fn step_2(s: &mut Sink) -> Result<()> {
    let c = &s.client;
    let one = c.create_item(CreateItem::builder().sku("SINK-1").name("Sink one").low_stock_threshold(10)).await?;
    let two = c.create_item(CreateItem::builder().sku("SINK-2").name("Sink two")).await?;
    let three = c.create_item(CreateItem::builder().sku("SINK-3").name("Sink three")).await?;
    ensure!(one.low_stock_threshold == Some(10));
    let e = s.expect_err("conflict", s.client.create_item(CreateItem::builder().sku("SINK-1").name("Again")).await)?;
    ensure!(e.code() == Some("sku_taken"), "{e:?}");
    let c = &s.client;

    let read = c.get_item(&one.id).await?;
    ensure!(read.etag() == one.etag() && read.sku == "SINK-1");
    ensure!(
        c.get_item_if_changed(&one.id, read.etag()).await?.is_none(),
        "a conditional read with the current etag says unchanged"
    );
    let renamed = c.update_item(&one.id, read.etag(), UpdateItem::builder().name("Sink one, renamed")).await?;
    ensure!(renamed.etag() != read.etag());
    let stale = c.update_item(&one.id, read.etag(), UpdateItem::builder().name("Lost update")).await;
    let e = s.expect_err("precondition_failed", stale)?;
    ensure!(e.status() == Some(412), "{e:?}");
    let c = &s.client;
    let updated =
        c.update_item_with(&one.id, |item| UpdateItem::builder().name(format!("{} (checked)", item.name))).await?;
    ensure!(updated.name == "Sink one, renamed (checked)", "{}", updated.name);

    let archived = c.archive_item(&three.id, three.etag()).await?;
    ensure!(archived.status == twh::types::Status::Archived, "{archived:?}");
    let listed = c.list_items(&ItemQuery { status: Some(ListItemsStatus::Archived), ..Default::default() }).await?;
    ensure!(listed.data.iter().map(|i| i.id.as_str()).collect::<Vec<_>>() == [three.id.as_str()], "{listed:?}");
    s.items = [one.id.clone(), two.id.clone(), three.id.clone()];
    Ok(())
}

async fn step_3(s: &mut Sink) -> Result<()> {
    let c = &s.client;
    let a = c.create_location(CreateLocation::builder().code("WH-A").name("Warehouse A")).await?;
    let b = c.create_location(CreateLocation::builder().code("WH-B").name("Warehouse B")).await?;
    let renamed = c.update_location_with(&b.id, |_| UpdateLocation::builder().name("Warehouse B, renamed")).await?;
    ensure!(renamed.name == "Warehouse B, renamed" && renamed.etag() != b.etag());
    ensure!(c.get_location(&b.id).await?.name == "Warehouse B, renamed");
    s.wh_a = a.id.clone();
    s.wh_b = b.id.clone();
    Ok(())
}

async fn step_4(s: &mut Sink) -> Result<()> {
    let good = s
        .client
        .create_webhook_endpoint(
            CreateWebhookEndpoint::builder()
                .url(s.receiver.url("good"))
                .event_types(vec!["stock_movement.created".to_owned()]),
        )
        .await?;
    let flaky = s
        .client
        .create_webhook_endpoint(
            CreateWebhookEndpoint::builder()
                .url(s.receiver.url("flaky"))
                .event_types(vec!["*".to_owned()])
                .retry_schedule_seconds(Some(FLAKY_SCHEDULE_SECONDS.to_vec())),
        )
        .await?;
    ensure!(good.enabled && flaky.enabled);
    ensure!(flaky.retry_schedule_seconds.as_deref() == Some(&FLAKY_SCHEDULE_SECONDS[..]), "{flaky:?}");
    s.good = Some(good.into_inner());
    s.flaky = Some(flaky.into_inner());
    Ok(())
}

async fn step_5(s: &mut Sink) -> Result<()> {
    let (item, wh) = (s.items[0].clone(), s.wh_a.clone());
    s.emu
        .inject_fault(&FaultSpec {
            action: FaultAction::ErrorAfterCommit,
            method: Some("POST".to_owned()),
            path_prefix: Some("/v1/stock-movements".to_owned()),
            status: Some(500),
            delay_ms: None,
            sandbox_id: Some(s.client.get_sandbox().await?.id),
            times: 1.try_into()?,
        })
        .await?;
    let receipt = CreateMovement::receipt(&item, &wh, 100);
    let first = s.client.create_movement(receipt.clone()).idempotency_key("sink-receipt-1").await?;
    ensure!(s.emu.faults().await?.is_empty(), "the fault fired (and the SDK's retry got the answer)");
    // The request journal shows both attempts of that call: one request id, the second replayed.
    let attempts = s
        .emu
        .requests(&twh::emulator::RequestsQuery {
            idempotency_key: Some("sink-receipt-1".to_owned()),
            ..Default::default()
        })
        .await?
        .data;
    let seen: Vec<_> = attempts.iter().map(|e| (e.status, e.idempotent_replayed, e.fault.is_some())).collect();
    ensure!(seen == [(500, false, true), (201, true, false)], "the journal: {seen:?}");
    ensure!(attempts[0].request_id == attempts[1].request_id, "one call, one request id");
    let in_ledger = s
        .client
        .list_movements(&MovementQuery {
            item_id: Some(item.clone()),
            location_id: Some(wh.clone()),
            ..Default::default()
        })
        .await?;
    ensure!(in_ledger.data.len() == 1 && in_ledger.data[0].id == first.id, "exactly one movement: {in_ledger:?}");
    let level = s.client.get_stock_level(&item, &wh).await?;
    ensure!(level.quantity == 100 && level.version == 1, "{level:?}");
    let again = s.client.create_movement(receipt).idempotency_key("sink-receipt-1").await?;
    ensure!(again.id == first.id, "the same key and body return the same movement");
    let other =
        s.client.create_movement(CreateMovement::receipt(&item, &wh, 99)).idempotency_key("sink-receipt-1").await;
    let e = s.expect_err("idempotency_key_reused", other)?;
    ensure!(e.status() == Some(422) && e.code() == Some("idempotency_key_reused"), "{e:?}");
    s.receipt_id = first.id.clone();
    s.receipt_at = Some(first.created_at);
    Ok(())
}

async fn step_6(s: &mut Sink) -> Result<()> {
    let (item, a, b) = (s.items[0].clone(), s.wh_a.clone(), s.wh_b.clone());
    let level = s.client.get_stock_level(&item, &a).await?;
    let sale = s.client.create_movement_if_match(CreateMovement::shipment(&item, &a, 30), level.etag()).await?;
    ensure!(sale.lines[0].quantity_after == 70, "{sale:?}");
    let stale = s.client.create_movement_if_match(CreateMovement::shipment(&item, &a, 30), level.etag()).await;
    s.expect_err("precondition_failed", stale)?;
    let too_much = s.client.create_movement(CreateMovement::shipment(&item, &a, 1000)).await;
    let e = s.expect_err("conflict", too_much)?;
    ensure!(e.code() == Some("insufficient_stock"), "{e:?}");

    let c = &s.client;
    let transfer = c.create_movement(CreateMovement::transfer(&item, &a, &b, 10)).await?;
    ensure!(transfer.lines.len() == 2, "{transfer:?}");
    let adjustment = c.create_movement(CreateMovement::adjustment(&item, &a, -5)).await?;
    let batch = c.create_movement_batch((1..=3).map(|q| CreateMovement::receipt(&item, &a, q))).await?;
    ensure!(batch.len() == 3);
    let reversal = c.reverse_movement(&adjustment.id, twh::types::ReverseMovement::default()).await?;
    ensure!(reversal.reverses.as_deref() == Some(adjustment.id.as_str()), "{reversal:?}");

    // The level equals the sum of the deltas of its ledger lines.
    let movements: Vec<_> = c
        .list_movements_stream(MovementQuery {
            item_id: Some(item.clone()),
            location_id: Some(a.clone()),
            ..Default::default()
        })
        .try_collect()
        .await?;
    let sum: i64 = movements.iter().flat_map(|m| &m.lines).filter(|l| l.location_id == a).map(|l| l.delta).sum();
    let level = c.get_stock_level(&item, &a).await?;
    ensure!(level.quantity == sum, "level {} but Σ delta {sum}", level.quantity);
    ensure!(level.quantity == 100 - 30 - 10 - 5 + 6 + 5, "{level:?}");
    let before = s.receipt_at.context("step 5 records the receipt's time")? - chrono::Duration::milliseconds(1);
    ensure!(c.get_stock_level_as_of(&item, &a, before).await?.quantity == 0, "as of before the first receipt");
    Ok(())
}

async fn step_7(s: &mut Sink) -> Result<()> {
    let c = &s.client;
    for i in 0..120 {
        c.create_item(CreateItem::builder().sku(format!("PAGE-{i:03}")).name(format!("Paged {i}"))).await?;
    }
    let all: Vec<_> = c.list_items_stream(ItemQuery { limit: Some(50), ..Default::default() }).try_collect().await?;
    let ids: BTreeSet<&str> = all.iter().map(|i| i.id.as_str()).collect();
    ensure!(all.len() == 123 && ids.len() == 123, "{} items, {} distinct", all.len(), ids.len());
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = c.list_items(&ItemQuery { limit: Some(50), cursor: cursor.take(), ..Default::default() }).await?;
        pages.push(page.data.len());
        ensure!(pages.len() <= 3, "more pages than 123 items need");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(pages == [50, 50, 23], "{pages:?}");
    Ok(())
}

async fn step_8(s: &mut Sink) -> Result<()> {
    let good = s.good()?.clone();
    let flaky = s.flaky()?.clone();
    let receipt_id = s.receipt_id.clone();

    // The good receiver got the receipt's stock_movement.created, and it verifies.
    let got = s
        .wait_received("the receipt's stock_movement.created on /good", |r| {
            r.path == "good"
                && event_type(r).as_deref() == Some("stock_movement.created")
                && serde_json::from_slice::<serde_json::Value>(&r.body)
                    .is_ok_and(|v| v["data"]["id"] == receipt_id.as_str())
        })
        .await?;
    let event = webhooks::verify(&got.body, &got.headers, &good.secret, webhooks::DEFAULT_TOLERANCE)?;
    ensure!(event.type_ == "stock_movement.created" && event.id == header(&got, "webhook-id"));
    let mut tampered = got.body.to_vec();
    tampered.extend_from_slice(b" ");
    ensure!(
        matches!(
            webhooks::verify(&tampered, &got.headers, &good.secret, webhooks::DEFAULT_TOLERANCE),
            Err(Error::WebhookVerification(_))
        ),
        "a changed body is rejected"
    );

    // Flaky's first delivery goes through its whole schedule and dies.
    let first = s
        .client
        .list_webhook_deliveries(&WebhookDeliveryQuery {
            endpoint_id: Some(flaky.id.clone()),
            limit: Some(1),
            ..Default::default()
        })
        .await?
        .data
        .into_iter()
        .next()
        .context("flaky has deliveries")?;
    let mut dead = None;
    for _ in 0..10 {
        s.emu.advance_clock(Duration::from_secs(10)).await?;
        let d = s.client.get_webhook_delivery(&first.id).await?;
        if d.status == DeliveryStatus::Dead {
            dead = Some(d);
            break;
        }
    }
    let dead = dead.context("flaky's first delivery never became dead")?;
    ensure!(dead.attempts.len() == 8, "8 attempts, not {}", dead.attempts.len());
    ensure!(dead.attempts.iter().all(|a| a.status_code == Some(500)), "{:?}", dead.attempts);
    let exhausted = s
        .client
        .list_events(&EventQuery { type_: Some("webhook_delivery.exhausted".to_owned()), ..Default::default() })
        .await?;
    ensure!(!exhausted.data.is_empty(), "a webhook_delivery.exhausted event");

    // Healed and replayed, it succeeds, with the same webhook-id as the failed attempts.
    s.receiver.heal_flaky();
    s.client.replay_webhook_delivery(&first.id).await?;
    s.wait_delivery(&first.id, DeliveryStatus::Succeeded).await?;
    let same_id: Vec<u16> = s
        .receiver
        .recorded()
        .into_iter()
        .filter(|r| r.path == "flaky" && header(r, "webhook-id") == dead.event_id)
        .map(|r| r.status)
        .collect();
    ensure!(same_id.iter().filter(|c| **c == 500).count() >= 8 && same_id.contains(&200), "{same_id:?}");

    // A test ping, then a rotated secret that signs the next delivery.
    let ping = s.client.test_webhook_endpoint(&good.id).await?;
    ensure!(ping.event_type == "ping", "{ping:?}");
    let got =
        s.wait_received("the ping on /good", |r| r.path == "good" && event_type(r).as_deref() == Some("ping")).await?;
    webhooks::verify(&got.body, &got.headers, &good.secret, webhooks::DEFAULT_TOLERANCE)?;
    let rotated = s.client.rotate_webhook_secret(&good.id).await?;
    ensure!(rotated.secret.expose() != good.secret.expose(), "a new secret");
    let after = s.client.create_movement(CreateMovement::receipt(&s.items[1], &s.wh_b, 1)).await?;
    let got = s
        .wait_received("the post-rotation delivery on /good", |r| {
            r.path == "good"
                && serde_json::from_slice::<serde_json::Value>(&r.body)
                    .is_ok_and(|v| v["data"]["id"] == after.id.as_str())
        })
        .await?;
    webhooks::verify(&got.body, &got.headers, &rotated.secret, webhooks::DEFAULT_TOLERANCE)?;
    ensure!(s.receiver.dropped() == 0, "the receiver kept every request");

    // The endpoints are done: delete them so the bulk writes of step 10 send nothing.
    for id in [&good.id, &flaky.id] {
        let current = s.client.get_webhook_endpoint(id).await?;
        s.client.delete_webhook_endpoint(id, current.etag()).await?;
    }
    Ok(())
}

async fn step_9(s: &mut Sink) -> Result<()> {
    let rec = s.client.create_reconciliation(CreateReconciliation::default()).await?;
    ensure!(rec.status == ReconciliationStatus::Completed, "{rec:?}");
    ensure!(rec.checked > 0 && rec.discrepancies.is_empty() && rec.discrepancy_count == 0, "{rec:?}");
    ensure!(s.client.get_reconciliation(&rec.id).await?.id == rec.id);

    // Line 1 is the header; line 3 (quantity 0) is the bad row.
    let (item, a) = (s.items[1].clone(), s.wh_a.clone());
    let csv = format!(
        "type,item_id,location_id,quantity,reference\n\
         receipt,{item},{a},7,sink-import-1\n\
         receipt,{item},{a},0,sink-import-2\n\
         receipt,{item},{a},3,sink-import-3\n"
    );
    let job = s
        .client
        .create_job(CreateJob { data: csv.parse()?, format: JobFormat::Csv, type_: JobType::ImportMovements })
        .await?;
    let mut done = None;
    for _ in 0..POLL_COUNT_MAX {
        let j = s.client.get_job(&job.id).await?;
        if !matches!(j.status, JobStatus::Queued | JobStatus::Running) {
            done = Some(j);
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let job = done.context("the import job never finished")?;
    ensure!(job.status == JobStatus::CompletedWithErrors, "{job:?}");
    ensure!(job.errors.len() == 1 && job.errors[0].line == 3 && job.created == 2, "{job:?}");
    let imported = s
        .client
        .list_movements(&MovementQuery {
            item_id: Some(item.clone()),
            location_id: Some(a.clone()),
            ..Default::default()
        })
        .await?;
    let mut references: Vec<_> = imported.data.iter().filter_map(|m| m.reference.clone()).collect();
    references.sort();
    ensure!(references == ["sink-import-1", "sink-import-3"], "{references:?}");
    ensure!(s.client.get_stock_level(&item, &a).await?.quantity == 10);
    Ok(())
}

async fn ledger_lines(c: &Client) -> Result<twh::types::MeterUsage> {
    let usage = c.get_usage(None).await?;
    usage.meters.into_iter().find(|m| m.meter == Meter::LedgerLines).context("a ledger_lines meter")
}

async fn step_10(s: &mut Sink) -> Result<()> {
    let (item, b) = (s.items[1].clone(), s.wh_b.clone());
    ensure!(s.client.get_subscription().await?.plan == Plan::Free);
    let before = ledger_lines(&s.client).await?;
    ensure!(before.quota == 20_000 && before.quantity < before.quota, "{before:?}");
    let mut remaining = before.quota - before.quantity;
    while remaining > 0 {
        let n = remaining.min(1000);
        s.client.create_movement_batch((0..n).map(|_| CreateMovement::receipt(&item, &b, 1))).await?;
        remaining -= n;
    }
    ensure!(ledger_lines(&s.client).await?.quantity == before.quota, "the quota is exactly full");
    let over = s.client.create_movement(CreateMovement::receipt(&item, &b, 1)).await;
    let e = s.expect_err("quota_exceeded", over)?;
    ensure!(e.status() == Some(429) && e.retry_after().is_some(), "{e:?}");

    let sub = s.client.update_subscription(Plan::Pro).await?;
    ensure!(sub.plan == Plan::Pro);
    s.client.create_movement(CreateMovement::receipt(&item, &b, 1)).await?;
    let used = ledger_lines(&s.client).await?.quantity;
    ensure!(used == before.quota + 1, "{used}");

    // Past the month's end: one invoice, billing the usage read above.
    let now = s.emu.advance_clock(Duration::ZERO).await?;
    let to_end = (sub.period_end - now).to_std().context("the period ends in the future")?;
    s.emu.advance_clock(to_end + Duration::from_secs(3600)).await?;
    let invoices = s.client.list_invoices(&InvoiceQuery::default()).await?;
    ensure!(invoices.data.len() == 1, "{invoices:?}");
    let invoice = &invoices.data[0];
    let line = invoice.lines.iter().find(|l| l.meter == Meter::LedgerLines).context("a ledger_lines line")?;
    ensure!(line.quantity == used, "invoiced {} ledger lines, used {used}", line.quantity);
    ensure!(&s.client.get_invoice(&invoice.id).await? == invoice);
    Ok(())
}

async fn step_11(s: &mut Sink) -> Result<()> {
    let e = s.expect_err("not_found", s.client.get_item("itm_doesnotexist").await)?;
    ensure!(e.status() == Some(404));
    let zero = s.client.create_movement(CreateMovement::receipt(&s.items[1], &s.wh_a, 0)).await;
    let e = s.expect_err("validation", zero)?;
    ensure!(!e.errors().is_empty(), "field problems: {e:?}");

    // Precondition required: the SDK always sends If-Match, so only a raw PATCH can omit it.
    let raw = reqwest::Client::new()
        .patch(format!("{}/v1/items/{}", s.emu.base_url(), s.items[1]))
        .bearer_auth(&s.key)
        .header("content-type", "application/json")
        .body(r#"{"name": "no If-Match"}"#)
        .send()
        .await?;
    let status = raw.status().as_u16();
    let problem: serde_json::Value = raw.json().await?;
    ensure!(status == 428 && problem["code"] == "precondition_required", "{status} {problem}");
    s.seen.insert("precondition_required");

    // A connection error: a client pointed at a closed port, no retries.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let nowhere = Client::builder()
        .base_url(format!("http://127.0.0.1:{closed}"))
        .api_key("sk_test_nowhere")
        .max_retries(0)
        .build()?;
    let e = s.expect_err("connection", nowhere.get_sandbox().await)?;
    ensure!(e.attempts() == 1, "{e:?}");

    let missing: Vec<_> = ERROR_CLASSES.iter().filter(|c| !s.seen.contains(*c)).collect();
    ensure!(missing.is_empty(), "error classes never seen: {missing:?}");
    Ok(())
}

async fn step_12(s: &mut Sink) -> Result<()> {
    use std::sync::{Arc, Mutex};
    let (client, created) = s.emu.create_sandbox_with(&CreateSandbox::default()).await?;
    let scoped =
        |action: FaultAction, method: &str, prefix: &str, status: Option<u16>, times: u32| -> Result<FaultSpec> {
            Ok(FaultSpec {
                delay_ms: (action == FaultAction::Delay).then_some(2000),
                action,
                method: Some(method.to_owned()),
                path_prefix: Some(prefix.to_owned()),
                status,
                sandbox_id: Some(created.id.clone()),
                times: times.try_into()?,
            })
        };
    let quick = client.with_options(twh::RequestOptions::new().timeout(Duration::from_millis(300)).max_retries(0))?;
    s.emu.inject_fault(&scoped(FaultAction::Delay, "GET", "/v1/sandbox", None, 1)?).await?;
    let started = std::time::Instant::now();
    let e = quick.get_sandbox().await.err().context("a 2 s call with a 0.3 s timeout")?;
    ensure!(matches!(e, Error::Timeout { attempts: 1, .. }), "{e:?}");
    ensure!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(2100)).await; // the delayed request ends first
    ensure!(client.get_sandbox().await?.id == created.id, "the original client answers");

    let seen: Arc<Mutex<Vec<(bool, twh::Attempt)>>> = Arc::default();
    let (a, b) = (seen.clone(), seen.clone());
    let hooked = client.with_options(
        twh::RequestOptions::new()
            .on_request(move |x| a.lock().expect("lock").push((true, x.clone())))
            .on_response(move |x| b.lock().expect("lock").push((false, x.clone()))),
    )?;
    s.emu.inject_fault(&scoped(FaultAction::ErrorBeforeCommit, "POST", "/v1/items", Some(503), 2)?).await?;
    let item = hooked.create_item(CreateItem::builder().sku("CALL-1").name("Called").low_stock_threshold(7)).await?;
    let seen = seen.lock().expect("lock").clone();
    let requests: Vec<_> = seen.iter().filter(|(r, _)| *r).map(|(_, a)| a).collect();
    let responses: Vec<_> = seen.iter().filter(|(r, _)| !*r).map(|(_, a)| a.status).collect();
    ensure!(requests.iter().map(|a| a.attempt).collect::<Vec<_>>() == [1, 2, 3], "{requests:?}");
    ensure!(requests.iter().map(|a| a.idempotency_key.clone()).collect::<BTreeSet<_>>().len() == 1, "one key");
    ensure!(responses == [Some(503), Some(503), Some(201)], "{responses:?}");

    s.emu.inject_fault(&scoped(FaultAction::ErrorAfterCommit, "PATCH", "/v1/items/", Some(500), 1)?).await?;
    let renamed = client.update_item(&item.id, item.etag(), UpdateItem::builder().name("Called again")).await?;
    ensure!(renamed.version == item.version + 1, "one change: {} -> {}", item.version, renamed.version);
    ensure!(renamed.low_stock_threshold == Some(7), "kept");
    let cleared = client
        .update_item(&item.id, renamed.etag(), UpdateItem::builder().low_stock_threshold(twh::Patch::Clear))
        .await?;
    ensure!(cleared.low_stock_threshold.is_none(), "cleared");
    let kept = client.update_item(&item.id, cleared.etag(), UpdateItem::builder().name("Kept")).await?;
    ensure!(kept.low_stock_threshold.is_none() && kept.name == "Kept", "a field left out is kept");
    Ok(())
}

async fn step_13(s: Sink) -> Result<()> {
    let base = s.emu.base_url();
    s.receiver.stop().await?;
    s.emu.shutdown().await;
    let after = Client::builder().base_url(base).api_key("sk_test_gone").max_retries(0).build()?;
    ensure!(matches!(after.get_sandbox().await, Err(Error::Connection { .. })), "the emulator no longer answers");
    Ok(())
}
