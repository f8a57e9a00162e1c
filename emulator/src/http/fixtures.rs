//! `POST /_emulator/fixtures`: sandboxes with known contents and keys (API.md §5; the rules are
//! the domain's, [`crate::domain::fixtures`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, Json};
use crate::domain::fixtures::{self, Fixtures};

/// `POST /_emulator/fixtures`: 201 with the sandboxes and their keys, or nothing created.
pub async fn load(State(s): State<Arc<AppState>>, _: Admin, body: Json<Fixtures>) -> ApiResult {
    let world = s.world.clone();
    // A large document is thousands of ledger operations: off the request threads.
    let loaded = tokio::task::spawn_blocking(move || fixtures::load(&world, body.value))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    s.dispatcher.wake(); // the fixtures' endpoints have deliveries waiting
    Ok((StatusCode::CREATED, axum::Json(loaded)).into_response())
}
