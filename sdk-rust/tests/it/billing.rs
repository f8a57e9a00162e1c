//! Plans, subscription, usage and its export, invoices, reconciliations and import jobs, through
//! the SDK against the emulator.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use twh::types::CreateMovement;
use twh::types::{self, JobStatus, Meter, Plan, ReconciliationStatus};
use twh::{Error, InvoiceQuery, ReconciliationQuery};

use crate::common::emu;

fn meter(report: &types::UsageReport, m: Meter) -> u64 {
    report.meters.iter().find(|u| u.meter == m).map(|u| u.quantity).expect("meter present")
}

#[tokio::test]
async fn plans_subscription_usage_and_the_month_end_invoice() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");

    let plans = client.list_plans().await.expect("plans");
    assert_eq!(plans.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), vec![Plan::Free, Plan::Pro]);
    assert!(plans[0].hard_quotas && !plans[1].hard_quotas);

    let (item, location) = emu::item_and_location(&client).await;
    client.create_movement(CreateMovement::receipt(&item.id, &location.id, 7)).await.expect("receipt");
    client.create_movement(CreateMovement::receipt(&item.id, &location.id, 3)).await.expect("receipt");

    let usage = client.get_usage(None).await.expect("usage");
    assert_eq!(meter(&usage, Meter::LedgerLines), 2);
    assert!(meter(&usage, Meter::ApiRequests) >= 5, "{usage:?}");
    assert_eq!(client.get_usage(Some("current")).await.expect("usage").period, usage.period);
    assert!(matches!(client.get_usage(Some("last month")).await, Err(Error::InvalidRequest(_))));

    // The export agrees with the report, in JSON and in CSV.
    let export = client.export_usage(None).await.expect("export");
    let lines: u64 = export.data.iter().filter(|r| r.meter == Meter::LedgerLines).map(|r| r.quantity).sum();
    assert_eq!(lines, 2);
    let csv = client.export_usage_csv(None).await.expect("csv");
    let mut rows = csv.lines();
    assert_eq!(rows.next(), Some("time,meter,quantity,request_id"));
    let csv_lines: u64 = rows
        .filter(|r| r.split(',').nth(1) == Some("ledger_lines"))
        .map(|r| r.split(',').nth(2).and_then(|q| q.parse::<u64>().ok()).expect("quantity"))
        .sum();
    assert_eq!(csv_lines, 2);

    let subscription = client.get_subscription().await.expect("subscription");
    assert_eq!(subscription.plan, Plan::Free);
    let upgraded = client.update_subscription(Plan::Pro).await.expect("upgrade");
    assert_eq!(upgraded.plan, Plan::Pro);
    assert_eq!(client.get_subscription().await.expect("subscription").plan, Plan::Pro);

    // Past the period's end, one invoice for it, agreeing with the usage to the unit.
    let now = emulator.advance_clock(Duration::ZERO).await.expect("clock advanced");
    let to_end = (subscription.period_end - now).to_std().expect("the period ends later");
    emulator.advance_clock(to_end + Duration::from_secs(3600)).await.expect("clock advanced");
    let invoices = client.list_invoices(&InvoiceQuery::default()).await.expect("invoices");
    assert_eq!(invoices.data.len(), 1, "{invoices:?}");
    let invoice = &invoices.data[0];
    assert_eq!(invoice.period_start, subscription.period_start);
    let line = invoice.lines.iter().find(|l| l.meter == Meter::LedgerLines).expect("ledger line");
    assert_eq!(line.quantity, 2);
    assert_eq!(&client.get_invoice(&invoice.id).await.expect("invoice"), invoice);
    let streamed: Vec<_> = client.list_invoices_stream(InvoiceQuery::default()).try_collect().await.expect("stream");
    assert_eq!(streamed, invoices.data);
    let csv = client.get_invoice_csv(&invoice.id).await.expect("csv");
    assert!(csv.lines().any(|l| l.contains(",ledger_lines,2,")), "{csv}");
    assert!(matches!(client.get_invoice_csv("inv_nope").await, Err(Error::NotFound(_))));
    assert!(matches!(client.get_invoice_csv("../v1/items").await, Err(Error::InvalidRequest(_))));
    emulator.shutdown().await;
}

#[tokio::test]
async fn reconciliation_and_an_import_job() {
    let emulator = emu::start().await;
    let client = emulator.create_sandbox().await.expect("sandbox");
    let (item, location) = emu::item_and_location(&client).await;
    client.create_movement(CreateMovement::receipt(&item.id, &location.id, 5)).await.expect("receipt");

    let run = client.create_reconciliation(types::CreateReconciliation { location_id: None }).await.expect("run");
    assert_eq!(run.status, ReconciliationStatus::Completed);
    assert!(run.checked >= 1 && run.discrepancies.is_empty(), "{run:?}");
    assert_eq!(client.get_reconciliation(&run.id).await.expect("get"), run);
    let csv = client.get_reconciliation_csv(&run.id).await.expect("csv");
    assert!(csv.starts_with("item_id,location_id,"), "{csv}");
    let page = client.list_reconciliations(&ReconciliationQuery::default()).await.expect("list");
    assert!(page.data.iter().any(|r| r.id == run.id));
    let all: Vec<_> = client
        .list_reconciliations_stream(ReconciliationQuery { limit: Some(1), cursor: None })
        .try_collect()
        .await
        .expect("stream");
    assert_eq!(all, page.data);

    // Two good rows and one bad (line 3: no such item); the good ones land.
    let data = format!(
        "type,item_id,location_id,quantity,reference\n\
         receipt,{i},{l},2,imp-1\n\
         receipt,itm_missing,{l},2,imp-2\n\
         receipt,{i},{l},4,imp-3\n",
        i = item.id,
        l = location.id
    );
    let job = client.import_movements_csv(&data).await.expect("job");
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let j = client.get_job(&job.id).await.expect("job");
        if !matches!(j.status, JobStatus::Queued | JobStatus::Running) || Instant::now() > deadline {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!(job.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![3]);
    let level = client.get_stock_level(&item.id, &location.id).await.expect("level");
    assert_eq!(level.quantity, 11);
    assert!(matches!(client.get_job("job_nope").await, Err(Error::NotFound(_))));
    emulator.shutdown().await;
}
