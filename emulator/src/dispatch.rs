//! The webhook dispatcher, which is also the emulator's scheduler: it sends due deliveries,
//! records (and meters) attempts, and runs what falls due on the emulator clock (period ends and
//! their invoices, nightly reconciliations), in time order.
//!
//! Two drivers, never at once (one async lock):
//! - the background loop wakes when a commit creates deliveries (a few milliseconds later, so
//!   that a stream of commits makes batches, not one wake-up each) or every 200 ms, first runs
//!   the period ends and midnights that real time has reached, then keeps claiming due
//!   deliveries and sending them: at most [`WebhookSettings::concurrency`] of one sandbox and
//!   [`WebhookSettings::batch_max`] in all in flight, claimed across sandboxes in turn, again as
//!   soon as an attempt finishes or a commit wakes it (never waiting for a whole batch). So a
//!   receiver that never answers ties up its own sandbox's slots for a timeout, never another
//!   sandbox's delivery. A request only writes delivery records and pokes a `Notify`, so the
//!   request path never waits on a receiver.
//! - [`Dispatcher::advance_to`] (`POST /_emulator/clock/advance`) moves the clock forward to the
//!   next due thing, whichever kind it is, again and again: a period end or a midnight is run at
//!   its exact time (before any attempt due at that same instant, which belongs to the new
//!   period); attempts fire in steps of at most a second that never cross a period end or a
//!   midnight, each recorded at the time it was due. So a test walks a delivery through its whole
//!   schedule, or a sandbox through a month, in milliseconds, and every attempt lands in the
//!   period (and on the invoice) its time says.
//!
//! **Per-sandbox clocks.** Every sandbox runs on its own clock (the emulator clock plus its
//! offset, [`Tenant::now`]): its deliveries, period ends and midnights are due by its time. The
//! background loop compares each sandbox's schedule with that sandbox's now;
//! [`Dispatcher::advance_sandbox_to`] (`POST /_emulator/sandboxes/{id}/clock/advance`) walks one
//! sandbox's clock through the same steps as a global advance and touches no other sandbox, and
//! [`Dispatcher::advance_to`] moves the emulator clock, so every sandbox, each due thing at its
//! place in time. Both take the same turn, so they never interleave.
//!
//! A jump over more than a year of midnights runs only the last 366 nightly reconciliations
//! ([`NIGHTLY_BACKLOG_MAX_DAYS`](crate::domain::billing::NIGHTLY_BACKLOG_MAX_DAYS)); every period
//! end is run (one invoice a month).
//!
//! Webhook attempts are metered where they are recorded. Under a hard `webhook_attempts` quota
//! (plan `free`) the dispatcher claims no more than the quota leaves (attempts in flight count),
//! and what is due beyond it waits for the next period (`usage.quota_exceeded` once).
//!
//! `webhook-timestamp` is the wall-clock time of the attempt, so standard verifiers
//! accept deliveries after the emulator clock was advanced.
//!
//! **Sharing the tenant lock with the request path.** The dispatcher runs at the lowest OS
//! priority (see `server.rs`), so it must hold a tenant's lock as briefly and as rarely as it
//! can: if it is preempted while holding it, requests of that tenant wait for a thread that
//! the scheduler favours least. So it claims in chunks of [`CLAIM_CHUNK`] (the event JSON is
//! serialised after the lock is released), and records finished attempts in batches: whatever
//! has finished when one attempt finishes is recorded with it under one acquisition, with what
//! needs no lock (usage ids) prepared before.
//!
//! **Unreachable receivers.** A URL whose connection just failed (refused, unreachable, DNS)
//! or timed out (connecting or waiting for the answer) is not connected to again by the
//! background loop for [`WebhookSettings::connect_cool_down`] (default [`CONNECT_COOL_DOWN`]):
//! attempts claimed meanwhile fail at once, without traffic
//! (their event is not even rendered), saying so. Every attempt is still made and recorded at
//! its time, by the same schedule; only the useless connect is skipped, so a burst to a
//! receiver that refuses does not spin through thousands of connects a second. After the
//! cool-down the next attempt connects again, so a receiver that comes back is reached within
//! it. A clock advance always connects: its attempts stand for moments hours apart.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, watch};

