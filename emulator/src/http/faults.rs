//! Injected faults (`POST /_emulator/faults`): how users prove their retry logic is exactly-once.
//!
//! The fault layer sits outside the idempotency pipeline. `error_before_commit` answers without
//! running the request. `error_after_commit` and `drop_connection_after_commit` run it (so the
//! change and its idempotency record commit) and then replace the answer with an error, or drop
//! the connection with no answer at all; a retry with the same key receives the original
//! result. `delay` waits before running (after reserving the idempotency key, so a concurrent
//! duplicate sees `idempotency_key_in_use`). Faults never apply to `/_emulator` or `/openapi`.
//!
//! A fault with a `sandbox_id` matches only requests authenticated to that sandbox (the
//! metering step, which runs first, has put the request's admission in its extensions), so tests
//! sharing one emulator can each break their own sandbox. Arming one for a sandbox that does not
//! exist is 404 `not_found` naming `sandbox_id`, like `corrupt-stock-level`'s `tenant_id` and the
//! per-sandbox clock routes: the request is well formed, what it names is missing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::pipeline::FaultDelay;
use crate::domain::DomainError;
use crate::domain::model::FieldError;
use crate::domain::registry::World;
use crate::ids::Stream;

/// Most faults armed at once.
pub const FAULT_COUNT_MAX: usize = 100;
/// Most times one fault fires.
pub const FAULT_TIMES_MAX: u32 = 10_000;
/// Longest injected delay, in milliseconds.
pub const FAULT_DELAY_MS_MAX: u64 = 60_000;

/// What a fault does.
///
/// - `error_before_commit`: Answer with an error; nothing runs.
/// - `error_after_commit`: Run and commit, then answer with an error.
/// - `delay`: Wait `delay_ms`, then run.
/// - `drop_connection_after_commit`: Run and commit, then close the connection with no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    ErrorBeforeCommit,
    ErrorAfterCommit,
    Delay,
    DropConnectionAfterCommit,
}

impl FaultAction {
    /// Its name, as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultAction::ErrorBeforeCommit => "error_before_commit",
            FaultAction::ErrorAfterCommit => "error_after_commit",
            FaultAction::Delay => "delay",
            FaultAction::DropConnectionAfterCommit => "drop_connection_after_commit",
        }
    }
}

/// `POST /_emulator/faults`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Only this HTTP method (any if absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this (any if absent).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Only requests authenticated to this sandbox (`sbx_…`; any if absent).
    #[serde(default)]
    pub sandbox_id: Option<String>,
    /// What to do.
    pub action: FaultAction,
    /// Status of injected errors (400..=599, default 500).
    #[serde(default)]
    #[schemars(range(min = 400, max = 599))]
    pub status: Option<u16>,
    /// For `delay`: milliseconds (at most 60000).
    #[serde(default)]
    #[schemars(range(max = 60_000))]
    pub delay_ms: Option<u64>,
    /// How many matching requests it applies to (1..=10000).
    #[schemars(range(min = 1, max = 10_000))]
    pub times: u32,
}

/// An armed fault.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Fault {
    /// `flt_…`
    pub id: String,
    /// Method filter.
    pub method: Option<String>,
    /// Path prefix filter.
    pub path_prefix: Option<String>,
    /// Sandbox filter: only requests authenticated to it.
    pub sandbox_id: Option<String>,
    /// What it does.
    pub action: FaultAction,
    /// Status of injected errors.
    pub status: u16,
    /// Delay in milliseconds.
    pub delay_ms: u64,
    /// How many more requests it applies to (the `times` it was armed with, counted down).
    pub times: u32,
    /// The same count as `times`, under its earlier name.
    pub remaining: u32,
}

/// The armed faults, in order of arming.
#[derive(Debug, Default)]
pub struct Faults {
    list: Mutex<Vec<Fault>>,
    armed: AtomicBool,
}

impl Faults {
    /// Arms a fault (its id drawn from `world`'s generator; its sandbox, if any, must exist
    /// there).
    pub fn add(&self, spec: FaultSpec, world: &World) -> Result<Fault, DomainError> {
        if let Some(id) = spec.sandbox_id.as_deref().filter(|id| world.tenant(id).is_none()) {
            let mut e = DomainError::not_found("sandbox");
            e.errors.push(FieldError::new("sandbox_id", format!("no sandbox {id}")));
            return Err(e);
        }
        let mut errors = Vec::new();
        let status = spec.status.unwrap_or(500);
        if !(400..=599).contains(&status) {
            errors.push(FieldError::new("status", "must be in 400..=599"));
        }
        if spec.times == 0 || spec.times > FAULT_TIMES_MAX {
            errors.push(FieldError::new("times", format!("must be in 1..={FAULT_TIMES_MAX}")));
        }
        let delay_ms = spec.delay_ms.unwrap_or(0);
        if delay_ms > FAULT_DELAY_MS_MAX || (spec.action == FaultAction::Delay && spec.delay_ms.is_none()) {
            errors.push(FieldError::new("delay_ms", format!("a delay needs delay_ms in 0..={FAULT_DELAY_MS_MAX}")));
        }
        let method = spec.method.map(|m| m.to_ascii_uppercase());
        if method.as_deref().is_some_and(|m| Method::from_bytes(m.as_bytes()).is_err() || m.is_empty()) {
            errors.push(FieldError::new("method", "must be an HTTP method"));
        }
        let mut list = self.list.lock();
        if list.len() >= FAULT_COUNT_MAX {
            errors.push(FieldError::new("times", format!("at most {FAULT_COUNT_MAX} faults may be armed")));
        }
        if !errors.is_empty() {
            return Err(DomainError::validation(errors));
        }
        let fault = Fault {
            id: world.ids.random(Stream::Control, "flt_", 16),
            method,
            path_prefix: spec.path_prefix,
            sandbox_id: spec.sandbox_id,
            action: spec.action,
            status,
            delay_ms,
            times: spec.times,
            remaining: spec.times,
        };
        list.push(fault.clone());
        self.armed.store(true, Ordering::Release);
        Ok(fault)
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.list.lock().clear();
        self.armed.store(false, Ordering::Release);
    }

