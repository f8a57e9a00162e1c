//! `GET /metrics`: Prometheus text exposition (docs/guide/emulator.md, "Metrics"), with `prometheus-client`,
//! the Prometheus project's own Rust client (typed families, its text encoder).
//!
//! Families: `twh_http_requests_total{method,route,status}`,
//! `twh_http_request_duration_seconds{route}` (histogram, arrival to the answer's head),
//! `twh_ledger_lines_total` (lines written by API writes: movements, batches, reversals),
//! `twh_idempotent_replays_total`, `twh_rate_limited_total`,
//! `twh_quota_exceeded_total{meter}` (429 `quota_exceeded` answers), `twh_webhook_attempts_total
//! {outcome="succeeded"|"failed"|"not_sent"}`, and the gauges `twh_webhook_deliveries
//! {status="pending"|"dead"}` (pending: not yet delivered and still to be tried),
//! `twh_sandboxes` and `twh_journal_entries`.
//!
//! **Bounded labels**: `route` is the path template the request matched (`/v1/items/{id}`),
//! found in the route table, or `unmatched`; `method` is one of the methods the API knows, or
//! `other`; `status` is a status the emulator answers. Whatever the traffic, the label sets are
//! at most methods × routes × statuses.
//!
//! **Cheap counting**: a request finds its route's index in a table built at start and its
//! counter and histogram through handles cached by that index (Fx-hashed integers under a read
//! lock), not through the families' label-set maps, which hash every label string with SipHash
//! on each lookup.
//!
//! **Cheap scrapes**: every counter is counted when it happens; the gauges read counts the state
//! keeps (the delivery status index of each sandbox, the journal's length), never a scan of
//! movements or deliveries, so a scrape costs the same at a million movements.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, RwLock};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;

use super::AppState;
use super::extract::Admin;
use crate::domain::webhooks::DeliveryStatus;

/// The route label of a path that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Upper bounds of the duration histogram's buckets, in seconds.
const DURATION_BUCKETS_SECONDS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MeterLabels {
    meter: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS_SECONDS)
}

/// The route templates of the route table, to name a request's route by its index in
/// [`Routes::names`] (the last one is [`UNMATCHED`]).
#[derive(Debug)]
struct Routes {
    /// Every template, then [`UNMATCHED`].
    names: Vec<&'static str>,
    /// Indexes of the templates without parameters, by path.
    exact: FxHashMap<&'static str, usize>,
    /// Indexes of the templates with parameters, each split into segments (`None`: a
    /// parameter), most literal segments first.
    templates: Vec<(usize, Vec<Option<&'static str>>)>,
}

impl Routes {
    fn new(paths: &[&'static str]) -> Routes {
        let mut exact = FxHashMap::default();
        let mut templates = Vec::new();
        for (index, path) in paths.iter().enumerate() {
            if path.contains('{') {
                let segments = path.split('/').map(|s| (!s.starts_with('{')).then_some(s)).collect();
                templates.push((index, segments));
            } else {
                exact.insert(*path, index);
            }
        }
        templates.sort_by_key(|(_, s): &(usize, Vec<Option<&str>>)| std::cmp::Reverse(s.iter().flatten().count()));
        let mut names = paths.to_vec();
        names.push(UNMATCHED);
        Routes { names, exact, templates }
    }

    /// The index of `path`'s template.
    fn index(&self, path: &str) -> usize {
        if let Some(i) = self.exact.get(path) {
            return *i;
        }
        let count = path.split('/').count();
        for (index, segments) in &self.templates {
            if segments.len() == count
                && segments.iter().zip(path.split('/')).all(|(t, p)| t.map_or(!p.is_empty(), |t| t == p))
            {
                return *index;
            }
        }
        self.names.len() - 1
    }

    #[cfg(test)]
    fn route(&self, path: &str) -> &'static str {
        self.names[self.index(path)]
    }
}

/// The `method` label's values; a request's is found by [`method_index`].
const METHOD_LABELS: [&str; 8] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other"];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        Method::HEAD => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// One integer for a (route index, method index, status) triple: a status has 3 digits (10
/// bits), a method index 3 bits.
fn request_key(route: usize, method: usize, status: StatusCode) -> u32 {
    ((route as u32) << 13) | ((method as u32) << 10) | u32::from(status.as_u16())
}

/// The emulator's metrics (see the module docs).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    routes: Routes,
    requests: Family<RequestLabels, Counter>,
    /// Handles of `requests`' counters (which share their counts), by route index, method
    /// index and status packed into one integer ([`request_key`]).
    request_counters: RwLock<FxHashMap<u32, Counter>>,
    duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Handles of `duration`'s histograms by route index, each made when its route is first
    /// answered (so a scrape lists the routes that were used).
    route_durations: Vec<OnceLock<Histogram>>,
    /// Ledger lines written by API writes.
    pub ledger_lines: Counter,
    replays: Counter,
    /// 429 `rate_limited` answers.
    pub rate_limited: Counter,
    quota_exceeded: Family<MeterLabels, Counter>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    webhook_deliveries: Family<StatusLabels, Gauge>,
    sandboxes: Gauge,
    journal_entries: Gauge,
    /// One scrape at a time: a scrape brings the dispatcher's counts into its counters.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, each label set the API names created at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(duration_histogram);
        let (ledger_lines, replays, rate_limited) = (Counter::default(), Counter::default(), Counter::default());
        let quota_exceeded = Family::<MeterLabels, Counter>::default();
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        let webhook_deliveries = Family::<StatusLabels, Gauge>::default();
        let (sandboxes, journal_entries) = (Gauge::default(), Gauge::default());
        for meter in ["api_requests", "ledger_lines"] {
            let _ = quota_exceeded.get_or_create(&MeterLabels { meter });
        }
        for outcome in ["succeeded", "failed", "not_sent"] {
            let _ = webhook_attempts.get_or_create(&OutcomeLabels { outcome });
        }
        for status in ["pending", "dead"] {
            let _ = webhook_deliveries.get_or_create(&StatusLabels { status });
        }
        // prometheus-client adds `_total` to counters' names.
        registry.register(
            "twh_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "twh_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template",
            duration.clone(),
        );
        registry.register("twh_ledger_lines", "Ledger lines written by API writes", ledger_lines.clone());
        registry.register("twh_idempotent_replays", "Answers replayed from an idempotency record", replays.clone());
        registry.register(
            "twh_rate_limited",
            "Requests refused by the per-key rate limit (429 rate_limited)",
            rate_limited.clone(),
        );
        registry.register(
            "twh_quota_exceeded",
            "Requests refused by a hard quota (429 quota_exceeded), by meter",
            quota_exceeded.clone(),
        );
        registry.register("twh_webhook_attempts", "Webhook delivery attempts, by outcome", webhook_attempts.clone());
        registry.register(
            "twh_webhook_deliveries",
            "Webhook deliveries still to be tried (pending) or given up (dead)",
            webhook_deliveries.clone(),
        );
        registry.register("twh_sandboxes", "Sandboxes", sandboxes.clone());
        registry.register("twh_journal_entries", "Entries in the request journal", journal_entries.clone());
        let routes = Routes::new(&super::route_paths());
        Metrics {
            registry,
            route_durations: routes.names.iter().map(|_| OnceLock::new()).collect(),
            routes,
            requests,
            request_counters: RwLock::default(),
            duration,
            ledger_lines,
            replays,
            rate_limited,
            quota_exceeded,
            webhook_attempts,
            webhook_deliveries,
            sandboxes,
            journal_entries,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, method: &Method, path: &str, status: StatusCode, elapsed: Duration, replayed: bool) {
        let (route, method) = (self.routes.index(path), method_index(method));
        let key = request_key(route, method, status);
        let counted = self.request_counters.read().get(&key).map(Counter::inc);
        if counted.is_none() {
            let labels = RequestLabels {
                method: METHOD_LABELS[method],
                route: self.routes.names[route],
                status: status.as_u16(),
            };
            // The family's counter and the cached handle share one count.
            let counter = self.requests.get_or_create(&labels).clone();
            counter.inc();
            self.request_counters.write().insert(key, counter);
        }
        self.route_durations[route]
            .get_or_init(|| self.duration.get_or_create(&RouteLabels { route: self.routes.names[route] }).clone())
            .observe(elapsed.as_secs_f64());
        if replayed {
            self.replays.inc();
        }
    }

