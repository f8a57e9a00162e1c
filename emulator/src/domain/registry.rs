//! Every tenant of the emulator, their API keys, and the seam to storage.
//!
//! Tenants are independent: each has its own lock, so two sandboxes never wait on each other.
//! API keys are read on every request and change rarely, so they sit in a copy-on-write map
//! (`ArcSwap`): the read path takes no lock at all. The map is persistent ([`KeyMap`]): a change
//! (a sandbox created or deleted, a key rolled or expired) copies the few tree nodes it touches
//! and shares the rest, so it costs O(log n) in the number of keys instead of a copy of them
//! all, and the store is handed the secrets that changed rather than two maps to compare.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use super::billing::{Billing, Meter, Plans, QuotaExceeded, Usage, next_midnight};
use super::error::DomainError;
use super::idempotency::{Digest128, IdempotencyStore, Record};
use super::jobs::{CHUNK_ROWS, Jobs};
use super::ledger::{EventType, Ledger};
use super::model::*;
use super::reconcile::{ReconciliationTrigger, Reconciliations};
use super::validate;
use super::webhooks::Webhooks;
use crate::clock::{Clock, DETERMINISTIC_START, Timestamp};
use crate::ids::{Generator, Stream};

/// Version of the exported state format.
pub const STATE_FORMAT_VERSION: u32 = 1;
/// Most draws of a sandbox id or key before one not yet taken is used (a random draw repeats
/// with negligible odds; a seeded one repeats an earlier run's).
const ID_DRAWS_MAX: usize = 16;
/// Most sandboxes one emulator holds.
pub const SANDBOX_COUNT_MAX: usize = 10_000;
/// Most secret keys of one sandbox: its live key and the rolled ones in their grace period (a
/// roll past it ends the grace period of the oldest). Its restricted key is one more.
pub const SECRET_KEYS_MAX: usize = 10;

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// `sk_test_`: everything in its tenant.
    Secret,
    /// `rk_test_`: reads only.
    Restricted,
}

/// An API key's grant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyGrant {
    /// `key_…`
    pub id: String,
    /// The key itself.
    pub secret: String,
    /// The tenant.
    pub tenant_id: String,
    /// What it may do.
    pub kind: KeyKind,
    /// When it stops working (a rolled key's grace period), if ever.
    pub expires_at: Option<Timestamp>,
}

/// The API keys, in persistent maps (`imbl`: hash array mapped tries whose nodes are shared
/// between versions, so a clone is O(1) and a change copies only the path to what it changes):
/// grants by secret (what every request looks up; a grant is shared, not copied, with each
/// request it authenticates), each tenant's secrets (what rolls and deletes change), and the
/// secrets that have an end (what expiry looks at).
#[derive(Clone, Debug, Default)]
pub struct KeyMap {
    by_secret: imbl::HashMap<String, Arc<KeyGrant>>,
    by_tenant: imbl::HashMap<String, Vec<String>>,
    ending: imbl::HashSet<String>,
}

impl KeyMap {
    /// The grant of `secret`.
    pub fn get(&self, secret: &str) -> Option<&Arc<KeyGrant>> {
        self.by_secret.get(secret)
    }

    /// Whether `secret` is a key.
    pub fn contains_key(&self, secret: &str) -> bool {
        self.by_secret.contains_key(secret)
    }

    /// Every grant, in no order.
    pub fn values(&self) -> impl Iterator<Item = &Arc<KeyGrant>> {
        self.by_secret.values()
    }

    /// Every key and its grant, in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<KeyGrant>)> {
        self.by_secret.iter()
    }

    /// The grants of `tenant`.
    pub fn of_tenant<'a>(&'a self, tenant: &str) -> impl Iterator<Item = &'a Arc<KeyGrant>> + 'a {
        self.by_tenant.get(tenant).into_iter().flatten().filter_map(|s| self.by_secret.get(s.as_str()))
    }

    /// The grants with an end (rolled keys in their grace period).
    pub fn ending(&self) -> impl Iterator<Item = &Arc<KeyGrant>> {
        self.ending.iter().filter_map(|s| self.by_secret.get(s.as_str()))
    }

    /// Adds `grant`, or replaces the grant of its secret.
    fn insert(&mut self, grant: Arc<KeyGrant>) {
        let secret = grant.secret.clone();
        if grant.expires_at.is_some() {
            self.ending.insert(secret.clone());
        } else {
            self.ending.remove(&secret);
        }
        let secrets = self.by_tenant.entry(grant.tenant_id.clone()).or_default();
        if !secrets.contains(&secret) {
            secrets.push(secret.clone());
        }
        self.by_secret.insert(secret, grant);
    }

    /// Removes the key `secret`.
    fn remove(&mut self, secret: &str) -> Option<Arc<KeyGrant>> {
        let grant = self.by_secret.remove(secret)?;
        self.ending.remove(secret);
        if let Some(secrets) = self.by_tenant.get_mut(grant.tenant_id.as_str()) {
            secrets.retain(|s| s != secret);
            if secrets.is_empty() {
                self.by_tenant.remove(grant.tenant_id.as_str());
            }
        }
        Some(grant)
    }
}

