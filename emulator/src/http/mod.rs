//! The HTTP layer: routes, middleware, and the mapping of domain results to responses.
//!
//! [`App`] runs steps around the router, outermost first: request id (echoes or assigns
//! `X-Request-Id`, logs the request, turns the router's bare 405 into problem+json), with
//! `--data-dir` the durable barrier ([`pipeline::durable_barrier`]), then [`metering`] (rate
//! limit, quota and the `api_requests` meter of authenticated requests), then [`faults`]; then
//! the router and its handlers (which run writes through [`pipeline`]). The request id step also
//! counts every answer in [`metrics`] and hands each `/v1` request to the [`journal`] (a note at
//! arrival, the entry recorded when the answer's body has gone out). Metering and faults are
//! plain functions before and after one call of the handler, and [`App`] is a hand-written
//! service with one boxed future per request: as axum layers (`from_fn`), each step cost a boxed
//! service clone and boxed futures per request and per route, and as nested async functions each
//! kept its own copy of the request in a future several kilobytes large, all measurable on the
//! write path.

pub mod admission;
pub mod billing;
pub mod control;
pub mod docs;
pub mod error;
pub mod extract;
pub mod faults;
pub mod fixtures;
pub mod journal;
pub mod ledger;
pub mod metering;
pub mod metrics;
pub mod ops;
pub mod origin;
pub mod pipeline;
pub mod respond;
pub mod sandboxes;
pub mod ui;
pub mod webhooks;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use futures::FutureExt;
use tower::Service;
use tracing::Instrument;

use crate::clock::Timestamp;
use crate::dispatch::{Dispatcher, WebhookSettings};
use crate::domain::registry::World;
use crate::runner::JobRunner;
use error::{ApiError, REQUEST, RequestScope};
use faults::Faults;
use metering::RateLimiter;

/// Longest client-supplied `X-Request-Id` kept, in bytes.
pub const REQUEST_ID_LEN_MAX: usize = 200;

/// Default largest `PUT /_emulator/state` body, in bytes (128 MiB: the parsed state takes a few
/// times its text).
pub const STATE_BODY_BYTES_MAX: usize = 128 << 20;

/// Most bytes of JSON request bodies buffered at once over all requests (64 MiB, sixteen bodies
/// at the 4 MiB limit): a request reserves its `Content-Length` (or its limit, without one) in
/// KiB before reading and keeps it until its body is parsed; others wait, and TCP holds their
/// senders back. So 64 concurrent 4 MB bodies cost 64 MiB, not 256. A body larger than the
/// whole budget (a state import) waits for all of it.
pub const BODY_BYTES_IN_FLIGHT_MAX: usize = 64 << 20;

/// Default header-read (and idle) timeout of a connection.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Default most connections served at once.
pub const CONNECTIONS_MAX: usize = 2048;

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// When set, `POST /v1/sandboxes` and `/_emulator/*` require `Authorization: Bearer <token>`.
    pub admin_token: Option<String>,
    /// The address the emulator was told to bind (`--host`): a `Host` the admin routes accept
    /// besides the loopback names ([`origin`]). `Emulator::start` fills it in.
    pub host: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Largest `PUT /_emulator/state` body, in bytes.
    pub state_body_limit_bytes: usize,
    /// Sustained requests per second allowed per API key (0 turns the rate limit off).
    pub rate_limit_per_second: u64,
    /// How long a connection may take to send a request's head, and so how long an idle
    /// kept-alive connection stays open (hyper runs the same timer while it waits).
    pub header_read_timeout: std::time::Duration,
    /// Most connections served at once: past it the accept loop waits for one to close (new
    /// connections queue in the kernel's backlog), so idle ones cannot take every descriptor.
    pub connections_max: usize,
    /// Requests per API key allowed in a burst (the token bucket's size; 0: `rate_limit_per_second`).
    pub rate_limit_burst: u64,
    /// Most entries the request journal keeps (`--journal-size`; 0 turns it off).
    pub journal_size: usize,
    /// Most bytes the request journal keeps (`--journal-bytes`), the oldest entries dropped first.
    pub journal_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            admin_token: None,
            host: None,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connections_max: CONNECTIONS_MAX,
            body_limit_bytes: 4 << 20,
            state_body_limit_bytes: STATE_BODY_BYTES_MAX,
            rate_limit_per_second: metering::RATE_LIMIT_PER_SECOND_DEFAULT,
            rate_limit_burst: metering::RATE_LIMIT_BURST_DEFAULT,
            journal_size: journal::ENTRIES_MAX_DEFAULT,
            journal_bytes: journal::BYTES_MAX_DEFAULT,
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
    /// The request journal.
    pub journal: Arc<journal::Journal>,
    /// What `/metrics` shows.
    pub metrics: metrics::Metrics,
    /// KiB of request bodies that may be buffered at once ([`BODY_BYTES_IN_FLIGHT_MAX`]).
    pub body_budget: tokio::sync::Semaphore,
}

