//! Handlers of plans, the subscription, usage and invoices (`/v1/plans`, `/v1/subscription`,
//! `/v1/usage`, `/v1/usage/export`, `/v1/invoices`).
//!
//! The usage export streams: each chunk of [`EXPORT_CHUNK_ROWS`] rows is rendered under the
//! tenant lock and sent before the next is read, so exporting a period of millions of requests
//! holds neither the lock nor the whole document at once. It covers the rows present when the
//! request arrived.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Auth, Json, OptionalKey, Query, wants_csv};
use super::pipeline::{self, FaultDelay, stored_json};
use super::respond::{csv_response, page};
use crate::clock::Timestamp;
use crate::domain::billing::*;
use crate::domain::csv::csv_record;
use crate::domain::registry::Tenant;

type St = State<Arc<AppState>>;
type Delay = Option<Extension<FaultDelay>>;

/// Rows rendered per chunk of a usage export.
pub const EXPORT_CHUNK_ROWS: usize = 4096;

/// The format of a usage export.
///
/// - `json`: `{period, period_start, period_end, data: [...]}`.
/// - `csv`: Header `time,meter,quantity,request_id` (API.md's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Json,
    Csv,
}

/// `period=current|YYYY-MM` (default current) → the period's start; a future one is refused.
fn period(q: &mut Query, now: Timestamp) -> Option<Timestamp> {
    let current = month_start(now);
    q.parsed("period", "`current` or a past or current month as YYYY-MM", |v| match v {
        "current" => Some(current),
        other => parse_period(other).filter(|s| *s <= current),
    })
    .or(Some(current))
}

fn forgotten(usage: &Usage, start: Timestamp, period: &str) -> Result<(), ApiError> {
    if usage.forgotten(start) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The usage rows of {period} are no longer kept (the last {PERIODS_KEPT} periods are)."),
        ));
    }
    Ok(())
}

/// `GET /v1/plans`
pub async fn list_plans(State(s): St, _: Auth, q: Query) -> ApiResult {
    q.finish()?;
    Ok(axum::Json(PlanList { data: s.world.settings.plans.all() }).into_response())
}

fn subscription(plan: crate::domain::model::Plan, now: Timestamp) -> Subscription {
    Subscription { plan, period_start: month_start(now), period_end: next_month(now) }
}

/// `GET /v1/subscription`
pub async fn get_subscription(State(s): St, auth: Auth, q: Query) -> ApiResult {
    q.finish()?;
    let plan = auth.tenant.state.lock().sandbox.plan;
    Ok(axum::Json(subscription(plan, auth.tenant.now(&s.world.clock))).into_response())
}

/// `POST /v1/subscription`: the new plan's quotas apply at once.
pub async fn update_subscription(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<UpdateSubscription>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        st.sandbox.plan = body.value.plan;
        Ok(stored_json(StatusCode::OK, &subscription(st.sandbox.plan, now), None, None))
    })
    .await
}

/// `GET /v1/usage`
pub async fn get_usage(State(s): St, auth: Auth, mut q: Query) -> ApiResult {
    let now = auth.tenant.now(&s.world.clock);
    let start = period(&mut q, now);
    q.finish()?;
    let start = start.unwrap_or(month_start(now));
    let label = period_label(start);
    let st = auth.tenant.state.lock();
    forgotten(&st.usage, start, &label)?;
    let totals = st.usage.totals(start);
    let plan = s.world.settings.plans.get(st.sandbox.plan);
    let meters = Meter::ALL
        .into_iter()
        .map(|m| MeterUsage { meter: m, quantity: totals.get(m), quota: plan.quotas.get(m), hard: plan.hard_quotas })
        .collect();
    let report =
        UsageReport { period: label, period_start: start, period_end: next_month(start), plan: plan.id, meters };
    Ok(axum::Json(report).into_response())
}

enum Phase {
    Head,
    Rows,
    Done,
}