/// A change to the [`KeyMap`] under way: what is changed, and which secrets (for the store).
struct KeyEdit {
    keys: KeyMap,
    changed: Vec<String>,
}

impl KeyEdit {
    fn insert(&mut self, grant: Arc<KeyGrant>) {
        self.changed.push(grant.secret.clone());
        self.keys.insert(grant);
    }

    fn remove(&mut self, secret: &str) {
        if self.keys.remove(secret).is_some() {
            self.changed.push(secret.to_owned());
        }
    }

    /// Every key removed.
    fn clear(&mut self) {
        self.changed.extend(self.keys.by_secret.keys().cloned());
        self.keys = KeyMap::default();
    }

    /// The secrets changed, each once.
    fn finish(mut self) -> (KeyMap, Vec<String>) {
        self.changed.sort_unstable();
        self.changed.dedup();
        (self.keys, self.changed)
    }
}

/// One tenant's state, all under one lock: what commits together lives together.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantState {
    /// Its description.
    pub sandbox: Sandbox,
    /// Its ledger (and idempotency records).
    pub ledger: Ledger,
    /// Its webhook endpoints and deliveries.
    #[serde(default)]
    pub webhooks: Webhooks,
    /// Its billing period, nightly schedule and invoices.
    #[serde(default)]
    pub billing: Billing,
    /// Its reconciliation runs.
    #[serde(default)]
    pub reconciliations: Reconciliations,
    /// Its import jobs.
    #[serde(default)]
    pub jobs: Jobs,
    /// How far this sandbox's own clock runs ahead of the emulator clock, in microseconds
    /// (`POST /_emulator/sandboxes/{id}/clock/advance`; only grows). The live value is
    /// [`Tenant::clock_offset_micros`]; this copy is what exports and the durable store keep.
    #[serde(default)]
    pub clock_offset_micros: i64,
    /// Its metered usage. Exported beside the tenants ([`StateExport::usage`]), not inside them:
    /// it changes with every request, reads included, and the tenants' export is compared
    /// across reads.
    #[serde(skip)]
    pub usage: Usage,
    /// What the durable store holds of this tenant (`None` in memory-only mode).
    #[serde(skip)]
    pub persisted: Option<Box<Persisted>>,
    /// Set, under the tenant's lock, when the tenant leaves the world (deleted, reset away,
    /// replaced by an import). A commit of a retired tenant is not written: work that held the
    /// tenant from before (a webhook attempt in flight, a job chunk, a usage flush) finishes
    /// in memory only, so the store never holds rows of a sandbox it has no state for.
    #[serde(skip)]
    pub retired: bool,
}

/// What the durable store holds of a tenant: how far its append-only parts are written, and a
/// summary of the rest, so that a commit writes only what changed.
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    /// The ledger incarnation written (a sandbox reset draws a new one: then everything is
    /// written again).
    pub tag: String,
    /// Movements written.
    pub movements: u64,
    /// Events written.
    pub events: usize,
    /// [`TenantState::rest_stamp`] when the rest was last written.
    pub rest_stamp: u64,
    /// Usage journal entries written since the usage was last written whole.
    pub usage_ops: u64,
}

impl TenantState {
    /// Starts noting changes for the durable store (items, locations, deliveries, usage).
    pub fn track(&mut self) {
        self.ledger.track_catalog();
        self.webhooks.track();
        self.usage.track();
    }

    /// A cheap summary of everything a commit does not write piecewise (the sandbox, skews,
    /// webhook endpoints, billing, reconciliations, jobs): when it changes, the durable store
    /// writes that part whole.
    pub fn rest_stamp(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = std::hash::DefaultHasher::new();
        h.write(self.sandbox.name.as_bytes());
        h.write_u8(self.sandbox.plan as u8);
        h.write(self.ledger.tag.as_bytes());
        h.write_u64(self.ledger.corruptions());
        self.webhooks.endpoints_stamp(&mut h);
        self.billing.stamp(&mut h);
        self.reconciliations.stamp(&mut h);
        self.jobs.stamp(&mut h);
        h.write_i64(self.clock_offset_micros);
        h.finish()
    }

    /// `POST /v1/sandbox/reset`: an empty inventory (new ids, from the new `tag`), no endpoints,
    /// runs or jobs; the plan, usage, invoices and the sandbox's clock stay (billing is about
    /// what happened).
    pub fn reset(&mut self, tag: String) {
        self.ledger = Ledger::with_tag(tag);
        self.webhooks = Webhooks::default();
        self.reconciliations = Reconciliations::default();
        self.jobs = Jobs::default();
    }