impl AppState {
    /// State over `world` with these settings.
    pub fn new(world: Arc<World>, config: HttpConfig, webhooks: WebhookSettings) -> AppState {
        let dispatcher = Arc::new(Dispatcher::new(world.clone(), webhooks));
        let jobs = Arc::new(JobRunner::new(world.clone(), dispatcher.clone()));
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        let journal = Arc::new(journal::Journal::new(config.journal_size, config.journal_bytes));
        AppState {
            world,
            faults: Faults::default(),
            config,
            dispatcher,
            sinks: webhooks::Sinks::default(),
            limiter,
            jobs,
            journal,
            metrics: metrics::Metrics::new(),
            body_budget: tokio::sync::Semaphore::new(BODY_BYTES_IN_FLIGHT_MAX >> 10),
        }
    }

    /// Moves the clock to `to` and fires everything that became due on the way (webhook
    /// attempts, period ends and invoices, nightly reconciliations, idempotency-key expiry, key
    /// grace periods), in time order.
    pub async fn advance_clock_to(&self, to: Timestamp) -> Timestamp {
        self.dispatcher.advance_to(to).await
    }
}

/// A handler's future, as axum boxes it.
type HandlerFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A handler of a path without parameters, called without the router.
type Endpoint = Box<dyn Fn(Request, Arc<AppState>) -> HandlerFuture + Send + Sync>;

/// The handlers of paths without parameters, by path and method.
type Direct = HashMap<&'static str, Vec<(Method, Endpoint)>>;

/// The route table under construction: the router, the paths it serves (tests check them
/// against the document), the operations bound, and the handlers of paths without parameters by
/// path and method.
///
/// Those go straight to their handler: no path matching, no `MatchedPath` and URL-parameter
/// extensions, no boxed route service cloned per request (the write path's hottest route is
/// one of them). Any other method on such a path (`HEAD`, a 405 with `Allow`) and every other
/// path goes through the router, which has the same routes.
#[derive(Default)]
struct Routes {
    paths: Vec<&'static str>,
    methods: HashMap<&'static str, MethodRouter<Arc<AppState>>>,
    bound: Vec<&'static str>,
    direct: Direct,
}

