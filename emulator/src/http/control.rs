//! The emulator's own control plane (`/_emulator`, docs/guide/emulator.md). (The served OpenAPI document is
//! `http/docs.rs`'s: the document describes these handlers' types, so serving it from here made
//! this module and the OpenAPI module import each other.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, Json, Query};
use super::faults::{Fault, FaultSpec};
use crate::clock::Timestamp;
use crate::dispatch::DispatchStats;
use crate::domain::registry::StateExport;

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

/// `POST /_emulator/clock/advance`: moves the clock and fires what became due, in time order.
pub async fn advance(State(s): St, _: Admin, body: Json<AdvanceClock>) -> ApiResult<axum::Json<ClockState>> {
    let target = match (body.value.seconds, body.value.to) {
        (Some(secs), None) if (0..=ADVANCE_SECONDS_MAX).contains(&secs) => s.world.clock.now().plus_seconds(secs),
        (Some(_), None) => return Err(ApiError::field("seconds", format!("must be in 0..={ADVANCE_SECONDS_MAX}"))),
        (None, Some(to)) if to >= s.world.clock.now() => to,
        (None, Some(_)) => return Err(ApiError::field("to", "must not be in the past (the clock only moves forward)")),
        _ => return Err(ApiError::field("seconds", "give exactly one of `seconds` or `to`")),
    };
    s.advance_clock_to(target).await;
    Ok(axum::Json(clock_state(&s)))
}

/// `GET /_emulator/faults`
pub async fn list_faults(State(s): St, _: Admin) -> axum::Json<FaultList> {
    axum::Json(FaultList { data: s.faults.list() })
}

/// `POST /_emulator/faults`
pub async fn add_fault(State(s): St, _: Admin, body: Json<FaultSpec>) -> ApiResult {
    let fault = s.faults.add(body.value)?;
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