use crate::clock::Timestamp;
use crate::domain::billing::Meter;
use crate::domain::registry::{Tenant, World};
use crate::domain::webhooks::{AttemptResult, Claimed, DEFAULT_RETRY_SCHEDULE_SECONDS};
use crate::ids;

/// Webhook settings.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retry delays after a failed attempt, in seconds (endpoints may override).
    pub retry_schedule_seconds: Vec<u64>,
    /// Most attempts of one sandbox in flight at once.
    pub concurrency: usize,
    /// Most deliveries claimed at once across sandboxes (the dispatch queue's bound): attempts in
    /// flight over all sandboxes, and the size of one step's batch in a clock advance.
    pub batch_max: usize,
    /// Send only to loopback hosts (127.0.0.0/8, ::1, localhost); other attempts fail without
    /// any traffic. For locked-down CI and for fuzzing the API.
    pub loopback_only: bool,
    /// How long the background loop does not connect again to a URL whose connection failed or
    /// timed out (attempts meanwhile fail without traffic); zero: always connect.
    pub connect_cool_down: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(15),
            retry_schedule_seconds: DEFAULT_RETRY_SCHEDULE_SECONDS.to_vec(),
            concurrency: 32,
            batch_max: 1024,
            loopback_only: false,
            connect_cool_down: CONNECT_COOL_DOWN,
        }
    }
}

/// Counters of the dispatcher (`GET /_emulator/health`).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct DispatchStats {
    /// Deliveries waiting for an attempt (due now or later), across tenants.
    pub waiting: u64,
    /// Attempts under way.
    pub in_flight: u64,
    /// Most deliveries claimed at once across sandboxes (the queue bound).
    pub batch_max: u64,
    /// Most attempts of one sandbox in flight at once.
    pub concurrency: u64,
    /// Attempts made since start.
    pub attempts: u64,
}

/// Largest receiver response body read, in bytes (the rest is discarded).
const RESPONSE_BODY_MAX_BYTES: usize = 64 * 1024;
/// Idle time between sweeps when nothing wakes the loop.
const SWEEP_INTERVAL: Duration = Duration::from_millis(200);
/// Width of one step of a clock advance: attempts due within it fire together.
const ADVANCE_STEP_MICROS: i64 = 1_000_000;
/// Most deliveries claimed under one acquisition of a tenant's lock.
const CLAIM_CHUNK: usize = 64;
/// Most finished attempts recorded under one acquisition of a tenant's lock.
const RECORD_BATCH_MAX: usize = 256;
/// How long the background loop lets commits gather after one woke it.
const WAKE_COALESCE: Duration = Duration::from_millis(5);
/// How often the background loop drops what expired by the clock.
const EXPIRE_INTERVAL: Duration = Duration::from_secs(1);
/// How long, by default, the background loop does not connect again to a URL whose connection
/// failed.
pub const CONNECT_COOL_DOWN: Duration = Duration::from_millis(500);
/// Entries of [`Unreachable`] beyond which expired ones are dropped.
const UNREACHABLE_PRUNE_AT: usize = 1024;

/// An attempt sent, waiting to be recorded.
struct Finished {
    tenant: Arc<Tenant>,
    tag: String,
    delivery: u64,
    at: Timestamp,
    result: AttemptResult,
}

/// URLs whose last connection failed: when, and the error; and the cool-down.
#[derive(Debug)]
struct Unreachable {
    failed: parking_lot::Mutex<HashMap<String, (Instant, String)>>,
    cool_down: Duration,
}

impl Unreachable {
    /// Whether `url`'s cool-down lasts.
    fn cooling(&self, url: &str) -> bool {
        let map = self.failed.lock();
        map.get(url).is_some_and(|(since, _)| since.elapsed() < self.cool_down)
    }