    /// The armed faults.
    pub fn list(&self) -> Vec<Fault> {
        self.list.lock().clone()
    }

    /// Takes one firing of the first fault matching this request.
    fn take(&self, method: &Method, path: &str, sandbox_id: Option<&str>) -> Option<Fault> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut list = self.list.lock();
        let i = list.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m == method.as_str())
                && f.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
                && f.sandbox_id.as_deref().is_none_or(|s| sandbox_id == Some(s))
        })?;
        let fault = list[i].clone();
        list[i].remaining -= 1;
        list[i].times = list[i].remaining;
        if list[i].remaining == 0 {
            list.remove(i);
        }
        if list.is_empty() {
            self.armed.store(false, Ordering::Release);
        }
        Some(fault)
    }
}

/// Marks a response whose connection must be dropped instead of answered.
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

fn injected(f: &Fault, when: &str) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    ApiError::new(status, "injected_fault", format!("Fault {} injected {when} commit.", f.id)).into_response()
}

/// What the fault step decided for a request, before running it.
#[derive(Debug, Default)]
pub struct Plan {
    /// Wait this long before running it.
    pub sleep: Option<Duration>,
    /// Replace its answer after it ran with this fault's (boxed: rare, and held across the run).
    pub after: Option<Box<Fault>>,
}

/// The fault step, before the handler: takes the fault armed for this request, if any. Answers
/// at once (`error_before_commit`), or says what to do around the handler (see the module docs).
pub fn before(state: &AppState, req: &mut Request) -> Result<Plan, Response> {
    let path = req.uri().path();
    if path.starts_with("/_emulator") || path.starts_with("/openapi") {
        return Ok(Plan::default());
    }
    let sandbox_id = req.extensions().get::<super::admission::Admission>().map(|a| a.tenant.id.as_str());
    let Some(fault) = state.faults.take(req.method(), path, sandbox_id) else { return Ok(Plan::default()) };
    super::journal::note_fault(&fault.id, fault.action.as_str());
    match fault.action {
        FaultAction::ErrorBeforeCommit => Err(injected(&fault, "before")),
        FaultAction::Delay => {
            let delay = Duration::from_millis(fault.delay_ms);
            if req.method() == Method::POST && req.headers().contains_key(super::names::IDEMPOTENCY_KEY) {
                // The write waits after reserving its key (see `pipeline`).
                req.extensions_mut().insert(FaultDelay(delay));
                Ok(Plan::default())
            } else {
                Ok(Plan { sleep: Some(delay), after: None })
            }
        }
        FaultAction::ErrorAfterCommit | FaultAction::DropConnectionAfterCommit => {
            Ok(Plan { sleep: None, after: Some(Box::new(fault)) })
        }
    }
}

/// The fault step, after the handler ran (and committed): the answer that replaces its own.
pub fn after(fault: &Fault) -> Response {
    if matches!(fault.action, FaultAction::DropConnectionAfterCommit) {
        let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
        r.extensions_mut().insert(DropConnection);
        return r;
    }
    injected(fault, "after")
}

/// `POST /_emulator/faults/corrupt-stock-level`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CorruptStockLevel {
    /// The sandbox (`sbx_…`).
    pub tenant_id: String,
    /// The item.
    pub item_id: String,
    /// The location (the pair must have ledger lines).
    pub location_id: String,
    /// Added to what the snapshot reads (non-zero, at most 10^15 in magnitude).
    #[schemars(range(min = -1_000_000_000_000_000i64, max = 1_000_000_000_000_000i64))]
    pub delta: i64,
}

/// A skewed snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct CorruptedStockLevel {
    /// The sandbox.
    pub tenant_id: String,
    /// The item.
    pub item_id: String,
    /// The location.
    pub location_id: String,
    /// The skew added now.
    pub delta: i64,
    /// What the snapshot reads now.
    pub snapshot_quantity: i64,
    /// Σ delta of the pair's ledger lines (unchanged).
    pub ledger_quantity: i64,
}

/// `POST /_emulator/faults/corrupt-stock-level`: skews one snapshot, not the ledger, so that
/// reconciliation (and alerting on it) has exactly that pair to find.
pub async fn corrupt_stock_level(
    State(state): State<Arc<AppState>>,
    _: super::extract::Admin,
    body: super::extract::Json<CorruptStockLevel>,
) -> Result<axum::Json<CorruptedStockLevel>, ApiError> {
    let req = body.value;
    let tenant = state.world.tenant(&req.tenant_id).ok_or_else(|| {
        let mut e = DomainError::not_found("sandbox");
        e.errors.push(FieldError::new("tenant_id", "no such sandbox"));
        ApiError::from(e)
    })?;
    let mut guard = tenant.state.lock();
    let (movements, events) = (guard.ledger.movement_count(), guard.ledger.event_count());
    let (snapshot_quantity, ledger_quantity) = guard.ledger.corrupt_level(&req.item_id, &req.location_id, req.delta)?;
    let now = tenant.now(&state.world.clock);
    state.world.settle(&tenant.id, &mut guard, movements, events, now);
    Ok(axum::Json(CorruptedStockLevel {
        tenant_id: req.tenant_id,
        item_id: req.item_id,
        location_id: req.location_id,
        delta: req.delta,
        snapshot_quantity,
        ledger_quantity,
    }))
}