    /// Writes the one `usage.quota_exceeded` event of `meter` for the period of `now`, unless
    /// it was written already this period.
    pub fn quota_exceeded(&mut self, meter: Meter, plans: &Plans, now: Timestamp) {
        if !self.usage.notify(now, meter) {
            return;
        }
        let plan = plans.get(self.sandbox.plan);
        let (period_start, period_end) = self.usage.period_bounds(now);
        let data = QuotaExceeded { meter, quota: plan.quotas.get(meter), plan: plan.id, period_start, period_end };
        self.ledger.emit_snapshot(EventType::UsageQuotaExceeded, serde_json::to_value(data).unwrap_or_default(), now);
    }

    /// Runs what fell due at or before `now`, in time order: period ends (the invoice, its
    /// `invoice.created`) and nightly reconciliations (`reconciliation.completed`).
    pub fn run_due(&mut self, plans: &Plans, now: Timestamp) {
        self.billing.skip_nightly_backlog(now);
        loop {
            let period_end = self.billing.period_end();
            let nightly = self.billing.next_nightly;
            if period_end.min(nightly) > now {
                return;
            }
            if period_end <= nightly {
                let invoice = self.billing.issue_invoice(&mut self.usage, plans.get(self.sandbox.plan), now);
                let data = serde_json::to_value(invoice).unwrap_or_default();
                self.ledger.emit_snapshot(EventType::InvoiceCreated, data, now);
            } else {
                self.billing.next_nightly = next_midnight(nightly);
                if let Ok(run) = self.reconciliations.run(&self.ledger, None, ReconciliationTrigger::Nightly, now) {
                    let data = serde_json::to_value(run).unwrap_or_default();
                    self.ledger.emit_snapshot(EventType::ReconciliationCompleted, data, now);
                }
            }
        }
    }
}

/// A tenant.
#[derive(Debug)]
pub struct Tenant {
    /// `sbx_…`
    pub id: String,
    /// Its state.
    pub state: Mutex<TenantState>,
    /// Its own clock's offset from the emulator clock, in microseconds (see
    /// [`TenantState::clock_offset_micros`]). An atomic outside the lock, so reading the
    /// sandbox's "now" costs one load more than the emulator clock's.
    clock_offset_micros: AtomicI64,
}

impl Tenant {
    /// A tenant with this state (its clock offset taken from it).
    pub fn new(id: String, state: TenantState) -> Tenant {
        let offset = state.clock_offset_micros;
        Tenant { id, state: Mutex::new(state), clock_offset_micros: AtomicI64::new(offset) }
    }

    /// How far its clock runs ahead of the emulator clock, in microseconds.
    pub fn clock_offset_micros(&self) -> i64 {
        self.clock_offset_micros.load(Ordering::Acquire)
    }

    /// Now by this sandbox's clock: the emulator clock's now plus its offset (monotonic, as
    /// both parts only grow).
    pub fn now(&self, clock: &Clock) -> Timestamp {
        Timestamp(clock.now().micros().saturating_add(self.clock_offset_micros()))
    }
}

/// What a committed change wrote, handed to the [`Store`] before it is acknowledged.
#[derive(Debug)]
pub struct Commit<'a> {
    /// The tenant.
    pub tenant_id: &'a str,
    /// Its state after the change (a durable store takes its change notes).
    pub state: &'a mut TenantState,
    /// The idempotency key whose record the change wrote, if any.
    pub idempotency_key: Option<Digest128>,
    /// Emulator time of the change.
    pub now: Timestamp,
}

/// Where committed state goes before a response is sent. The in-memory default keeps nothing
/// beyond the live state; the durable store ([`crate::store`]) queues each change here, inside
/// the tenant's critical section (so changes of a tenant are written in the order they were
/// made), and the response waits for the write ([`Store::ticket`], [`Store::wait`]).
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Persists (queues) a commit. An error fails the request with a 5xx.
    fn commit(&self, commit: Commit<'_>) -> std::io::Result<()>;
    /// A tenant was created with this state.
    fn tenant_created(&self, _tenant_id: &str, _state: &mut TenantState) {}
    /// Tenants were created with these states, and the API keys `changed` (secrets, each once)
    /// are now as in `after`, as one change (fixtures: all or none, on disk too).
    fn tenants_created(&self, tenants: &mut [(String, TenantState)], after: &KeyMap, changed: &[String]) {
        for (id, state) in tenants.iter_mut() {
            self.tenant_created(id, state);
        }
        self.keys_changed(after, changed);
    }
    /// A tenant was deleted.
    fn tenant_deleted(&self, _tenant_id: &str) {}
    /// The API keys `changed` (secrets, each once) are now as in `after` (a secret not in it
    /// was removed).
    fn keys_changed(&self, _after: &KeyMap, _changed: &[String]) {}
    /// A tenant-less idempotency record was written (`POST /v1/sandboxes`).
    fn global_record(&self, _key: Digest128, _record: &Record) {}
    /// The clock was moved.
    fn clock_moved(&self, _offset_micros: i64, _now: Timestamp) {}
    /// The whole state was replaced (reset, import).
    fn replaced(&self, _world: &World) {}
    /// Whether responses must wait for [`Store::wait`].
    fn is_durable(&self) -> bool {
        false
    }
    /// A ticket covering everything queued so far.
    fn ticket(&self) -> u64 {
        0
    }
    /// Resolves once everything up to `ticket` is durable.
    fn wait(&self, _ticket: u64) -> futures::future::BoxFuture<'static, std::io::Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
    /// Writes what is queued and stops (shutdown).
    fn close(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The default store: memory only.
#[derive(Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn commit(&self, _: Commit<'_>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Settings of the domain.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long idempotency records live, in seconds of emulator time.
    pub idempotency_ttl_seconds: i64,
    /// How long a rolled secret key keeps working, in seconds of emulator time.
    pub key_grace_seconds: i64,
    /// The plans offered (`free`, `pro`).
    pub plans: Plans,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { idempotency_ttl_seconds: 24 * 3600, key_grace_seconds: 24 * 3600, plans: Plans::default() }
    }
}