    /// The result of an attempt to `url` that was not sent because its cool-down lasted.
    fn not_sent(&self, url: &str) -> AttemptResult {
        let error = match self.failed.lock().get(url) {
            Some((since, error)) => format!(
                "{error} (not sent: this URL failed to connect {} ms before; connecting again after {} ms)",
                since.elapsed().as_millis(),
                self.cool_down.as_millis()
            ),
            None => format!(
                "could not connect (not sent: this URL failed to connect less than {} ms before)",
                self.cool_down.as_millis()
            ),
        };
        AttemptResult { status_code: None, duration_ms: 0, error: Some(error), retry_after_seconds: None }
    }

    fn failed(&self, url: &str, error: &str) {
        if self.cool_down.is_zero() {
            return;
        }
        let mut map = self.failed.lock();
        if map.len() >= UNREACHABLE_PRUNE_AT {
            map.retain(|_, (since, _)| since.elapsed() < self.cool_down);
        }
        map.insert(url.to_owned(), (Instant::now(), error.to_owned()));
    }

    fn connected(&self, url: &str) {
        let mut map = self.failed.lock();
        if !map.is_empty() {
            map.remove(url);
        }
    }
}

/// What a clock advance moves: the emulator clock (every sandbox) or one sandbox's clock. Times
/// in a scope are the emulator clock's (`All`) or that sandbox's (`One`); a sandbox's own time is
/// the scope's time plus [`Scope::shift`].
///
/// A sandbox's advance runs in a frame that holds the emulator clock still at `base` (its now
/// when the advance began): the sandbox's time in it is `base` plus its offset, and moving to a
/// time sets the offset to that time minus `base`. So `{seconds: n}` adds exactly `n` seconds to
/// the offset, however long the walk takes by the wall clock.
enum Scope<'a> {
    All,
    One { tenant: &'a Arc<Tenant>, base: Timestamp },
}

/// How far a sandbox's clock advance goes.
#[derive(Clone, Copy, Debug)]
pub enum SandboxAdvance {
    /// This many seconds further.
    By(i64),
    /// To this time of the sandbox (no move if it is not ahead).
    To(Timestamp),
}

impl Scope<'_> {
    fn tenants(&self, world: &World) -> Vec<Arc<Tenant>> {
        match self {
            Scope::All => world.tenants(),
            Scope::One { tenant, .. } => vec![Arc::clone(tenant)],
        }
    }

    /// What to add to a time of the scope to get `tenant`'s time.
    fn shift(&self, tenant: &Tenant) -> i64 {
        match self {
            Scope::All => tenant.clock_offset_micros(),
            Scope::One { .. } => 0,
        }
    }

    fn in_tenant(&self, tenant: &Tenant, t: Timestamp) -> Timestamp {
        Timestamp(t.micros().saturating_add(self.shift(tenant)))
    }

    fn in_scope(&self, tenant: &Tenant, t: Timestamp) -> Timestamp {
        Timestamp(t.micros().saturating_sub(self.shift(tenant)))
    }

    fn now(&self, world: &World) -> Timestamp {
        match self {
            Scope::All => world.clock.now(),
            Scope::One { tenant, base } => Timestamp(base.micros().saturating_add(tenant.clock_offset_micros())),
        }
    }

    fn move_to(&self, world: &World, to: Timestamp) -> Timestamp {
        match self {
            Scope::All => world.clock.advance_to(to),
            Scope::One { tenant, base } => {
                world.advance_tenant_offset(tenant, to.micros().saturating_sub(base.micros()));
                self.now(world)
            }
        }
    }

    fn expire(&self, world: &World) {
        match self {
            Scope::All => world.expire_in(None),
            Scope::One { tenant, .. } => world.expire_in(Some(tenant)),
        }
    }

    fn run_due(&self, world: &World, tenants: &[Arc<Tenant>]) {
        let now = self.now(world);
        for t in tenants {
            world.run_due_in(t, self.in_tenant(t, now));
        }
    }
}