impl Routes {
    /// Binds `handler` to the operation `id` of [`crate::api::OPERATIONS`], at its method and
    /// path.
    fn op<H, T>(mut self, id: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Arc<AppState>, Future = HandlerFuture>,
        T: 'static,
    {
        let op = crate::api::find(id);
        assert!(!self.bound.contains(&id), "{id} is bound twice");
        self.bound.push(id);
        self.on(method_of(op.method), op.path, handler)
    }

    /// Binds `handler` to a method and path that the document does not list as an operation.
    fn undocumented<H, T>(self, method: (Method, MethodFilter), path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Arc<AppState>, Future = HandlerFuture>,
        T: 'static,
    {
        self.on(method, path, handler)
    }

    fn on<H, T>(mut self, (method, filter): (Method, MethodFilter), path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, Arc<AppState>, Future = HandlerFuture>,
        T: 'static,
    {
        if !self.paths.contains(&path) {
            self.paths.push(path);
        }
        let route = self.methods.remove(path).unwrap_or_default();
        self.methods.insert(path, route.on(filter, handler.clone()));
        if !path.contains('{') {
            let endpoint: Endpoint = Box::new(move |req, state| handler.clone().call(req, state));
            self.direct.entry(path).or_default().push((method, endpoint));
        }
        self
    }

    /// The router of every bound path, after checking that every operation is bound.
    fn router(mut self) -> (Router<Arc<AppState>>, Direct) {
        let unbound: Vec<&str> =
            crate::api::OPERATIONS.iter().map(|o| o.id).filter(|id| !self.bound.contains(id)).collect();
        assert!(unbound.is_empty(), "operations without a handler: {unbound:?}");
        let mut router = Router::new();
        for path in &self.paths {
            router = router.route(path, self.methods.remove(path).unwrap_or_default());
        }
        (router, self.direct)
    }
}

/// The router's method and filter of an OpenAPI method name.
fn method_of(method: &str) -> (Method, MethodFilter) {
    match method {
        "get" => GET,
        "post" => POST,
        "put" => PUT,
        "patch" => PATCH,
        "delete" => DELETE,
        other => panic!("no route method for {other:?}"),
    }
}

/// The methods of the route table, with the router's filter for each.
const GET: (Method, MethodFilter) = (Method::GET, MethodFilter::GET);
const POST: (Method, MethodFilter) = (Method::POST, MethodFilter::POST);
const PUT: (Method, MethodFilter) = (Method::PUT, MethodFilter::PUT);
const PATCH: (Method, MethodFilter) = (Method::PATCH, MethodFilter::PATCH);
const DELETE: (Method, MethodFilter) = (Method::DELETE, MethodFilter::DELETE);

// One line an operation, as a table: its method and path are in `api::OPERATIONS`.
#[rustfmt::skip]
fn routes() -> Routes {
    use crate::domain::model::{Item, Location};
    use billing as b;
    use control as c;
    use docs as d;
    use ledger as l;
    use ops as o;
    use webhooks as w;
    Routes::default()
        .op("create_sandbox", l::create_sandbox)
        .op("get_sandbox", l::get_sandbox)
        .op("delete_sandbox", l::delete_sandbox)
        .op("reset_sandbox", l::reset_sandbox)
        .op("roll_api_key", l::roll_key)
        .op("list_items", l::list_entries::<Item>)
        .op("create_item", l::create_entry::<Item>)
        .op("get_item", l::get_entry::<Item>)
        .op("update_item", l::update_entry::<Item>)
        .op("archive_item", l::archive_entry::<Item>)
        .op("list_locations", l::list_entries::<Location>)
        .op("create_location", l::create_entry::<Location>)
        .op("get_location", l::get_entry::<Location>)
        .op("update_location", l::update_entry::<Location>)
        .op("archive_location", l::archive_entry::<Location>)
        .op("list_stock_movements", l::list_movements)
        .op("create_stock_movement", l::create_movement)
        .op("create_stock_movement_batch", l::create_batch)
        .op("get_stock_movement", l::get_movement)
        .op("reverse_stock_movement", l::reverse_movement)
        .op("list_stock_levels", l::list_levels)
        .op("get_stock_level", l::get_level)
        .op("list_events", l::list_events)
        .op("get_event", l::get_event)
        .op("list_webhook_endpoints", w::list_endpoints)
        .op("create_webhook_endpoint", w::create_endpoint)
        .op("get_webhook_endpoint", w::get_endpoint)
        .op("update_webhook_endpoint", w::update_endpoint)
        .op("delete_webhook_endpoint", w::delete_endpoint)
        .op("get_webhook_endpoint_secret", w::get_endpoint_secret)
        .op("rotate_webhook_secret", w::rotate_secret)
        .op("test_webhook_endpoint", w::test_endpoint)
        .op("replay_webhook_endpoint", w::replay_endpoint)
        .op("list_webhook_deliveries", w::list_deliveries)
        .op("get_webhook_delivery", w::get_delivery)
        .op("replay_webhook_delivery", w::replay_delivery)
        .op("list_plans", b::list_plans)
        .op("get_subscription", b::get_subscription)
        .op("update_subscription", b::update_subscription)
        .op("get_usage", b::get_usage)
        .op("export_usage", b::export_usage)
        .op("list_invoices", b::list_invoices)
        .op("get_invoice", b::get_invoice)
        .op("list_reconciliations", o::list_reconciliations)
        .op("create_reconciliation", o::create_reconciliation)
        .op("get_reconciliation", o::get_reconciliation)
        .op("create_job", o::create_job)
        .op("get_job", o::get_job)
        .op("emulator_health", c::health)
        .op("emulator_list_sandboxes", sandboxes::list_sandboxes)
        .op("emulator_get_clock", c::clock)
        .op("emulator_advance_clock", c::advance)
        .op("emulator_get_sandbox_clock", c::sandbox_clock)
        .op("emulator_advance_sandbox_clock", c::advance_sandbox_clock)
        .op("emulator_list_faults", c::list_faults)
        .op("emulator_add_fault", c::add_fault)
        .op("emulator_clear_faults", c::clear_faults)
        .op("emulator_corrupt_stock_level", faults::corrupt_stock_level)
        .op("emulator_export_state", c::export_state)
        .op("emulator_import_state", c::import_state)
        .op("emulator_reset", c::reset)
        .op("emulator_load_fixtures", fixtures::load)
        .op("emulator_list_sink", w::sink_list)
        .op("emulator_sink_receive", w::sink_receive)
        .op("emulator_clear_sink", w::sink_clear)
        .op("emulator_list_requests", journal::list)
        .op("emulator_clear_requests", journal::clear)
        .op("emulator_get_request", journal::get)
        .op("get_metrics", metrics::scrape)
        .op("get_openapi_document", d::openapi)
        .op("get_postman_collection", d::postman)
        // Not operations of the document: writes to the immutable ledger answer 405
        // `ledger_immutable` (with `Allow: GET`) instead of the router's bare 405.
        .undocumented(PUT, "/v1/stock-movements/{id}", l::movement_immutable)
        .undocumented(PATCH, "/v1/stock-movements/{id}", l::movement_immutable)
        .undocumented(DELETE, "/v1/stock-movements/{id}", l::movement_immutable)
}

/// The paths the router serves, in the order the route table first names them.
pub fn route_paths() -> Vec<&'static str> {
    routes().paths
}

/// The whole HTTP application over `state`: what the binary serves and tests drive in-process.
pub fn app(state: Arc<AppState>) -> App {
    let (router, direct) = routes().router();
    let router = router.merge(ui::router()).fallback(|| async { ApiError::no_route() }).with_state(state.clone());
    App { next: Next { state, router, direct: Arc::new(direct) } }
}

/// The HTTP application: the steps of the module docs around the router. A `tower::Service`
/// of `Request`s, cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    next: Next,
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        Box::pin(request_id(self.next.state.clone(), req, self.next.clone()))
    }
}