/// The whole emulator state.
#[derive(Debug)]
pub struct World {
    /// The emulator clock (each sandbox reads it plus its own offset: [`Tenant::now`]).
    pub clock: Clock,
    /// Where ids, keys, secrets and jitter come from ([`ids`]).
    pub ids: Generator,
    /// Settings.
    pub settings: Settings,
    /// Storage seam.
    pub store: Box<dyn Store>,
    tenants: RwLock<HashMap<String, Arc<Tenant>>>,
    keys: ArcSwap<KeyMap>,
    key_writer: Mutex<()>,
    /// Idempotency records of requests made without a tenant (`POST /v1/sandboxes`).
    pub global_idempotency: Mutex<IdempotencyStore>,
}

/// A tenant built whole outside the world, with its two keys, waiting for
/// [`World::add_tenants`] (fixtures).
#[derive(Debug)]
pub struct NewTenant {
    /// Its state.
    pub state: TenantState,
    /// Its secret key.
    pub secret: KeyGrant,
    /// Its restricted key.
    pub restricted: KeyGrant,
}

/// The exported state (`GET /_emulator/state`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateExport {
    /// Format version.
    pub format_version: u32,
    /// Emulator time when exported.
    pub now: Timestamp,
    /// Clock offset from the system clock, in microseconds.
    pub clock_offset_micros: i64,
    /// Every tenant.
    pub tenants: Vec<TenantState>,
    /// Every API key.
    pub keys: Vec<KeyGrant>,
    /// Every tenant's metered usage (rows of the kept periods).
    #[serde(default)]
    pub usage: Vec<TenantUsage>,
}

/// One tenant's usage in an export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TenantUsage {
    /// The tenant.
    pub tenant_id: String,
    /// Its usage.
    pub usage: Usage,
}

impl World {
    /// An empty world.
    pub fn new(settings: Settings, store: Box<dyn Store>) -> World {
        World {
            clock: Clock::new(),
            ids: Generator::system(),
            settings,
            store,
            tenants: RwLock::new(HashMap::new()),
            keys: ArcSwap::from_pointee(KeyMap::default()),
            key_writer: Mutex::new(()),
            global_idempotency: Mutex::new(IdempotencyStore::default()),
        }
    }

    /// Deterministic mode (`--deterministic SEED`): ids, keys, secrets and jitter from a
    /// generator seeded by `seed`, and a clock that starts at 2030-01-01T00:00:00Z and moves only
    /// when advanced.
    pub fn deterministic(mut self, seed: u64) -> World {
        self.clock = Clock::frozen(DETERMINISTIC_START);
        self.ids = Generator::seeded(seed);
        self
    }

    /// The grant of a key that works now (by its sandbox's clock).
    pub fn authenticate(&self, key: &str) -> Option<Arc<KeyGrant>> {
        let keys = self.keys.load();
        let grant = keys.get(key)?;
        if grant.expires_at.is_some_and(|t| t <= self.tenant_now(&grant.tenant_id)) {
            return None;
        }
        Some(grant.clone())
    }

    /// Now by the clock of the sandbox `id` (the emulator clock's for an unknown one).
    pub fn tenant_now(&self, id: &str) -> Timestamp {
        let offset = self.tenants.read().get(id).map_or(0, |t| t.clock_offset_micros());
        Timestamp(self.clock.now().micros().saturating_add(offset))
    }

    /// Raises the offset of `tenant`'s own clock to `offset_micros` (it never goes down), and
    /// hands the change to the store. What this makes due is run by the caller
    /// ([`crate::dispatch::Dispatcher::advance_sandbox`]).
    pub fn advance_tenant_offset(&self, tenant: &Tenant, offset_micros: i64) {
        let mut state = tenant.state.lock();
        if offset_micros > tenant.clock_offset_micros() {
            tenant.clock_offset_micros.store(offset_micros, Ordering::Release);
            state.clock_offset_micros = offset_micros;
            let (movements, events) = (state.ledger.movement_count(), state.ledger.event_count());
            let now = tenant.now(&self.clock);
            self.settle(&tenant.id, &mut state, movements, events, now);
        }
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<Arc<Tenant>> {
        self.tenants.read().get(id).cloned()
    }

    /// Every tenant.
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.tenants.read().values().cloned().collect()
    }