    /// Counts a 429 `quota_exceeded` of `meter` (`api_requests`, `ledger_lines`).
    pub fn quota_exceeded(&self, meter: &'static str) {
        self.quota_exceeded.get_or_create(&MeterLabels { meter }).inc();
    }

    /// The exposition text, after reading the gauges and the dispatcher's counts.
    pub fn render(&self, app: &AppState) -> String {
        let _one = self.scrape.lock();
        let outcomes = app.dispatcher.attempt_outcomes();
        for (outcome, n) in ["succeeded", "failed", "not_sent"].into_iter().zip(outcomes) {
            let c = self.webhook_attempts.get_or_create(&OutcomeLabels { outcome });
            // The dispatcher's counts only rise; a scrape brings the counter up to them.
            c.inc_by(n.saturating_sub(c.get()));
        }
        let tenants = app.world.tenants();
        let (mut pending, mut dead) = (0usize, 0usize);
        for t in &tenants {
            let state = t.state.lock();
            pending += state.webhooks.status_count(DeliveryStatus::Pending)
                + state.webhooks.status_count(DeliveryStatus::Failed);
            dead += state.webhooks.status_count(DeliveryStatus::Dead);
        }
        self.webhook_deliveries.get_or_create(&StatusLabels { status: "pending" }).set(pending as i64);
        self.webhook_deliveries.get_or_create(&StatusLabels { status: "dead" }).set(dead as i64);
        self.sandboxes.set(tenants.len() as i64);
        self.journal_entries.set(app.journal.len().0 as i64);
        let mut out = String::with_capacity(16 << 10);
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `GET /metrics`
pub async fn scrape(State(s): State<Arc<AppState>>, _: Admin) -> Response {
    let text = s.metrics.render(&s);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates() {
        let r = Routes::new(&[
            "/v1/items",
            "/v1/items/{id}",
            "/v1/stock-movements/batch",
            "/v1/stock-movements/{id}",
            "/v1/items/{item_id}/stock-levels/{location_id}",
        ]);
        assert_eq!(r.route("/v1/items"), "/v1/items");
        assert_eq!(r.route("/v1/items/itm_123"), "/v1/items/{id}");
        assert_eq!(r.route("/v1/stock-movements/batch"), "/v1/stock-movements/batch");
        assert_eq!(r.route("/v1/stock-movements/mov_1"), "/v1/stock-movements/{id}");
        assert_eq!(r.route("/v1/items/itm_1/stock-levels/loc_2"), "/v1/items/{item_id}/stock-levels/{location_id}");
        assert_eq!(r.route("/v1/items/"), UNMATCHED);
        assert_eq!(r.route("/v1/nothing/here"), UNMATCHED);
    }
}