/// Sends webhook deliveries.
#[derive(Debug)]
pub struct Dispatcher {
    world: Arc<World>,
    settings: WebhookSettings,
    client: reqwest::Client,
    wake: Notify,
    turn: Mutex<()>,
    /// Clock advances waiting for the turn: the background loop claims nothing new meanwhile.
    advancing: AtomicUsize,
    /// When the background loop last dropped what expired.
    last_expiry: parking_lot::Mutex<Instant>,
    /// Where the next claim starts in the list of sandboxes (so none is always first).
    rotor: AtomicUsize,
    in_flight: AtomicU64,
    attempts: AtomicU64,
    /// Attempts by outcome: succeeded (2xx), failed, not sent (see [`Dispatcher::attempt_outcomes`]).
    outcomes: [AtomicU64; 3],
    unreachable: Unreachable,
}

impl Dispatcher {
    /// A dispatcher over `world`.
    pub fn new(world: Arc<World>, settings: WebhookSettings) -> Dispatcher {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("twh-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        // Deterministic mode: nothing wall-clock in what attempts record (no cool-down, whose
        // notes say how long ago a connect failed; no durations).
        let cool_down = if world.ids.seed().is_some() { Duration::ZERO } else { settings.connect_cool_down };
        let unreachable = Unreachable { failed: Default::default(), cool_down };
        Dispatcher {
            world,
            settings,
            client,
            wake: Notify::new(),
            turn: Mutex::new(()),
            advancing: AtomicUsize::new(0),
            rotor: AtomicUsize::new(0),
            last_expiry: parking_lot::Mutex::new(Instant::now()),
            in_flight: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            outcomes: Default::default(),
            unreachable,
        }
    }

    /// An attempt's duration, in milliseconds (0 in deterministic mode, where bodies carry
    /// nothing of the wall clock).
    fn elapsed_ms(&self, started: Instant) -> u64 {
        if self.world.ids.seed().is_some() { 0 } else { started.elapsed().as_millis() as u64 }
    }

    /// Tells the background loop that deliveries may be due.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The default retry schedule.
    pub fn schedule(&self) -> &[u64] {
        &self.settings.retry_schedule_seconds
    }

    /// Current counters.
    pub fn stats(&self) -> DispatchStats {
        let waiting = self.world.tenants().iter().map(|t| t.state.lock().webhooks.waiting() as u64).sum();
        DispatchStats {
            waiting,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            batch_max: self.settings.batch_max as u64,
            concurrency: self.settings.concurrency as u64,
            attempts: self.attempts.load(Ordering::Relaxed),
        }
    }

    /// Attempts made since start by outcome, for `/metrics`: `[succeeded, failed, not_sent]`.
    /// Succeeded: a 2xx answer; failed: any other answer, a timeout or a connection error;
    /// not sent: refused without traffic (`--webhook-loopback-only`, or a URL cooling down after
    /// a failed connection).
    pub fn attempt_outcomes(&self) -> [u64; 3] {
        self.outcomes.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    /// The background loop; returns when `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.wake.notified() => {
                    // Let the commits right behind this one join the batch.
                    tokio::select! {
                        _ = tokio::time::sleep(WAKE_COALESCE) => {}
                        _ = stop.changed() => return,
                    }
                }
                _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            let _turn = self.turn.lock().await;
            self.sweep();
            if !self.pump(&mut stop).await {
                return;
            }
        }
    }

    /// The background loop's sending: keeps up to [`WebhookSettings::concurrency`] attempts of
    /// each sandbox (and [`WebhookSettings::batch_max`] in all) in flight, claiming again as soon
    /// as one finishes or a commit wakes the loop, never waiting for a whole batch; so a receiver
    /// that never answers holds its own sandbox's slots, not another sandbox's delivery. Returns
    /// when nothing is in flight and nothing more can be claimed, or a clock advance waits for
    /// the turn (after what is in flight finished); false when `stop` turned true (attempts in
    /// flight are dropped unrecorded: their deliveries are due again after a restart).
    async fn pump(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut running = FuturesUnordered::new();
        // Attempts in flight by sandbox (keyed by the tenant's address, held alive by them).
        let mut held: HashMap<usize, usize> = HashMap::new();
        let mut claim = true;
        let mut last_claim = Instant::now() - WAKE_COALESCE;
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        loop {
            let room = self.settings.batch_max.saturating_sub(running.len());
            let can_claim = room > 0 && self.advancing.load(Ordering::Acquire) == 0;
            if claim && can_claim && last_claim.elapsed() >= WAKE_COALESCE {
                claim = false;
                last_claim = Instant::now();
                let until = self.world.clock.now();
                for (tenant, tag, c) in self.claim(&Scope::All, until, true, room, &held) {
                    *held.entry(tenant_key(&tenant)).or_default() += 1;
                    running.push(self.attempt(tenant, tag, c, false));
                }
            }
            // A claim waits a few milliseconds after the last one, so a stream of commits and
            // finished attempts makes batches, not one pass over the sandboxes each.
            let pending = claim && can_claim;
            if running.is_empty() && !pending {
                return true;
            }
            let coalesce = tokio::time::sleep_until((last_claim + WAKE_COALESCE).into());
            let sweep = tokio::time::sleep_until(next_sweep.into());
            tokio::select! {
                Some(f) = running.next(), if !running.is_empty() => {
                    // What has finished meanwhile is recorded with it, under one lock acquisition.
                    let mut batch = vec![f];
                    while batch.len() < RECORD_BATCH_MAX {
                        match running.next().now_or_never() {
                            Some(Some(f)) => batch.push(f),
                            _ => break,
                        }
                    }
                    for f in &batch {
                        let key = tenant_key(&f.tenant);
                        if let Some(n) = held.get_mut(&key) {
                            *n -= 1;
                            if *n == 0 {
                                held.remove(&key);
                            }
                        }
                    }
                    self.record(batch);
                    claim = true;
                }
                _ = self.wake.notified() => claim = true,
                _ = coalesce, if pending => {}
                _ = sweep => {
                    next_sweep = Instant::now() + SWEEP_INTERVAL;
                    self.sweep();
                    claim = true;
                }
                _ = stop.changed() => return false,
            }
        }
    }

    /// Runs the period ends and midnights real time has reached and, once every
    /// [`EXPIRE_INTERVAL`], drops what expired (idempotency records, keys past their grace
    /// period), each sandbox's by its own clock: they are freed as time passes, not only when a
    /// clock advance walks over them.
    fn sweep(&self) {
        self.world.run_due();
        let mut last = self.last_expiry.lock();
        if last.elapsed() >= EXPIRE_INTERVAL {
            *last = Instant::now();
            drop(last);
            self.world.expire();
        }
    }

    /// One attempt of a claimed delivery, as a future that yields it finished.
    async fn attempt(&self, tenant: Arc<Tenant>, tag: String, c: Claimed, at_due_time: bool) -> Finished {
        let at = if at_due_time { c.due } else { tenant.now(&self.world.clock) };
        let result = self.send(&c).await;
        Finished { tenant, tag, delivery: c.delivery, at, result }
    }

    /// Moves the emulator clock (so every sandbox's) to `target`, running everything due on the
    /// way in time order: webhook attempts, period ends (invoices), nightly reconciliations,
    /// expiries.
    pub async fn advance_to(&self, target: Timestamp) -> Timestamp {
        let _turn = self.take_turn().await;
        let now = self.advance(&Scope::All, target).await;
        self.world.store.clock_moved(self.world.clock.offset_micros(), now);
        now
    }

    /// Moves the clock of `tenant` alone (see [`SandboxAdvance`]), running what falls due in it
    /// on the way, as [`Dispatcher::advance_to`] does for all. Returns its new now.
    pub async fn advance_sandbox(&self, tenant: &Arc<Tenant>, how: SandboxAdvance) -> Timestamp {
        let _turn = self.take_turn().await;
        let scope = Scope::One { tenant, base: self.world.clock.now() };
        let now = scope.now(&self.world);
        let target = match how {
            SandboxAdvance::By(seconds) => now.plus_seconds(seconds),
            SandboxAdvance::To(to) => to.max(now),
        };
        self.advance(&scope, target).await;
        tenant.now(&self.world.clock)
    }

    /// Takes the turn for a clock advance: the background loop stops claiming, lets what it has
    /// in flight finish and hands over.
    async fn take_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.advancing.fetch_add(1, Ordering::AcqRel);
        self.wake();
        let turn = self.turn.lock().await;
        self.advancing.fetch_sub(1, Ordering::AcqRel);
        turn
    }

    /// The walk of a clock advance (see the module docs); `target` is a time of `scope`.
    async fn advance(&self, scope: &Scope<'_>, target: Timestamp) -> Timestamp {
        let world = &*self.world;
        let tenants = scope.tenants(world);
        for t in &tenants {
            t.state.lock().billing.skip_nightly_backlog(scope.in_tenant(t, target));
        }
        loop {
            let hook = tenants
                .iter()
                .filter_map(|t| t.state.lock().webhooks.next_due().map(|due| scope.in_scope(t, due)))
                .min();
            let boundary = tenants.iter().map(|t| scope.in_scope(t, t.state.lock().billing.next_due())).min();
            let Some(next) = [hook, boundary].into_iter().flatten().min().filter(|t| *t <= target) else { break };
            if boundary == Some(next) {
                scope.move_to(world, next);
                scope.expire(world);
                scope.run_due(world, &tenants);
                continue;
            }
            let mut step_end = Timestamp(next.micros().saturating_add(ADVANCE_STEP_MICROS)).min(target);
            if let Some(b) = boundary {
                step_end = step_end.min(Timestamp(b.micros() - 1));
            }
            scope.move_to(world, step_end);
            scope.expire(world);
            while self.dispatch(scope, step_end, true).await > 0 {}
        }
        let now = scope.move_to(world, target);
        scope.expire(world);
        scope.run_due(world, &tenants);
        now
    }

    /// Claims and sends one batch of deliveries due at or before `until` (a time of `scope`);
    /// returns how many.
    async fn dispatch(&self, scope: &Scope<'_>, until: Timestamp, at_due_time: bool) -> usize {
        // No cool-down during a clock advance: its attempts stand for moments hours apart.
        let claimed = self.claim(scope, until, !at_due_time, self.settings.batch_max, &HashMap::new());
        let count = claimed.len();
        let mut finished = futures::stream::iter(claimed)
            .map(|(tenant, tag, c)| self.attempt(tenant, tag, c, at_due_time))
            .buffer_unordered(self.settings.concurrency.max(1));
        let mut batch = Vec::new();
        while let Some(f) = finished.next().await {
            batch.push(f);
            // What has finished meanwhile is recorded with it, under one lock acquisition.
            while batch.len() < RECORD_BATCH_MAX {
                match finished.next().now_or_never() {
                    Some(Some(f)) => batch.push(f),
                    _ => break,
                }
            }
            self.record(std::mem::take(&mut batch));
        }
        count
    }

    /// Claims up to `room` deliveries due at or before `until` (a time of `scope`) across
    /// tenants, fairly: in rounds, each tenant with deliveries due taking an equal share of what
    /// is left (at most [`CLAIM_CHUNK`] per acquisition of its lock), starting at a different
    /// tenant each time, and no tenant past [`WebhookSettings::concurrency`] in flight counting
    /// `held` (its attempts already in flight). `cool_down`: those to a URL whose cool-down lasts
    /// will not be sent (see [`WebhookSettings::connect_cool_down`]).
    fn claim(
        &self,
        scope: &Scope<'_>,
        until: Timestamp,
        cool_down: bool,
        room: usize,
        held: &HashMap<usize, usize>,
    ) -> Vec<(Arc<Tenant>, String, Claimed)> {
        let mut claimed: Vec<(Arc<Tenant>, String, Claimed)> = Vec::new();
        let mut tenants = scope.tenants(&self.world);
        if tenants.is_empty() {
            return claimed;
        }
        let start = self.rotor.fetch_add(1, Ordering::Relaxed) % tenants.len();
        tenants.rotate_left(start);
        let cap = self.settings.concurrency.max(1);
        let mut taken = vec![0usize; tenants.len()];
        let mut active: Vec<usize> = (0..tenants.len()).collect();
        while !active.is_empty() && claimed.len() < room {
            let share = ((room - claimed.len()) / active.len()).clamp(1, CLAIM_CHUNK);
            let mut again = Vec::new();
            for i in active {
                let left = room - claimed.len();
                if left == 0 {
                    break;
                }
                let tenant = &tenants[i];
                let busy = held.get(&tenant_key(tenant)).copied().unwrap_or(0) + taken[i];
                let want = share.min(left).min(cap.saturating_sub(busy));
                if want == 0 {
                    continue;
                }
                let (batch, more_due) = self.claim_from(scope, tenant, until, want, cool_down);
                taken[i] += batch.len();
                if batch.len() == want && more_due {
                    again.push(i);
                }
                claimed.extend(batch);
            }
            active = again;
        }
        claimed
    }

    /// Claims up to `want` deliveries of one tenant under one acquisition of its lock; says
    /// whether more are due.
    #[allow(clippy::type_complexity)]
    fn claim_from(
        &self,
        scope: &Scope<'_>,
        tenant: &Arc<Tenant>,
        until: Timestamp,
        want: usize,
        cool_down: bool,
    ) -> (Vec<(Arc<Tenant>, String, Claimed)>, bool) {
        let until = scope.in_tenant(tenant, until);
        let mut guard = tenant.state.lock();
        let state = &mut *guard;
        if state.webhooks.next_due().is_none_or(|t| t > until) {
            return (Vec::new(), false);
        }
        let tag = state.ledger.tag.clone();
        let plans = &self.world.settings.plans;
        let allowance = plans
            .get(state.sandbox.plan)
            .hard_quota(Meter::WebhookAttempts)
            .map(|q| usize::try_from(state.usage.remaining(until, Meter::WebhookAttempts, q)).unwrap_or(usize::MAX));
        let limit = allowance.map_or(want, |a| a.min(want));
        let send = |url: &str| !(cool_down && self.unreachable.cooling(url));
        let batch = state.webhooks.claim_due(&state.ledger, until, limit, send);
        state.usage.claim_attempts(batch.len() as u64);
        let more_due = state.webhooks.next_due().is_some_and(|t| t <= until);
        if allowance.is_some_and(|a| a < want) && more_due {
            // The quota is used up: what is due waits for the next period.
            let now = tenant.now(&self.world.clock);
            let (movements, events) = (state.ledger.movement_count(), state.ledger.event_count());
            let period_end = state.usage.period_end(until);
            state.webhooks.defer_due(until, period_end);
            state.quota_exceeded(Meter::WebhookAttempts, plans, now);
            self.world.settle(&tenant.id, state, movements, events, now);
        }
        drop(guard);
        (batch.into_iter().map(|c| (tenant.clone(), tag.clone(), c)).collect(), more_due)
    }

    /// Makes one attempt (or not, if it was claimed as one not to send).
    async fn send(&self, c: &Claimed) -> AttemptResult {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if self.settings.loopback_only && !is_loopback(&c.url) {
            self.outcomes[2].fetch_add(1, Ordering::Relaxed);
            return AttemptResult {
                status_code: None,
                duration_ms: 0,
                error: Some("destination not allowed: this emulator sends webhooks to loopback hosts only".to_owned()),
                retry_after_seconds: None,
            };
        }
        let Some(event) = &c.event else {
            self.outcomes[2].fetch_add(1, Ordering::Relaxed);
            return self.unreachable.not_sent(&c.url);
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let payload = serde_json::to_vec(event).unwrap_or_default();
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let secrets: Vec<&twh_webhooks::Secret> = c.secrets.iter().collect();
        let signature = twh_webhooks::signature_header(&secrets, &event.id, unix, &payload);
        let started = Instant::now();
        let sent = self
            .client
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", unix.to_string())
            .header("webhook-signature", signature)
            .body(payload)
            .send()
            .await;
        let result = match sent {
            Ok(mut response) => {
                self.unreachable.connected(&c.url);
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                // Read (a bounded part of) the body so the connection can be reused.
                let mut read = 0;
                while let Ok(Some(chunk)) = response.chunk().await {
                    read += chunk.len();
                    if read > RESPONSE_BODY_MAX_BYTES {
                        break;
                    }
                }
                AttemptResult {
                    status_code: Some(status),
                    duration_ms: self.elapsed_ms(started),
                    error: (!(200..300).contains(&status)).then(|| format!("receiver answered {status}")),
                    retry_after_seconds: retry_after,
                }
            }
            Err(e) => {
                // A timeout (connecting, or waiting for the answer) starts the cool-down like a
                // failed connect: a receiver that never answers would otherwise tie up a slot
                // for a whole timeout with every attempt.
                let error = if e.is_timeout() {
                    let error = format!("timed out after {} ms", self.settings.timeout.as_millis());
                    self.unreachable.failed(&c.url, &error);
                    error
                } else if e.is_connect() {
                    let error = format!("could not connect: {e}");
                    self.unreachable.failed(&c.url, &error);
                    error
                } else {
                    e.to_string()
                };
                AttemptResult {
                    status_code: None,
                    duration_ms: self.elapsed_ms(started),
                    error: Some(error),
                    retry_after_seconds: None,
                }
            }
        };
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let succeeded = result.status_code.is_some_and(|s| (200..300).contains(&s));
        self.outcomes[usize::from(!succeeded)].fetch_add(1, Ordering::Relaxed);
        result
    }

    /// Records finished attempts, each tenant's under one acquisition of its lock.
    fn record(&self, mut batch: Vec<Finished>) {
        while let Some(first) = batch.first() {
            let tenant = first.tenant.clone();
            let (mine, others): (Vec<Finished>, Vec<Finished>) =
                batch.into_iter().partition(|f| Arc::ptr_eq(&f.tenant, &tenant));
            self.record_tenant(&tenant, mine);
            batch = others;
        }
    }

    fn record_tenant(&self, tenant: &Tenant, finished: Vec<Finished>) {
        // What needs no lock is prepared before taking it.
        let usage_ids: Vec<String> = finished.iter().map(|f| ids::format("msg", &f.tag, f.delivery)).collect();
        let schedule = &self.settings.retry_schedule_seconds;
        let mut guard = tenant.state.lock();
        let state = &mut *guard;
        let now = tenant.now(&self.world.clock);
        let (movements, before) = (state.ledger.movement_count(), state.ledger.event_count());
        for (f, usage_id) in finished.into_iter().zip(&usage_ids) {
            // Metered where recorded: the attempt was made, even if the sandbox was reset meanwhile.
            state.usage.record_attempt(f.at, usage_id);
            // Unless the sandbox was reset meanwhile (then the delivery is gone).
            if state.ledger.tag == f.tag {
                let ids = &self.world.ids;
                let events = state.webhooks.record(&state.ledger, f.delivery, f.at, f.result, schedule, ids);
                for (kind, data) in events {
                    state.ledger.emit_snapshot(kind, data, now);
                }
            }
        }
        // The attempts, their usage and their events go to the store like any other change
        // (fanning out the new events on the way).
        let created = self.world.settle(&tenant.id, state, movements, before, now);
        drop(guard);
        drop(usage_ids);
        if created {
            self.wake();
        }
    }
}

/// A tenant's identity while an `Arc` of it is held (the dispatcher's in-flight counts).
fn tenant_key(tenant: &Arc<Tenant>) -> usize {
    Arc::as_ptr(tenant) as usize
}

/// Whether a URL's host is a loopback address or `localhost`.
fn is_loopback(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts() {
        assert!(super::is_loopback("http://127.0.0.1:9/x"));
        assert!(super::is_loopback("http://127.8.9.10/"));
        assert!(super::is_loopback("http://localhost:80/"));
        assert!(super::is_loopback("http://[::1]:80/"));
        assert!(!super::is_loopback("http://10.0.0.1/"));
        assert!(!super::is_loopback("https://example.com/"));
        assert!(!super::is_loopback("http://127.0.0.1.example.com/"));
        assert!(!super::is_loopback("not a url"));
    }
}