/// What a step calls to go on: the handler of a path without parameters, or the router.
#[derive(Clone)]
pub struct Next {
    state: Arc<AppState>,
    router: Router,
    direct: Arc<Direct>,
}

impl std::fmt::Debug for Next {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next").field("router", &self.router).finish_non_exhaustive()
    }
}

impl Next {
    /// `req`'s handler's answer: a boxed future (as axum boxes a handler's), small to hold.
    pub fn run(self, req: Request) -> HandlerFuture {
        let direct = self.direct.get(req.uri().path()).and_then(|m| m.iter().find(|(m, _)| m == req.method()));
        if let Some((_, endpoint)) = direct {
            return endpoint(req, self.state);
        }
        let mut router = self.router;
        Box::pin(async move {
            match router.call(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        })
    }
}

/// The methods of `allow` the document declares on `path`: a movement's PUT, PATCH and DELETE
/// are routed (to answer `ledger_immutable`) but not operations, so a 405 on a movement lists
/// `GET` (and `HEAD`) only.
fn documented_allow(allow: &HeaderValue, path: &str) -> HeaderValue {
    let movement =
        path.strip_prefix("/v1/stock-movements/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if !movement {
        return allow.clone();
    }
    let text = allow.to_str().unwrap_or_default();
    let kept: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|m| !["PUT", "PATCH", "DELETE"].iter().any(|u| m.eq_ignore_ascii_case(u)))
        .collect();
    HeaderValue::from_str(&kept.join(",")).unwrap_or_else(|_| allow.clone())
}

