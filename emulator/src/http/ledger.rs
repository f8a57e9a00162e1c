//! Handlers of the product API (`/v1`): sandboxes, items, locations, movements, levels, events.

use std::sync::Arc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{
    Admin, Auth, Json, NoFields, OptionalIfMatch, OptionalKey, Query, RequiredIfMatch, RequiredKey,
    bodiless_fingerprint,
};
use super::pipeline::{self, FaultDelay, stored_json};
use super::respond::{ok_json, page};
use crate::clock::Timestamp;
use crate::domain::idempotency::Outcome;
use crate::domain::ledger::{CatalogueFilter, Catalogued, MovementFilter};
use crate::domain::model::*;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

type St = State<Arc<AppState>>;
type Delay = Option<Extension<FaultDelay>>;

fn delay(d: Delay) -> Option<FaultDelay> {
    d.map(|Extension(d)| d)
}

// ---- sandboxes ------------------------------------------------------------------------------

/// `POST /v1/sandboxes`
pub async fn create_sandbox(
    State(s): St,
    _: Admin,
    OptionalKey(key): OptionalKey,
    body: Json<CreateSandbox>,
) -> Response {
    let world = &s.world;
    pipeline::write_global(world, key, body.fingerprint, || {
        let created = world.create_sandbox(body.value)?;
        Ok(stored_json(StatusCode::CREATED, &created, None, Some("/v1/sandbox".to_owned())))
    })
}

/// `GET /v1/sandbox`
pub async fn get_sandbox(auth: Auth, q: Query) -> ApiResult {
    q.finish()?;
    let sandbox = auth.tenant.state.lock().sandbox.clone();
    Ok(axum::Json(sandbox).into_response())
}

/// `POST /v1/sandbox/reset`: empties the sandbox, keeps its keys.
pub async fn reset_sandbox(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<NoFields>,
) -> ApiResult {
    Ok(pipeline::write(&s, &auth, key, body.fingerprint, delay(d), |st, _| {
        st.reset(s.world.ids.tag());
        Ok(stored_json(StatusCode::OK, &st.sandbox, None, None))
    })
    .await)
}

/// `DELETE /v1/sandbox`
pub async fn delete_sandbox(State(s): St, auth: Auth) -> StatusCode {
    s.world.delete_sandbox(&auth.tenant.id);
    StatusCode::NO_CONTENT
}

/// `POST /v1/api-keys/roll`
pub async fn roll_key(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<NoFields>,
) -> ApiResult {
    let world = s.world.clone();
    let by = auth.grant.secret.clone();
    Ok(pipeline::write(&s, &auth, key, body.fingerprint, delay(d), move |st, _| {
        let rolled = world.roll_key(&st.sandbox.id, &by).ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This key is in its grace period after a roll: roll with the newest secret key.",
            )
        })?;
        Ok(stored_json(StatusCode::CREATED, &rolled, None, None))
    })
    .await)
}

// ---- items and locations ------------------------------------------------------------------

/// What the HTTP API adds to a catalogue kind: its collection's path and its list type. One row
/// a kind in the table below; the handlers after it serve both kinds.
pub trait Resource: Catalogued {
    /// `/v1/items`, `/v1/locations`.
    const PATH: &'static str;
    /// Whether its list takes a `kind` filter.
    const KIND_FILTER: bool;
    /// A page of it.
    type List: Serialize;
    /// A page of it from the entries and the next cursor.
    fn list(data: Vec<Self>, next_cursor: Option<String>) -> Self::List;
}

macro_rules! resource {
    ($($t:ident at $path:literal, kind filter $kind_filter:literal, listed as $list:ident;)*) => {$(
        impl Resource for $t {
            const PATH: &'static str = $path;
            const KIND_FILTER: bool = $kind_filter;
            type List = $list;
            fn list(data: Vec<$t>, next_cursor: Option<String>) -> $list { $list { data, next_cursor } }
        }
    )*};
}

resource! {
    Item at "/v1/items", kind filter false, listed as ItemList;
    Location at "/v1/locations", kind filter true, listed as LocationList;
}