    /// Changes the keys under the key writer: `f` edits a clone (O(1), see [`KeyMap`]), the store
    /// is told which secrets changed, and readers see the new map from then on.
    fn edit_keys<T>(&self, f: impl FnOnce(&mut KeyEdit) -> T) -> T {
        let _writer = self.key_writer.lock();
        let mut edit = KeyEdit { keys: KeyMap::clone(&self.keys.load()), changed: Vec::new() };
        let out = f(&mut edit);
        let (next, changed) = edit.finish();
        if !changed.is_empty() {
            self.store.keys_changed(&next, &changed);
            self.keys.store(Arc::new(next));
        }
        out
    }

    /// Every API key.
    pub fn keys(&self) -> Arc<KeyMap> {
        self.keys.load_full()
    }

    /// `POST /v1/sandboxes`.
    pub fn create_sandbox(&self, req: CreateSandbox) -> Result<SandboxCreated, DomainError> {
        validate::create_sandbox(&req)?;
        if self.tenants.read().len() >= SANDBOX_COUNT_MAX {
            return Err(DomainError::validation(vec![FieldError::new(
                "name",
                format!("this emulator already holds {SANDBOX_COUNT_MAX} sandboxes; delete some"),
            )]));
        }
        let now = self.clock.now();
        // Drawn again if taken: a seeded generator (deterministic mode) repeats the ids of an
        // imported or recovered state made with the same seed.
        let fresh = |prefix: &str, len: usize, taken: &dyn Fn(&str) -> bool| {
            let mut id = self.ids.random(Stream::Ids, prefix, len);
            for _ in 0..ID_DRAWS_MAX {
                if !taken(&id) {
                    break;
                }
                id = self.ids.random(Stream::Ids, prefix, len);
            }
            id
        };
        let keys = self.keys.load();
        let key_taken = |k: &str| keys.contains_key(k);
        let sandbox = Sandbox {
            id: fresh("sbx_", 16, &|id| self.tenants.read().contains_key(id)),
            name: req.name.unwrap_or_else(|| "sandbox".to_owned()),
            plan: req.plan.unwrap_or_default(),
            created_at: now,
        };
        let mut ledger = Ledger::with_tag(self.ids.tag());
        if req.seed == Some(Seed::Demo) {
            seed_demo(&mut ledger, now)?;
        }
        // The seed's lines are metered like any other (so usage always agrees with the ledger).
        let mut usage = Usage::default();
        usage.add_lines(&mut None, now, "seed", ledger.lines_since(0));
        let secret = KeyGrant {
            id: self.ids.random(Stream::Ids, "key_", 16),
            secret: fresh("sk_test_", 32, &key_taken),
            tenant_id: sandbox.id.clone(),
            kind: KeyKind::Secret,
            expires_at: None,
        };
        let restricted = KeyGrant {
            id: self.ids.random(Stream::Ids, "key_", 16),
            secret: fresh("rk_test_", 32, &key_taken),
            tenant_id: sandbox.id.clone(),
            kind: KeyKind::Restricted,
            expires_at: None,
        };
        let created = SandboxCreated {
            id: sandbox.id.clone(),
            name: sandbox.name.clone(),
            plan: sandbox.plan,
            secret_key: secret.secret.clone(),
            restricted_key: restricted.secret.clone(),
            created_at: now,
        };
        drop(keys);
        let id = sandbox.id.clone();
        let mut state = TenantState {
            sandbox,
            ledger,
            webhooks: Webhooks::default(),
            billing: Billing::with_tag(now, self.ids.tag()),
            reconciliations: Reconciliations::default(),
            jobs: Jobs::default(),
            clock_offset_micros: 0,
            usage,
            persisted: None,
            retired: false,
        };
        self.store.tenant_created(&id, &mut state);
        let tenant = Arc::new(Tenant::new(id, state));
        self.tenants.write().insert(tenant.id.clone(), tenant);
        self.edit_keys(|keys| {
            keys.insert(Arc::new(secret));
            keys.insert(Arc::new(restricted));
        });
        Ok(created)
    }