struct Export {
    tenant: Arc<Tenant>,
    start: Timestamp,
    end_row: usize,
    cursor: ExportCursor,
    csv: bool,
    first: bool,
    phase: Phase,
}

impl Export {
    /// The next piece of the body, or `None` at the end.
    fn next_chunk(&mut self) -> Option<Bytes> {
        let mut out = String::new();
        match self.phase {
            Phase::Head => {
                if self.csv {
                    csv_record(&mut out, &["time", "meter", "quantity", "request_id"]);
                } else {
                    out.push_str(&format!(
                        "{{\"period\":\"{}\",\"period_start\":\"{}\",\"period_end\":\"{}\",\"data\":[",
                        period_label(self.start),
                        self.start.to_rfc3339(),
                        next_month(self.start).to_rfc3339()
                    ));
                }
                self.phase = Phase::Rows;
            }
            Phase::Rows => {
                let more = {
                    let st = self.tenant.state.lock();
                    match st.usage.period(self.start) {
                        None => false,
                        Some(p) => p.visit(&mut self.cursor, self.end_row, EXPORT_CHUNK_ROWS, |at, id, q| {
                            for meter in Meter::ALL {
                                let quantity = q.get(meter);
                                if quantity == 0 {
                                    continue;
                                }
                                if self.csv {
                                    csv_record(
                                        &mut out,
                                        &[at.to_rfc3339().as_str(), meter.as_str(), quantity.to_string().as_str(), id],
                                    );
                                } else {
                                    if !self.first {
                                        out.push(',');
                                    }
                                    self.first = false;
                                    let record = UsageRecord { time: at, request_id: id.to_owned(), meter, quantity };
                                    out.push_str(&serde_json::to_string(&record).unwrap_or_default());
                                }
                            }
                        }),
                    }
                };
                if !more {
                    if !self.csv {
                        out.push_str("]}");
                    }
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => return None,
        }
        Some(Bytes::from(out))
    }
}

/// `GET /v1/usage/export?period=&format=csv|json`: one row per metered unit group and meter.
pub async fn export_usage(State(s): St, auth: Auth, mut q: Query) -> ApiResult {
    let now = auth.tenant.now(&s.world.clock);
    let start = period(&mut q, now);
    let format = q.enumeration::<ExportFormat>("format");
    q.finish()?;
    let start = start.unwrap_or(month_start(now));
    let label = period_label(start);
    let end_row = {
        let st = auth.tenant.state.lock();
        forgotten(&st.usage, start, &label)?;
        st.usage.period(start).map_or(0, PeriodUsage::row_count)
    };
    let csv = format == Some(ExportFormat::Csv);
    let export = Export {
        tenant: auth.tenant.clone(),
        start,
        end_row,
        cursor: ExportCursor::default(),
        csv,
        first: true,
        phase: Phase::Head,
    };
    let stream = futures::stream::unfold(export, |mut e| async move {
        let chunk = e.next_chunk()?;
        Some((Ok::<_, Infallible>(chunk), e))
    });
    let body = Body::from_stream(stream);
    if csv {
        let mut r = csv_response(String::new(), &format!("usage-{label}.csv"));
        *r.body_mut() = body;
        return Ok(r);
    }
    let mut r = Response::new(body);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `GET /v1/invoices`
pub async fn list_invoices(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let window = q.window("inv", &st.billing.tag)?;
    q.finish()?;
    let p = st.billing.invoices(window);
    Ok(axum::Json(page(p, "inv", &st.billing.tag, |data, next_cursor| InvoiceList { data, next_cursor }))
        .into_response())
}

/// `GET /v1/invoices/{id}` (JSON, or CSV with `Accept: text/csv`)
pub async fn get_invoice(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let invoice = auth.tenant.state.lock().billing.invoice(&id)?.clone();
    if wants_csv(&headers) {
        return Ok(csv_response(invoice.to_csv(), &format!("{}.csv", invoice.id)));
    }
    Ok(axum::Json(invoice).into_response())
}