/// The router's bare 405 as problem+json, keeping its `Allow` and rate-limit headers.
fn method_not_allowed(bare: &Response, method: &Method, path: &str, id: &HeaderValue) -> Response {
    // In the request's scope, where the problem takes its request id from.
    let mut problem = REQUEST.sync_scope(RequestScope { id: id.clone(), journal: None }, || {
        let detail = format!("{method} is not allowed on {path}.");
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", detail).into_response()
    });
    if let Some(allow) = bare.headers().get(header::ALLOW) {
        problem.headers_mut().insert(header::ALLOW, documented_allow(allow, path));
    }
    for (name, value) in bare.headers() {
        if name.as_str().starts_with("ratelimit-") {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

/// The steps inside the request id's: only with `--data-dir` is there a barrier to pass.
fn inner(app: Arc<AppState>, req: Request, next: Next) -> impl Future<Output = Response> {
    use futures::future::Either;
    if app.world.store.is_durable() {
        // Boxed: its future would otherwise make every request's larger.
        Either::Left(Box::pin(pipeline::durable_barrier(app, req, next)))
    } else {
        Either::Right(steps(app, req, next))
    }
}

/// The admin routes' Origin/Host rule ([`origin`]), then metering, then faults, then the handler. The steps before and after the handler are plain
/// functions around one await, so a request's future holds one `Request` and one handler call.
async fn steps(app: Arc<AppState>, mut req: Request, next: Next) -> Response {
    if let Err(refused) = origin::check(&app.config, &req) {
        return refused.into_response();
    }
    let decision = match metering::before(&app, &mut req) {
        Ok(decision) => decision,
        Err(refused) => {
            if journal::noting() {
                // Refused by the rate limit or a quota: the key still names the sandbox.
                let grant = admission::bearer(req.headers()).and_then(|t| app.world.authenticate(t));
                if let Some(g) = grant {
                    journal::note_sandbox(&g.tenant_id);
                }
            }
            return refused;
        }
    };
    if let Some(a) = req.extensions().get::<admission::Admission>() {
        journal::note_tenant(&a.tenant);
    }
    let mut response = match faults::before(&app, &mut req) {
        Err(injected) => injected,
        Ok(plan) => {
            if let Some(d) = plan.sleep {
                // Boxed: a timer would make every request's future larger for a rare fault.
                Box::pin(tokio::time::sleep(d)).await;
            }
            let response = next.run(req).await;
            match plan.after {
                Some(fault) => faults::after(&fault),
                None => response,
            }
        }
    };
    metering::after(&mut response, decision);
    response
}

/// Header names the steps and handlers look up: as constants, a lookup does not parse the name.
pub mod names {
    use axum::http::HeaderName;

    /// `X-Request-Id`.
    pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    /// `Idempotency-Key`.
    pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
    /// `Idempotent-Replayed`.
    pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
}

fn fresh_request_id(app: &AppState, path: &str) -> HeaderValue {
    // Deterministic mode: `/v1` requests draw from a stream of their own (see `ids`).
    let stream = if path.starts_with("/v1/") { crate::ids::Stream::Requests } else { crate::ids::Stream::Control };
    let id = app.world.ids.random(stream, "req_", 24);
    // From the String's own buffer; letters and digits are a valid header value.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(id)).unwrap_or(HeaderValue::from_static("req_"))
}

/// Assigns the request id, logs the request, and renders the router's own 405 as a problem.
/// What can be done before the request runs is done here, outside the future, which then holds
/// only what it needs after.
fn request_id(app: Arc<AppState>, req: Request, next: Next) -> impl Future<Output = Result<Response, Infallible>> {
    // A client's id is kept when it is 1..=200 visible ASCII characters; the value is shared,
    // not copied.
    let id = req
        .headers()
        .get(names::X_REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= REQUEST_ID_LEN_MAX && v.iter().all(|b| (0x21..=0x7e).contains(b))
        })
        .cloned()
        .unwrap_or_else(|| fresh_request_id(&app, req.uri().path()));
    let method = req.method().clone();
    // A clone of the URI shares its bytes: no copy of the path unless it is logged or quoted.
    let uri = req.uri().clone();
    let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or_default(), %method, path = uri.path());
    let started = Instant::now();
    let journaled = journal::start(&app, &req);
    let observed = app.clone();
    let scope = RequestScope { id: id.clone(), journal: journaled.clone() };
    let running = REQUEST.scope(scope, inner(app, req, next)).instrument(span.clone());
    // A map, not an async block: one that awaited `running` would hold it twice.
    running.map(move |mut response| {
        if response.status() == StatusCode::METHOD_NOT_ALLOWED && !response.headers().contains_key(header::CONTENT_TYPE)
        {
            response = method_not_allowed(&response, &method, uri.path(), &id);
        }
        response.headers_mut().insert(names::X_REQUEST_ID, id.clone());
        let elapsed = started.elapsed();
        span.in_scope(|| {
            tracing::info!(status = response.status().as_u16(), elapsed_us = elapsed.as_micros() as u64, "served");
        });
        // One lookup for both: metrics count the header, the journal its value.
        let replayed = response.headers().get(names::IDEMPOTENT_REPLAYED).map(|v| v == "true");
        observed.metrics.observe(&method, uri.path(), response.status(), elapsed, replayed.is_some());
        if let Some(record) = journaled {
            response = journal::finish(record, &observed.journal, &id, replayed == Some(true), elapsed, response);
        }
        Ok(response)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request's future is boxed and moved: it had grown to 4 KB when each step was an
    /// async function holding its own copy of the request. Rare paths (durable barrier, fault
    /// delays) are boxed so they do not count.
    #[test]
    fn a_request_future_stays_small() {
        let world = Arc::new(World::new(Default::default(), Box::new(crate::domain::registry::MemoryStore)));
        let state = Arc::new(AppState::new(world, HttpConfig::default(), WebhookSettings::default()));
        let app = app(state.clone());
        let req = || Request::new(axum::body::Body::empty());
        let whole = std::mem::size_of_val(&request_id(state.clone(), req(), app.next.clone()));
        let steps = std::mem::size_of_val(&steps(state.clone(), req(), app.next.clone()));
        let handler = std::mem::size_of_val(&app.next.clone().run(req()));
        assert!(whole <= 1536, "a request's future is {whole} bytes");
        assert!(steps <= 1024, "the steps' future is {steps} bytes");
        assert_eq!(handler, std::mem::size_of::<HandlerFuture>(), "the handler's future is boxed");
    }
}