    /// Adds tenants built whole (fixtures) and their keys, all or none: under the key writer,
    /// every key is checked against the keys in use (409 `key_taken`, naming
    /// `sandboxes[i].secret_key` by the tenant's position) and the count against
    /// [`SANDBOX_COUNT_MAX`] before anything changes; then the store takes them as one change and
    /// they are added. Nothing here can fail after the first change.
    pub fn add_tenants(&self, built: Vec<NewTenant>) -> Result<(), DomainError> {
        let _writer = self.key_writer.lock();
        let before = self.keys.load_full();
        for (i, t) in built.iter().enumerate() {
            for (field, g) in [("secret_key", &t.secret), ("restricted_key", &t.restricted)] {
                if before.contains_key(&g.secret) {
                    return Err(super::fixtures::key_taken(&format!("sandboxes[{i}].{field}"), "is in use"));
                }
            }
        }
        let count = self.tenants.read().len();
        if count + built.len() > SANDBOX_COUNT_MAX {
            return Err(DomainError::validation(vec![FieldError::new(
                "sandboxes",
                format!("this emulator holds {count} sandboxes and at most {SANDBOX_COUNT_MAX}; delete some"),
            )]));
        }
        let mut edit = KeyEdit { keys: KeyMap::clone(&before), changed: Vec::new() };
        let mut states = Vec::with_capacity(built.len());
        for t in built {
            edit.insert(Arc::new(t.secret));
            edit.insert(Arc::new(t.restricted));
            states.push((t.state.sandbox.id.clone(), t.state));
        }
        let (after, changed) = edit.finish();
        self.store.tenants_created(&mut states, &after, &changed);
        let mut tenants = self.tenants.write();
        for (id, state) in states {
            tenants.insert(id.clone(), Arc::new(Tenant::new(id, state)));
        }
        drop(tenants);
        self.keys.store(Arc::new(after));
        Ok(())
    }

    /// `DELETE /v1/sandbox`: the tenant and its keys are gone.
    pub fn delete_sandbox(&self, tenant_id: &str) {
        let Some(tenant) = self.tenant(tenant_id) else { return };
        let mut state = tenant.state.lock();
        state.retired = true;
        self.tenants.write().remove(tenant_id);
        self.store.tenant_deleted(tenant_id);
        drop(state);
        self.edit_keys(|keys| {
            let secrets: Vec<String> = keys.keys.of_tenant(tenant_id).map(|g| g.secret.clone()).collect();
            for secret in secrets {
                keys.remove(&secret);
            }
        });
    }

    /// `POST /v1/api-keys/roll` by the key `by`: a new secret key; the tenant's other secret keys
    /// expire after the grace period. `None` when `by` is not a live permanent secret key of the
    /// tenant (one in its grace period may not mint a fresh permanent key, or a leaked key could
    /// renew itself forever). Checked under the key writer, so two rolls by one key cannot both
    /// pass.
    pub fn roll_key(&self, tenant_id: &str, by: &str) -> Option<ApiKeyRolled> {
        let now = self.tenant_now(tenant_id);
        let expires = now.plus_seconds(self.settings.key_grace_seconds);
        let fresh = KeyGrant {
            id: self.ids.random(Stream::Ids, "key_", 16),
            secret: self.ids.random(Stream::Ids, "sk_test_", 32),
            tenant_id: tenant_id.to_owned(),
            kind: KeyKind::Secret,
            expires_at: None,
        };
        let out = ApiKeyRolled { secret_key: fresh.secret.clone(), previous_key_expires_at: expires };
        let permanent = self.edit_keys(|keys| {
            let permanent = keys
                .keys
                .get(by)
                .is_some_and(|g| g.tenant_id == tenant_id && g.kind == KeyKind::Secret && g.expires_at.is_none());
            if !permanent {
                return false;
            }
            let ending: Vec<Arc<KeyGrant>> = keys
                .keys
                .of_tenant(tenant_id)
                .filter(|g| g.kind == KeyKind::Secret)
                .map(|g| {
                    let mut g = KeyGrant::clone(g);
                    g.expires_at = Some(g.expires_at.map_or(expires, |t| t.min(expires)));
                    Arc::new(g)
                })
                .collect();
            for g in ending {
                keys.insert(g);
            }
            keys.insert(Arc::new(fresh));
            // At most SECRET_KEYS_MAX secret keys a sandbox: past it the grace period of the
            // oldest ends now (rolls within a grace period otherwise pile keys up).
            let mut graced: Vec<(Timestamp, String, String)> = keys
                .keys
                .of_tenant(tenant_id)
                .filter(|g| g.kind == KeyKind::Secret)
                .filter_map(|g| g.expires_at.map(|t| (t, g.id.clone(), g.secret.clone())))
                .collect();
            let excess = (graced.len() + 1).saturating_sub(SECRET_KEYS_MAX);
            if excess > 0 {
                graced.sort();
                for (_, _, secret) in graced.into_iter().take(excess) {
                    keys.remove(&secret);
                }
            }
            true
        });
        permanent.then_some(out)
    }

    /// Drops what expired by the clock (idempotency records, rolled keys), each sandbox's by its
    /// own clock.
    pub fn expire(&self) {
        self.expire_in(None);
    }

