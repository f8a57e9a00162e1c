//! The emulator's own control plane (`/_emulator`, API.md §5). (The served OpenAPI document is
//! `http/docs.rs`'s: the document describes these handlers' types, so serving it from here made
//! this module and the OpenAPI module import each other.)

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, Json, Query};
use super::faults::{Fault, FaultSpec};
use crate::clock::Timestamp;
use crate::dispatch::{DispatchStats, SandboxAdvance};
use crate::domain::DomainError;
use crate::domain::registry::{StateExport, Tenant};

type St = State<Arc<AppState>>;

/// `GET /_emulator/health`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Always `ok` when it answers.
    pub status: String,
    /// Emulator version.
    pub version: String,
    /// Emulator time.
    pub now: Timestamp,
    /// The webhook dispatcher's counters and bounds.
    pub webhooks: DispatchStats,
}

/// The emulator clock.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ClockState {
    /// Emulator time.
    pub now: Timestamp,
    /// How far ahead of the system clock it runs, in seconds.
    pub offset_seconds: f64,
}

/// One sandbox's clock: the emulator clock plus the sandbox's own offset.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SandboxClockState {
    /// The sandbox (`sbx_…`).
    pub sandbox_id: String,
    /// The sandbox's time.
    pub now: Timestamp,
    /// How far the sandbox's clock runs ahead of the system clock (in deterministic mode, of
    /// the emulator's start), in seconds: the emulator clock's offset plus the sandbox's own.
    pub offset_seconds: f64,
    /// How far the sandbox's clock runs ahead of the emulator clock, in seconds (only grows).
    pub sandbox_offset_seconds: f64,
}

/// `POST /_emulator/clock/advance`: exactly one of `seconds` or `to`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds to move forward (0..=315360000, ten years).
    #[serde(default)]
    #[schemars(range(min = 0, max = 315_360_000))]
    pub seconds: Option<i64>,
    /// A time to move forward to (not in the past).
    #[serde(default)]
    pub to: Option<Timestamp>,
}

/// Longest single clock advance, in seconds (ten years).
pub const ADVANCE_SECONDS_MAX: i64 = 10 * 365 * 24 * 3600;

/// The armed faults.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FaultList {
    /// In order of arming.
    pub data: Vec<Fault>,
}

fn clock_state(s: &AppState) -> ClockState {
    ClockState { now: s.world.clock.now(), offset_seconds: s.world.clock.offset_micros() as f64 / 1e6 }
}

/// `GET /_emulator/health`
pub async fn health(State(s): St) -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        now: s.world.clock.now(),
        webhooks: s.dispatcher.stats(),
    })
}

/// `GET /_emulator/clock`
pub async fn clock(State(s): St, _: Admin, q: Query) -> ApiResult<axum::Json<ClockState>> {
    q.finish()?;
    Ok(axum::Json(clock_state(&s)))
}

/// The time an advance from `now` goes to, after checking the body.
fn advance_target(body: &AdvanceClock, now: Timestamp) -> Result<Timestamp, ApiError> {
    match (body.seconds, body.to) {
        (Some(secs), None) if (0..=ADVANCE_SECONDS_MAX).contains(&secs) => Ok(now.plus_seconds(secs)),
        (Some(_), None) => Err(ApiError::field("seconds", format!("must be in 0..={ADVANCE_SECONDS_MAX}"))),
        (None, Some(to)) if to >= now => Ok(to),
        (None, Some(_)) => Err(ApiError::field("to", "must not be in the past (the clock only moves forward)")),
        _ => Err(ApiError::field("seconds", "give exactly one of `seconds` or `to`")),
    }
}

/// `POST /_emulator/clock/advance`: moves the clock (every sandbox's) and fires what became due,
/// in time order.
pub async fn advance(State(s): St, _: Admin, body: Json<AdvanceClock>) -> ApiResult<axum::Json<ClockState>> {
    let target = advance_target(&body.value, s.world.clock.now())?;
    s.advance_clock_to(target).await;
    Ok(axum::Json(clock_state(&s)))
}

fn sandbox(s: &AppState, id: &str) -> Result<Arc<Tenant>, ApiError> {
    s.world.tenant(id).ok_or_else(|| ApiError::from(DomainError::not_found("sandbox")))
}

fn sandbox_clock_state(s: &AppState, tenant: &Tenant) -> SandboxClockState {
    let own = tenant.clock_offset_micros();
    SandboxClockState {
        sandbox_id: tenant.id.clone(),
        now: tenant.now(&s.world.clock),
        offset_seconds: s.world.clock.offset_micros().saturating_add(own) as f64 / 1e6,
        sandbox_offset_seconds: own as f64 / 1e6,
    }
}

/// `GET /_emulator/sandboxes/{id}/clock`
pub async fn sandbox_clock(
    State(s): St,
    _: Admin,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<axum::Json<SandboxClockState>> {
    q.finish()?;
    let tenant = sandbox(&s, &id)?;
    Ok(axum::Json(sandbox_clock_state(&s, &tenant)))
}

/// `POST /_emulator/sandboxes/{id}/clock/advance`: moves this sandbox's clock only and fires what
/// became due in it, in time order.
pub async fn advance_sandbox_clock(
    State(s): St,
    _: Admin,
    Path(id): Path<String>,
    body: Json<AdvanceClock>,
) -> ApiResult<axum::Json<SandboxClockState>> {
    let tenant = sandbox(&s, &id)?;
    advance_target(&body.value, tenant.now(&s.world.clock))?;
    let how = match (body.value.seconds, body.value.to) {
        (Some(seconds), _) => SandboxAdvance::By(seconds),
        (None, to) => SandboxAdvance::To(to.unwrap_or_default()),
    };
    s.dispatcher.advance_sandbox(&tenant, how).await;
    Ok(axum::Json(sandbox_clock_state(&s, &tenant)))
}

/// `GET /_emulator/faults`
pub async fn list_faults(State(s): St, _: Admin) -> axum::Json<FaultList> {
    axum::Json(FaultList { data: s.faults.list() })
}

/// `POST /_emulator/faults`
pub async fn add_fault(State(s): St, _: Admin, body: Json<FaultSpec>) -> ApiResult {
    let fault = s.faults.add(body.value, &s.world)?;
    Ok((StatusCode::CREATED, axum::Json(fault)).into_response())
}

/// `DELETE /_emulator/faults`
pub async fn clear_faults(State(s): St, _: Admin) -> StatusCode {
    s.faults.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_emulator/state`
pub async fn export_state(State(s): St, _: Admin) -> axum::Json<StateExport> {
    axum::Json(s.world.export())
}

/// `PUT /_emulator/state`
pub async fn import_state(State(s): St, _: Admin, body: Json<StateExport>) -> ApiResult<StatusCode> {
    s.world.import(body.value)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_emulator/reset`
pub async fn reset(State(s): St, _: Admin) -> StatusCode {
    s.world.reset();
    s.faults.clear();
    StatusCode::NO_CONTENT
}