/// `POST /v1/items`, `POST /v1/locations`
pub async fn create_entry<T: Resource>(
    State(s): St,
    auth: Auth,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<T::Create>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, delay(d), |st, now| {
        let entry = st.ledger.create::<T>(body.value, now)?;
        let location = format!("{}/{}", T::PATH, entry.id());
        Ok(stored_json(StatusCode::CREATED, &entry, Some(entry.version()), Some(location)))
    })
    .await
}

/// `GET /v1/items`, `GET /v1/locations`
pub async fn list_entries<T: Resource>(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let filter = CatalogueFilter {
        key: q.text(T::KIND.key),
        q: q.text("q"),
        status: q.enumeration("status"),
        kind: if T::KIND_FILTER { q.enumeration("kind") } else { None },
    };
    let window = q.window(T::KIND.prefix, &st.ledger.tag)?;
    q.finish()?;
    let p = st.ledger.list::<T>(&filter, window);
    Ok(axum::Json(page(p, T::KIND.prefix, &st.ledger.tag, T::list)).into_response())
}

/// `GET /v1/items/{id}`, `GET /v1/locations/{id}`
pub async fn get_entry<T: Resource>(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let entry = auth.tenant.state.lock().ledger.entry::<T>(&id)?.clone();
    Ok(ok_json(&headers, &entry, Some(entry.version())))
}

/// `PATCH /v1/items/{id}`, `PATCH /v1/locations/{id}`
pub async fn update_entry<T: Resource>(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    RequiredIfMatch(m): RequiredIfMatch,
    OptionalKey(key): OptionalKey,
    d: Delay,
    body: Json<T::Update>,
) -> Response {
    pipeline::write(&s, &auth, key, body.fingerprint, delay(d), |st, now| {
        let v = st.ledger.update::<T>(&id, body.value, &m, now)?;
        Ok(stored_json(StatusCode::OK, &v, Some(v.version()), None))
    })
    .await
}

/// `DELETE /v1/items/{id}`, `DELETE /v1/locations/{id}`: archives.
pub async fn archive_entry<T: Resource>(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    RequiredIfMatch(m): RequiredIfMatch,
    OptionalKey(key): OptionalKey,
    d: Delay,
    uri: Uri,
) -> Response {
    pipeline::write(&s, &auth, key, bodiless_fingerprint(&Method::DELETE, &uri), delay(d), |st, now| {
        let v = st.ledger.archive::<T>(&id, &m, now)?;
        Ok(stored_json(StatusCode::OK, &v, Some(v.version()), None))
    })
    .await
}

// ---- movements ------------------------------------------------------------------------------

/// `POST /v1/stock-movements`
pub async fn create_movement(
    State(s): St,
    auth: Auth,
    RequiredKey(key): RequiredKey,
    OptionalIfMatch(condition): OptionalIfMatch,
    d: Delay,
    body: Json<CreateMovement>,
) -> Response {
    pipeline::write(&s, &auth, Some(key), body.fingerprint, delay(d), |st, now| {
        Ok(Outcome::Movement(st.ledger.create_movement(body.value, condition.as_ref(), now)?))
    })
    .await
}

/// `POST /v1/stock-movements/batch`
pub async fn create_batch(
    State(s): St,
    auth: Auth,
    RequiredKey(key): RequiredKey,
    d: Delay,
    body: Json<CreateMovementBatch>,
) -> Response {
    pipeline::write(&s, &auth, Some(key), body.fingerprint, delay(d), |st, now| {
        let (first, count) = st.ledger.create_batch(body.value, now)?;
        Ok(Outcome::Batch { first, count })
    })
    .await
}

/// `POST /v1/stock-movements/{id}/reverse`
pub async fn reverse_movement(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
    RequiredKey(key): RequiredKey,
    d: Delay,
    body: Json<ReverseMovement>,
) -> Response {
    pipeline::write(&s, &auth, Some(key), body.fingerprint, delay(d), |st, now| {
        Ok(Outcome::Movement(st.ledger.reverse(&id, body.value, now)?))
    })
    .await
}