    /// [`World::expire`] for one sandbox only (`Some(id)`), or for all of them and the records
    /// kept outside any sandbox (`None`).
    pub fn expire_in(&self, only: Option<&Tenant>) {
        let tenants = match only {
            Some(t) => self.tenant(&t.id).into_iter().collect(),
            None => self.tenants(),
        };
        let mut nows = HashMap::with_capacity(tenants.len());
        for t in &tenants {
            let now = t.now(&self.clock);
            t.state.lock().ledger.idempotency.purge_expired(now);
            nows.insert(t.id.as_str(), now);
        }
        if only.is_none() {
            self.global_idempotency.lock().purge_expired(self.clock.now());
        }
        let expired =
            |g: &KeyGrant| g.expires_at.is_some_and(|t| nows.get(g.tenant_id.as_str()).is_some_and(|n| t <= *n));
        // Only the keys with an end are looked at (rolled ones in their grace period).
        let ended: Vec<String> = self.keys.load().ending().filter(|g| expired(g)).map(|g| g.secret.clone()).collect();
        if !ended.is_empty() {
            self.edit_keys(|keys| {
                for secret in &ended {
                    // Still ended: a key is never given a later end.
                    if keys.keys.get(secret).is_some_and(|g| expired(g)) {
                        keys.remove(secret);
                    }
                }
            });
        }
    }

    /// `GET /_emulator/state`.
    pub fn export(&self) -> StateExport {
        let mut tenants: Vec<TenantState> = self.tenants().iter().map(|t| t.state.lock().clone()).collect();
        tenants.sort_by(|a, b| a.sandbox.created_at.cmp(&b.sandbox.created_at).then(a.sandbox.id.cmp(&b.sandbox.id)));
        let usage = tenants
            .iter_mut()
            .map(|t| TenantUsage { tenant_id: t.sandbox.id.clone(), usage: std::mem::take(&mut t.usage) })
            .collect();
        let mut keys: Vec<KeyGrant> = self.keys.load().values().map(|g| KeyGrant::clone(g)).collect();
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        StateExport {
            format_version: STATE_FORMAT_VERSION,
            now: self.clock.now(),
            clock_offset_micros: self.clock.offset_micros(),
            tenants,
            keys,
            usage,
        }
    }

    /// `PUT /_emulator/state`: replaces everything, after checking it whole.
    pub fn import(&self, state: StateExport) -> Result<(), DomainError> {
        self.install(state)?;
        self.store.replaced(self);
        Ok(())
    }

    /// Replaces everything with `state`, after checking it whole, without telling the store
    /// (the durable store's recovery).
    pub fn install(&self, mut state: StateExport) -> Result<(), DomainError> {
        let invalid = |m: String| DomainError::validation(vec![FieldError::new("state", m)]);
        if state.format_version != STATE_FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version {} is not supported (expected {STATE_FORMAT_VERSION})",
                state.format_version
            )));
        }
        let mut usage: HashMap<String, Usage> = state.usage.drain(..).map(|u| (u.tenant_id, u.usage)).collect();
        let now = self.clock.now().max(state.now);
        let mut tenants = HashMap::new();
        for t in state.tenants.drain(..) {
            let mut t = t;
            if t.clock_offset_micros < 0 {
                return Err(invalid(format!("tenant {}: clock_offset_micros must not be negative", t.sandbox.id)));
            }
            t.ledger.rebuild().map_err(|e| invalid(format!("tenant {}: {e}", t.sandbox.id)))?;
            let events = t.ledger.event_count() as u64;
            t.webhooks.rebuild(events).map_err(|e| invalid(format!("tenant {}: {e}", t.sandbox.id)))?;
            if !t.billing.is_set_up() {
                // An export from before billing: start now.
                t.billing = Billing::with_tag(now.plus_seconds(t.clock_offset_micros / 1_000_000), self.ids.tag());
            }
            t.usage = usage.remove(&t.sandbox.id).unwrap_or_default();
            let id = t.sandbox.id.clone();
            tenants.insert(id.clone(), Arc::new(Tenant::new(id, t)));
        }
        if let Some(k) = state.keys.iter().find(|k| !tenants.contains_key(&k.tenant_id)) {
            return Err(invalid(format!("key {} names an unknown tenant", k.id)));
        }
        self.retire_all();
        *self.tenants.write() = tenants;
        self.edit_keys(|keys| {
            keys.clear();
            for k in state.keys {
                keys.insert(Arc::new(k));
            }
        });
        self.clock.restore(state.clock_offset_micros, state.now);
        Ok(())
    }

    /// Runs what fell due by every sandbox's own clock (invoices, nightly reconciliations);
    /// returns whether webhook deliveries were created.
    pub fn run_due(&self) -> bool {
        let mut deliveries = false;
        for t in self.tenants() {
            let now = t.now(&self.clock);
            deliveries |= self.run_due_in(&t, now);
        }
        deliveries
    }

    /// Runs what fell due in `tenant` at or before `now` (its own time); returns whether webhook
    /// deliveries were created.
    pub fn run_due_in(&self, tenant: &Tenant, now: Timestamp) -> bool {
        let mut state = tenant.state.lock();
        if state.billing.next_due() > now {
            return false;
        }
        let (movements, events) = (state.ledger.movement_count(), state.ledger.event_count());
        state.run_due(&self.settings.plans, now);
        self.settle(&tenant.id, &mut state, movements, events, now)
    }

    /// Runs one chunk of the tenant's oldest unfinished import job. `None` when it has none;
    /// else whether webhook deliveries were created.
    pub fn run_job_step(&self, tenant: &Tenant) -> Option<bool> {
        let mut guard = tenant.state.lock();
        if !guard.jobs.has_work() {
            return None;
        }
        let now = tenant.now(&self.clock);
        let state = &mut *guard;
        let (movements, events) = (state.ledger.movement_count(), state.ledger.event_count());
        let plan = self.settings.plans.get(state.sandbox.plan);
        let step = state.jobs.step(&mut state.ledger, &mut state.usage, plan, now, CHUNK_ROWS)?;
        if step.quota_hit {
            state.quota_exceeded(Meter::LedgerLines, &self.settings.plans, now);
        }
        Some(self.settle(&tenant.id, state, movements, events, now))
    }

    /// Completes a change made outside the HTTP write pipeline, still in its critical section:
    /// the events written since `events_before` become webhook deliveries and the commit goes to
    /// the store. Returns whether deliveries were created.
    pub fn settle(
        &self,
        tenant_id: &str,
        state: &mut TenantState,
        movements_before: u64,
        events_before: usize,
        now: Timestamp,
    ) -> bool {
        let waiting = state.webhooks.waiting();
        state.webhooks.fan_out(&state.ledger, events_before, None, now);
        let _ = movements_before; // the store knows what it wrote; kept for callers' symmetry
        let commit = Commit { tenant_id, state, idempotency_key: None, now };
        if let Err(e) = self.store.commit(commit) {
            tracing::error!(tenant_id, error = %e, "the store refused a background commit");
        }
        state.webhooks.waiting() > waiting
    }

    /// Marks every tenant retired (see [`TenantState::retired`]) before they are replaced.
    fn retire_all(&self) {
        for t in self.tenants() {
            t.state.lock().retired = true;
        }
    }

    /// `POST /_emulator/reset`: no tenants, no keys.
    pub fn reset(&self) {
        self.retire_all();
        self.tenants.write().clear();
        self.edit_keys(KeyEdit::clear);
        *self.global_idempotency.lock() = IdempotencyStore::default();
        self.store.replaced(self);
    }
}

