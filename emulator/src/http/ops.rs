//! Handlers of reconciliations (`/v1/reconciliations`) and background jobs (`/v1/jobs`).

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiResult;
use super::extract::{Auth, Json, OptionalKey, Query, wants_csv};
use super::pipeline::{self, FaultDelay, stored_json};
use super::respond::{csv_response, page};
use crate::domain::jobs::CreateJob;
use crate::domain::ledger::EventType;
use crate::domain::reconcile::{CreateReconciliation, ReconciliationList, ReconciliationTrigger};

type St = State<Arc<AppState>>;
type Delay = Option<Extension<FaultDelay>>;

/// `POST /v1/reconciliations`: runs one now (it is `completed` when answered).
pub async fn create_reconciliation(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<CreateReconciliation>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let location = body.value.location_id.as_deref();
        let run = st.reconciliations.run(&st.ledger, location, ReconciliationTrigger::Manual, now)?;
        let data = serde_json::to_value(&run).unwrap_or_default();
        st.ledger.emit_snapshot(EventType::ReconciliationCompleted, data, now);
        let path = format!("/v1/reconciliations/{}", run.id);
        Ok(stored_json(StatusCode::CREATED, &run, None, Some(path)))
    })
    .await
}

/// `GET /v1/reconciliations`
pub async fn list_reconciliations(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let window = q.window("rec", &st.ledger.tag)?;
    q.finish()?;
    let p = st.reconciliations.list(window);
    Ok(axum::Json(page(p, "rec", &st.ledger.tag, |data, next_cursor| ReconciliationList { data, next_cursor }))
        .into_response())
}

/// `GET /v1/reconciliations/{id}` (JSON, or its discrepancies as CSV with `Accept: text/csv`)
pub async fn get_reconciliation(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let run = {
        let st = auth.tenant.state.lock();
        st.reconciliations.get(&st.ledger.tag, &id)?.clone()
    };
    if wants_csv(&headers) {
        return Ok(csv_response(run.to_csv(), &format!("{}.csv", run.id)));
    }
    Ok(axum::Json(run).into_response())
}

/// `POST /v1/jobs`: checks and queues an import; 202 with the job.
pub async fn create_job(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<CreateJob>,
) -> Response {
    let response = pipeline::write(&s, &auth, key, body.fingerprint, d.map(|Extension(d)| d), |st, now| {
        let job = st.jobs.submit(&st.ledger.tag, body.value, now)?;
        let path = format!("/v1/jobs/{}", job.id);
        Ok(stored_json(StatusCode::ACCEPTED, &job, None, Some(path)))
    })
    .await;
    if response.status() == StatusCode::ACCEPTED {
        s.jobs.wake();
    }
    response
}

/// `GET /v1/jobs/{id}`
pub async fn get_job(auth: Auth, Path(id): Path<String>, q: Query) -> ApiResult {
    q.finish()?;
    let st = auth.tenant.state.lock();
    Ok(axum::Json(st.jobs.get(&st.ledger.tag, &id)?.clone()).into_response())
}