/// `GET /v1/stock-movements/{id}`
pub async fn get_movement(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let m = auth.tenant.state.lock().ledger.movement_by_id(&id)?;
    // A movement never changes: its version is always 1.
    Ok(ok_json(&headers, &m, Some(1)))
}

/// PUT, PATCH and DELETE of a movement: the ledger is append-only.
pub async fn movement_immutable() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "ledger_immutable",
        "Stock movements are immutable; reverse one with POST /v1/stock-movements/{id}/reverse.",
    )
    .with_header(header::ALLOW, "GET")
}

fn time(raw: &str) -> Option<Timestamp> {
    Timestamp::parse(raw)
}

/// `GET /v1/stock-movements`
pub async fn list_movements(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let filter = MovementFilter {
        item_id: q.text("item_id"),
        location_id: q.text("location_id"),
        kind: q.enumeration("type"),
        // int64 as the document says (a sequence never passes it): a larger number is a 422,
        // not a filter the document cannot express.
        after_sequence: q.parsed("after_sequence", "an integer in 0..=9223372036854775807", |v| {
            v.parse::<i64>().ok().filter(|n| *n >= 0).map(|n| n as u64)
        }),
        created_after: q.parsed("created_after", "an RFC 3339 date-time", time),
        created_before: q.parsed("created_before", "an RFC 3339 date-time", time),
    };
    let window = q.window("mov", &st.ledger.tag)?;
    q.finish()?;
    let p = st.ledger.movements(&filter, window)?;
    Ok(axum::Json(page(p, "mov", &st.ledger.tag, |data, next_cursor| MovementList { data, next_cursor }))
        .into_response())
}

// ---- levels ---------------------------------------------------------------------------------

/// `GET /v1/stock-levels`
pub async fn list_levels(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let item = q.text("item_id");
    let location = q.text("location_id");
    let below = q.bool("below_threshold").unwrap_or(false);
    let window = q.window("lvl", &st.ledger.tag)?;
    q.finish()?;
    let p = st.ledger.levels(item.as_deref(), location.as_deref(), below, window);
    Ok(axum::Json(page(p, "lvl", &st.ledger.tag, |data, next_cursor| StockLevelList { data, next_cursor }))
        .into_response())
}

/// `GET /v1/items/{item_id}/stock-levels/{location_id}`
pub async fn get_level(
    auth: Auth,
    Path((item, location)): Path<(String, String)>,
    headers: HeaderMap,
    mut q: Query,
) -> ApiResult {
    let as_of = q.parsed("as_of", "an RFC 3339 date-time", time);
    q.finish()?;
    let level = auth.tenant.state.lock().ledger.level(&item, &location, as_of)?;
    Ok(ok_json(&headers, &level, Some(level.version)))
}

// ---- events ---------------------------------------------------------------------------------

/// `GET /v1/events`
pub async fn list_events(auth: Auth, mut q: Query) -> ApiResult {
    let st = auth.tenant.state.lock();
    let kind = q.text("type");
    let after = q.text("after");
    let window = q.window("evt", &st.ledger.tag)?;
    q.finish()?;
    // Serialized from views that borrow the log (the JSON of an `EventList`), under the lock.
    let p = st.ledger.event_views(kind.as_deref(), after.as_deref(), window)?;
    let response = axum::Json(page(p, "evt", &st.ledger.tag, |data, next_cursor| EventViewList { data, next_cursor }))
        .into_response();
    Ok(response)
}

/// An [`EventList`] of borrowed views.
#[derive(Serialize)]
struct EventViewList<'a> {
    data: Vec<crate::domain::ledger::events::EventView<'a>>,
    next_cursor: Option<String>,
}

/// `GET /v1/events/{id}`
pub async fn get_event(auth: Auth, Path(id): Path<String>, headers: HeaderMap, q: Query) -> ApiResult {
    q.finish()?;
    let e = auth.tenant.state.lock().ledger.event(&id)?;
    Ok(ok_json(&headers, &e, Some(1)))
}