/// The catalogue of `seed: "demo"`.
fn seed_demo(ledger: &mut Ledger, now: Timestamp) -> Result<(), DomainError> {
    let items = [
        ("TSHIRT-BLK-M", "T-shirt, black, M", Some(10)),
        ("MUG-WHT", "Mug, white", Some(5)),
        ("SOCKS-3PK", "Socks, 3-pack", None),
        ("CAP-NVY", "Cap, navy", Some(3)),
    ];
    let mut item_ids = Vec::new();
    for (sku, name, threshold) in items {
        let req = CreateItem {
            sku: sku.to_owned(),
            name: name.to_owned(),
            unit: None,
            attributes: None,
            low_stock_threshold: threshold,
        };
        item_ids.push(ledger.create::<Item>(req, now)?.id);
    }
    let locations = [
        ("WH-EAST", "East warehouse", LocationKind::Warehouse),
        ("WH-WEST", "West warehouse", LocationKind::Warehouse),
        ("STORE-01", "Flagship store", LocationKind::Store),
    ];
    let mut location_ids = Vec::new();
    for (code, name, kind) in locations {
        let req = CreateLocation { code: code.to_owned(), name: name.to_owned(), kind: Some(kind) };
        location_ids.push(ledger.create::<Location>(req, now)?.id);
    }
    let movement =
        |type_, item: usize, at: Option<usize>, from_to: Option<(usize, usize)>, quantity, reference: &str| {
            CreateMovement {
                type_,
                item_id: item_ids[item].clone(),
                location_id: at.map(|i| location_ids[i].clone()),
                from_location_id: from_to.map(|(f, _)| location_ids[f].clone()),
                to_location_id: from_to.map(|(_, t)| location_ids[t].clone()),
                quantity,
                reference: Some(reference.to_owned()),
                reason: None,
                metadata: None,
                allow_negative: None,
            }
        };
    let plan = [
        movement(MovementType::Receipt, 0, Some(0), None, 120, "PO-1001"),
        movement(MovementType::Receipt, 1, Some(0), None, 48, "PO-1001"),
        movement(MovementType::Receipt, 2, Some(1), None, 200, "PO-1002"),
        movement(MovementType::Receipt, 3, Some(1), None, 30, "PO-1002"),
        movement(MovementType::Transfer, 0, None, Some((0, 2)), 24, "TR-2001"),
        movement(MovementType::Shipment, 0, Some(2), None, 3, "SO-3001"),
        movement(MovementType::Shipment, 2, Some(1), None, 12, "SO-3002"),
        movement(MovementType::Adjustment, 1, Some(0), None, -2, "COUNT-0001"),
    ];
    for m in plan {
        ledger.create_movement(m, None, now)?;
    }
    Ok(())
}
