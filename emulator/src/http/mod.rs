//! The HTTP layer: routes, middleware, and the mapping of domain results to responses.
//!
//! [`App`] runs steps around the router, outermost first: request id (echoes or assigns
//! `X-Request-Id`, logs the request, turns the router's bare 405 into problem+json), with
//! `--data-dir` the durable barrier ([`pipeline::durable_barrier`]), then [`metering`] (rate
//! limit, quota and the `api_requests` meter of authenticated requests), then [`faults`]; then
//! the router and its handlers (which run writes through [`pipeline`]). The steps are plain async
//! functions calling each other, and [`App`] is a hand-written service with one boxed future per
//! request: as axum layers (`from_fn`), each step cost a boxed service clone and boxed futures
//! per request and per route, measurable on the write path.

pub mod billing;
pub mod control;
pub mod error;
pub mod extract;
pub mod faults;
pub mod ledger;
pub mod metering;
pub mod ops;
pub mod pipeline;
pub mod webhooks;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tower::Service;
use tracing::Instrument;

use crate::clock::Timestamp;
use crate::dispatch::{Dispatcher, WebhookSettings};
use crate::domain::registry::World;
use crate::runner::JobRunner;
use error::{ApiError, REQUEST_ID};
use faults::Faults;
use metering::RateLimiter;

/// Longest client-supplied `X-Request-Id` kept, in bytes.
pub const REQUEST_ID_LEN_MAX: usize = 200;

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// When set, `POST /v1/sandboxes` and `/_emulator/*` require `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Largest `PUT /_emulator/state` body, in bytes.
    pub state_body_limit_bytes: usize,
    /// Sustained requests per second allowed per API key (0 turns the rate limit off).
    pub rate_limit_per_second: u64,
    /// Requests per API key allowed in a burst (the token bucket's size; 0: `rate_limit_per_second`).
    pub rate_limit_burst: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            admin_token: None,
            body_limit_bytes: 4 << 20,
            state_body_limit_bytes: 1 << 30,
            rate_limit_per_second: metering::RATE_LIMIT_PER_SECOND_DEFAULT,
            rate_limit_burst: metering::RATE_LIMIT_BURST_DEFAULT,
        }
    }
}

/// Everything a handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The domain state.
    pub world: Arc<World>,
    /// Armed faults.
    pub faults: Faults,
    /// HTTP settings.
    pub config: HttpConfig,
    /// Sends webhook deliveries.
    pub dispatcher: Arc<Dispatcher>,
    /// The built-in webhook sink.
    pub sinks: webhooks::Sinks,
    /// Per-key rate limits.
    pub limiter: RateLimiter,
    /// Runs import jobs.
    pub jobs: Arc<JobRunner>,
}

impl AppState {
    /// State over `world` with these settings.
    pub fn new(world: Arc<World>, config: HttpConfig, webhooks: WebhookSettings) -> AppState {
        let dispatcher = Arc::new(Dispatcher::new(world.clone(), webhooks));
        let jobs = Arc::new(JobRunner::new(world.clone(), dispatcher.clone()));
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        AppState {
            world,
            faults: Faults::default(),
            config,
            dispatcher,
            sinks: webhooks::Sinks::default(),
            limiter,
            jobs,
        }
    }

    /// Moves the clock to `to` and fires everything that became due on the way (webhook
    /// attempts, period ends and invoices, nightly reconciliations, idempotency-key expiry, key
    /// grace periods), in time order.
    pub async fn advance_clock_to(&self, to: Timestamp) -> Timestamp {
        self.dispatcher.advance_to(to).await
    }
}

/// Collects routes while remembering their paths (tests check them against the document).
struct Routes {
    router: Router<Arc<AppState>>,
    paths: Vec<&'static str>,
}

impl Routes {
    fn add(mut self, path: &'static str, route: MethodRouter<Arc<AppState>>) -> Routes {
        self.paths.push(path);
        self.router = self.router.route(path, route);
        self
    }
}

fn routes() -> Routes {
    use billing as b;
    use control as c;
    use ledger as l;
    use ops as o;
    use webhooks as w;
    Routes { router: Router::new(), paths: Vec::new() }
        .add("/v1/sandboxes", post(l::create_sandbox))
        .add("/v1/sandbox", get(l::get_sandbox).delete(l::delete_sandbox))
        .add("/v1/sandbox/reset", post(l::reset_sandbox))
        .add("/v1/api-keys/roll", post(l::roll_key))
        .add("/v1/items", get(l::list_items).post(l::create_item))
        .add("/v1/items/{id}", get(l::get_item).patch(l::update_item).delete(l::archive_item))
        .add("/v1/locations", get(l::list_locations).post(l::create_location))
        .add("/v1/locations/{id}", get(l::get_location).patch(l::update_location).delete(l::archive_location))
        .add("/v1/stock-movements", get(l::list_movements).post(l::create_movement))
        .add("/v1/stock-movements/batch", post(l::create_batch))
        .add(
            "/v1/stock-movements/{id}",
            get(l::get_movement).put(l::movement_immutable).patch(l::movement_immutable).delete(l::movement_immutable),
        )
        .add("/v1/stock-movements/{id}/reverse", post(l::reverse_movement))
        .add("/v1/stock-levels", get(l::list_levels))
        .add("/v1/items/{item_id}/stock-levels/{location_id}", get(l::get_level))
        .add("/v1/events", get(l::list_events))
        .add("/v1/events/{id}", get(l::get_event))
        .add("/v1/webhook-endpoints", get(w::list_endpoints).post(w::create_endpoint))
        .add("/v1/webhook-endpoints/{id}", get(w::get_endpoint).patch(w::update_endpoint).delete(w::delete_endpoint))
        .add("/v1/webhook-endpoints/{id}/rotate-secret", post(w::rotate_secret))
        .add("/v1/webhook-endpoints/{id}/test", post(w::test_endpoint))
        .add("/v1/webhook-endpoints/{id}/replay", post(w::replay_endpoint))
        .add("/v1/webhook-deliveries", get(w::list_deliveries))
        .add("/v1/webhook-deliveries/{id}", get(w::get_delivery))
        .add("/v1/webhook-deliveries/{id}/replay", post(w::replay_delivery))
        .add("/v1/plans", get(b::list_plans))
        .add("/v1/subscription", get(b::get_subscription).post(b::update_subscription))
        .add("/v1/usage", get(b::get_usage))
        .add("/v1/usage/export", get(b::export_usage))
        .add("/v1/invoices", get(b::list_invoices))
        .add("/v1/invoices/{id}", get(b::get_invoice))
        .add("/v1/reconciliations", get(o::list_reconciliations).post(o::create_reconciliation))
        .add("/v1/reconciliations/{id}", get(o::get_reconciliation))
        .add("/v1/jobs", post(o::create_job))
        .add("/v1/jobs/{id}", get(o::get_job))
        .add("/_emulator/health", get(c::health))
        .add("/_emulator/clock", get(c::clock))
        .add("/_emulator/clock/advance", post(c::advance))
        .add("/_emulator/faults", get(c::list_faults).post(c::add_fault).delete(c::clear_faults))
        .add("/_emulator/faults/corrupt-stock-level", post(faults::corrupt_stock_level))
        .add("/_emulator/state", get(c::export_state).put(c::import_state))
        .add("/_emulator/reset", post(c::reset))
        .add("/_emulator/sink/{name}", get(w::sink_list).post(w::sink_receive).delete(w::sink_clear))
        .add("/openapi.json", get(c::openapi))
        .add("/openapi/postman.json", get(c::postman))
}

/// The paths the router serves, as written in the route table.
pub fn route_paths() -> Vec<&'static str> {
    routes().paths
}

/// The whole HTTP application over `state`: what the binary serves and tests drive in-process.
pub fn app(state: Arc<AppState>) -> App {
    let router = routes().router.fallback(|| async { ApiError::no_route() }).with_state(state.clone());
    App { state, router: Next(router) }
}

/// The HTTP application: the steps of the module docs around the router. A `tower::Service`
/// of `Request`s, cheap to clone (two `Arc`s).
#[derive(Clone, Debug)]
pub struct App {
    state: Arc<AppState>,
    router: Next,
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let (state, next) = (self.state.clone(), self.router.clone());
        Box::pin(async move { Ok(request_id(state, req, next).await) })
    }
}

/// What a step calls to go on: the router.
#[derive(Clone, Debug)]
pub struct Next(Router);

impl Next {
    /// Routes `req` to its handler and returns the handler's answer.
    pub async fn run(mut self, req: Request) -> Response {
        match self.0.call(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }
}

/// The steps inside the request id's: only with `--data-dir` is there a barrier to pass.
async fn inner(app: &AppState, req: Request, next: Next) -> Response {
    if app.world.store.is_durable() {
        pipeline::durable_barrier(app, req, next).await
    } else {
        metering::layer(app, req, next).await
    }
}

fn fresh_request_id() -> String {
    crate::ids::random("req_", 24)
}

/// Assigns the request id, logs the request, and renders the router's own 405 as a problem.
async fn request_id(app: Arc<AppState>, req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= REQUEST_ID_LEN_MAX && v.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .map_or_else(fresh_request_id, str::to_owned);
    let method = req.method().clone();
    // A clone of the URI shares its bytes: no copy of the path unless it is logged or quoted.
    let uri = req.uri().clone();
    let path = uri.path();
    let span = tracing::info_span!("request", request_id = %id, %method, %path);
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), async move {
            let response = inner(&app, req, next).await;
            if response.status() == StatusCode::METHOD_NOT_ALLOWED
                && !response.headers().contains_key(header::CONTENT_TYPE)
            {
                let allow = response.headers().get(header::ALLOW).cloned();
                let mut problem = ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{method} is not allowed on {path}."),
                )
                .into_response();
                if let Some(allow) = allow {
                    problem.headers_mut().insert(header::ALLOW, allow);
                }
                for (name, value) in response.headers() {
                    if name.as_str().starts_with("ratelimit-") {
                        problem.headers_mut().insert(name.clone(), value.clone());
                    }
                }
                return problem;
            }
            response
        })
        .instrument(span.clone())
        .await;
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(id)) {
        response.headers_mut().insert("x-request-id", v);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "served"
        );
    });
    response
}
