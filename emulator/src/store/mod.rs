//! The durable store: `--data-dir DIR` keeps the emulator's state in SQLite (`DIR/twh.sqlite3`,
//! through `rusqlite` with SQLite bundled), so a restart recovers exactly what was acknowledged.
//!
//! **What is written.** The database *is* the state, kept per tenant in pieces that a change
//! touches one by one, not a log replayed from the beginning of time:
//! - `tenants`: each tenant's state as of its creation (or its last sandbox reset, or the last
//!   import), the "base";
//! - `rows`: what changed since, keyed (tenant, kind, key) and written over in place: items and
//!   locations by index, movements and events by sequence (append-only: levels are recomputed
//!   from them on recovery and checked against what each movement recorded), webhook deliveries
//!   by sequence (with their attempts), the rest of the tenant whole when it changed (sandbox,
//!   plan, webhook endpoints, billing periods and invoices, reconciliations, import jobs, injected
//!   skews), and the usage journal (the metering operations, replayed in order; compacted into one
//!   snapshot on every start);
//! - `idem`: idempotency records (expired ones are dropped on start);
//! - `keys`: API keys; `meta`: the format, the emulator clock's offset and latest time.
//!
//! **When.** A change is turned into rows inside the tenant's critical section (so one tenant's
//! changes reach the queue in the order they were made), queued, and the response waits
//! ([`crate::http::pipeline::durable_barrier`]) until a writer thread has committed everything
//! queued before it: one SQLite transaction, then fsync (`journal_mode=WAL`,
//! `synchronous=FULL`). The writer takes whatever is queued when it starts a transaction, so
//! concurrent requests share one fsync (group commit) and a movement, its level change, its
//! events, its idempotency record and its usage always land in the same transaction. Every
//! response waits for everything queued before it was sent, reads included, so nothing a client
//! saw can be lost by a crash.
//!
//! **Safety.** `DIR/twh.lock` is held with `flock` while the emulator runs: a second emulator on
//! the same directory fails at once, naming the other's pid. `DIR/twh-data.json` names the
//! format and schema version; a data dir with the manifest but no (or an empty, or a foreign)
//! database, a schema version this build does not read, a row whose checksum (the first 8 bytes
//! of its SHA-256) does not match, or a state whose ledger invariants do not hold is refused with
//! an error naming the file: never a silent reset.
//!
//! What is not persisted: the rate limiter's buckets, injected faults, the webhook sink, and
//! in-flight markers (a delivery claimed but not recorded when the process died is attempted
//! again: delivery is at-least-once).

mod writer;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::future::BoxFuture;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::clock::Timestamp;
use crate::domain::billing::{Billing, Usage, UsageOp};
use crate::domain::idempotency::{Digest128, Outcome, Record};
use crate::domain::jobs::Jobs;
use crate::domain::ledger::{CatalogEntry, CatalogRef, EventRecord, MovementRecord};
use crate::domain::model::Sandbox;
use crate::domain::reconcile::Reconciliations;
use crate::domain::registry::{
    Commit, KeyGrant, KeyMap, Persisted, STATE_FORMAT_VERSION, StateExport, Store, TenantState, TenantUsage, World,
};
use crate::domain::webhooks::{DeliveryRecord, EndpointRecord};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;
/// The database file in a data dir.
pub const DATABASE_FILE: &str = "twh.sqlite3";
/// The lock file in a data dir.
pub const LOCK_FILE: &str = "twh.lock";
/// The manifest in a data dir.
pub const MANIFEST_FILE: &str = "twh-data.json";
const FORMAT: &str = "twh-emulator data dir";

/// What a row of `rows` holds. Recovery applies them in this order within a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Item = 1,
    Location = 2,
    Movement = 3,
    Event = 4,
    Rest = 5,
    Delivery = 6,
    Usage = 7,
}

impl Kind {
    fn from_i64(v: i64) -> Option<Kind> {
        Some(match v {
            1 => Kind::Item,
            2 => Kind::Location,
            3 => Kind::Movement,
            4 => Kind::Event,
            5 => Kind::Rest,
            6 => Kind::Delivery,
            7 => Kind::Usage,
            _ => return None,
        })
    }
}

/// One write the writer thread applies.
#[derive(Debug)]
enum Op {
    /// Upsert a row.
    Row { tenant: String, kind: Kind, key: i64, body: Vec<u8> },
    /// Upsert an idempotency record (`tenant` empty: the tenant-less ones).
    Idem { tenant: String, key: Digest128, expires: i64, body: Vec<u8> },
    /// A tenant's state whole: replaces its base and drops its rows and records.
    Base { tenant: String, body: Vec<u8> },
    /// Drops a tenant's rows of one kind (usage compaction).
    DropRows { tenant: String, kind: Kind },
    /// Drops a tenant.
    DeleteTenant { tenant: String },
    /// Upserts (or, `None`, deletes) an API key.
    Key { secret: String, body: Option<Vec<u8>> },
    /// The clock's offset.
    ClockOffset(i64),
    /// Drops idempotency records expired at this time (micros).
    PurgeIdem(i64),
    /// Drops everything (reset, import).
    DeleteAll,
}

/// The queue between request threads and the writer.
#[derive(Debug, Default)]
struct Queue {
    ops: Vec<Op>,
    /// Groups queued so far (a group is one commit's ops; tickets count groups).
    enqueued: u64,
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Groups durable so far.
    durable: watch::Sender<u64>,
    failed: Mutex<Option<String>>,
    clock_now: AtomicI64,
    /// The clock offset last queued (an unchanged offset is not written again).
    clock_offset: AtomicI64,
    file: PathBuf,
}

impl Shared {
    fn failed(&self) -> Option<io::Error> {
        self.failed.lock().as_ref().map(|m| io::Error::other(m.clone()))
    }
}

/// A tenant's base row: its state and usage as of one moment.
#[derive(Serialize)]
struct BaseOut<'a> {
    state: &'a TenantState,
    usage: &'a Usage,
}

#[derive(Deserialize)]
struct BaseIn {
    state: TenantState,
    usage: Usage,
}

/// The part of a tenant written whole when [`TenantState::rest_stamp`] changes.
#[derive(Serialize)]
struct RestOut<'a> {
    tag: &'a str,
    sandbox: &'a Sandbox,
    skews: Vec<((u32, u32), i64)>,
    corruptions: u64,
    endpoints: &'a [EndpointRecord],
    billing: &'a Billing,
    reconciliations: &'a Reconciliations,
    jobs: &'a Jobs,
    clock_offset_micros: i64,
}

#[derive(Deserialize)]
struct RestIn {
    tag: String,
    sandbox: Sandbox,
    skews: Vec<((u32, u32), i64)>,
    corruptions: u64,
    endpoints: Vec<EndpointRecord>,
    billing: Billing,
    reconciliations: Reconciliations,
    jobs: Jobs,
    /// The sandbox's own clock offset (absent in rows written before per-sandbox clocks).
    #[serde(default)]
    clock_offset_micros: i64,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    schema_version: i64,
    database: String,
}

fn json<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn data_error(file: &Path, what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "data dir file {}: {what}. Nothing was changed; restore a backup, or move the data dir away to start empty.",
            file.display()
        ),
    )
}

/// The SQLite-backed store. Cheap to share: clone the `Arc`.
#[derive(Debug)]
pub struct DurableStore {
    dir: PathBuf,
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    lock: Mutex<Option<File>>,
}

/// What was read from a data dir, to be installed in a [`World`].
#[derive(Debug)]
pub struct Recovered {
    export: StateExport,
    global: Vec<(Digest128, Record)>,
    usage_rows: HashMap<String, usize>,
}

impl Recovered {
    /// How many sandboxes were recovered.
    pub fn sandbox_count(&self) -> usize {
        self.export.tenants.len()
    }
}

impl DurableStore {
    /// Opens (creating if needed) the data dir `dir`: takes its lock, checks and reads its
    /// database, and starts the writer thread. The state read is to be installed with
    /// [`DurableStore::install`].
    pub fn open(dir: &Path) -> io::Result<(Arc<DurableStore>, Recovered)> {
        std::fs::create_dir_all(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot create data dir {}: {e}", dir.display())))?;
        let lock = take_lock(dir)?;
        let file = dir.join(DATABASE_FILE);
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match std::fs::read(&manifest_path) {
            Ok(bytes) => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| data_error(&manifest_path, format!("is not a TWH data dir manifest ({e})")))?;
                if m.format != FORMAT {
                    return Err(data_error(&manifest_path, format!("names format {:?}, not {FORMAT:?}", m.format)));
                }
                if m.schema_version != SCHEMA_VERSION {
                    return Err(data_error(
                        &manifest_path,
                        format!(
                            "has schema version {}; this twh-emulator reads version {SCHEMA_VERSION}",
                            m.schema_version
                        ),
                    ));
                }
                Some(m)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", manifest_path.display()))),
        };
        let exists = file.exists();
        let fresh = match (&manifest, exists) {
            (None, false) => true,
            (Some(_), true) => false,
            (Some(_), false) => {
                return Err(data_error(&file, format!("is missing, though {} says the dir holds data", MANIFEST_FILE)));
            }
            (None, true) => {
                return Err(data_error(&manifest_path, format!("is missing, though {DATABASE_FILE} exists")));
            }
        };
        let conn = writer::connect(&file, fresh)?;
        let recovered = if fresh {
            writer::create_schema(&conn, &file)?;
            let m = Manifest {
                format: FORMAT.to_owned(),
                schema_version: SCHEMA_VERSION,
                database: DATABASE_FILE.to_owned(),
            };
            write_atomically(&manifest_path, &serde_json::to_vec_pretty(&m).unwrap_or_default())?;
            Recovered { export: empty_export(), global: Vec::new(), usage_rows: HashMap::new() }
        } else {
            read_all(&conn, &file)?
        };
        let (durable, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            durable,
            failed: Mutex::new(None),
            clock_now: AtomicI64::new(recovered.export.now.micros()),
            clock_offset: AtomicI64::new(recovered.export.clock_offset_micros),
            file: file.clone(),
        });
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("twh-store".to_owned())
            .spawn(move || writer::run(conn, thread_shared))
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start the store's writer thread: {e}")))?;
        let store = DurableStore {
            dir: dir.to_owned(),
            shared,
            writer: Mutex::new(Some(handle)),
            lock: Mutex::new(Some(lock)),
        };
        Ok((Arc::new(store), recovered))
    }

    /// The data dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Installs what was read into `world` (whose store is this one) and starts tracking each
    /// tenant's changes; compacts each tenant's usage journal and drops expired idempotency
    /// records on the way.
    pub fn install(&self, world: &World, recovered: Recovered) -> io::Result<()> {
        let Recovered { export, global, usage_rows } = recovered;
        let file = &self.shared.file;
        world
            .install(export)
            .map_err(|e| data_error(file, format!("holds a state that does not check out: {}", e.detail)))?;
        let now = world.clock.now();
        {
            let mut g = world.global_idempotency.lock();
            for (k, r) in global {
                g.put(k, r);
            }
            g.purge_expired(now);
        }
        let mut ops = vec![Op::PurgeIdem(now.micros())];
        for tenant in world.tenants() {
            let mut state = tenant.state.lock();
            state.ledger.idempotency.purge_expired(tenant.now(&world.clock));
            state.track();
            let mut persisted = Persisted {
                tag: state.ledger.tag.clone(),
                movements: state.ledger.movement_count(),
                events: state.ledger.event_count(),
                rest_stamp: state.rest_stamp(),
                usage_ops: 1,
            };
            if usage_rows.get(&tenant.id).copied().unwrap_or(0) > 1 {
                ops.push(Op::DropRows { tenant: tenant.id.clone(), kind: Kind::Usage });
                let snapshot = UsageOp::Snapshot { usage: Box::new(state.usage.clone()) };
                ops.push(Op::Row { tenant: tenant.id.clone(), kind: Kind::Usage, key: 0, body: json(&snapshot) });
            } else {
                persisted.usage_ops = usage_rows.get(&tenant.id).copied().unwrap_or(0) as u64;
            }
            state.persisted = Some(Box::new(persisted));
        }
        self.push(ops);
        Ok(())
    }

    fn push(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let mut q = self.shared.queue.lock();
        q.ops.extend(ops);
        q.enqueued += 1;
        drop(q);
        self.shared.wake.notify_one();
    }

    /// The ops that write `state` whole, and the marks that go with them.
    fn base_ops(&self, tenant_id: &str, state: &mut TenantState, ops: &mut Vec<Op>) {
        state.track();
        // The base holds everything: the change notes so far are covered by it.
        state.ledger.take_catalog_changes();
        state.webhooks.take_changed_deliveries();
        state.usage.take_journal();
        ops.push(Op::Base { tenant: tenant_id.to_owned(), body: json(&BaseOut { state, usage: &state.usage }) });
        for (k, r) in state.ledger.idempotency.records() {
            ops.push(idem_op(tenant_id, k, r));
        }
        state.persisted = Some(Box::new(Persisted {
            tag: state.ledger.tag.clone(),
            movements: state.ledger.movement_count(),
            events: state.ledger.event_count(),
            rest_stamp: state.rest_stamp(),
            usage_ops: 0,
        }));
    }

    /// Writes what is queued, checkpoints, stops the writer and releases the lock. Commits
    /// after this fail.
    pub fn shut(&self) -> io::Result<()> {
        self.shared.queue.lock().closing = true;
        self.shared.wake.notify_all();
        if let Some(h) = self.writer.lock().take() {
            let _ = h.join();
        }
        if let Some(lock) = self.lock.lock().take() {
            let _ = rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock);
        }
        match self.shared.failed() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The ops that take the API keys from `before` to `after`.
/// The rows of the keys `changed`: each as it is in `after`, or its deletion.
fn key_ops(after: &KeyMap, changed: &[String], ops: &mut Vec<Op>) {
    for secret in changed {
        ops.push(Op::Key { secret: secret.clone(), body: after.get(secret).map(|g| json(&**g)) });
    }
}

fn idem_op(tenant: &str, key: Digest128, r: &Record) -> Op {
    Op::Idem { tenant: tenant.to_owned(), key, expires: r.expires_at.micros(), body: json(r) }
}

fn empty_export() -> StateExport {
    StateExport {
        format_version: STATE_FORMAT_VERSION,
        now: Timestamp(0),
        clock_offset_micros: 0,
        tenants: Vec::new(),
        keys: Vec::new(),
        usage: Vec::new(),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f =
        File::create(&tmp).map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", tmp.display())))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(())
}

/// Takes `DIR/twh.lock` (an exclusive `flock`, released by the OS if the process dies).
fn take_lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open the lock file {}: {e}", path.display())))?;
    if let Err(e) = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        let holder = holder.trim();
        let who = if holder.is_empty() {
            "another process".to_owned()
        } else {
            format!("another twh-emulator (pid {holder})")
        };
        return Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "data dir {} is in use by {who}: its lock {} is held ({e}). Stop that emulator, or use another --data-dir.",
                dir.display(),
                path.display()
            ),
        ));
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// Reads every table into a state export (checked by [`World::install`]).
fn read_all(conn: &rusqlite::Connection, file: &Path) -> io::Result<Recovered> {
    let bad = |what: String| data_error(file, what);
    let meta = writer::read_meta(conn, file)?;
    let mut tenants: Vec<(String, TenantState, Usage)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    writer::each_base(conn, file, |id, body| {
        let base: BaseIn =
            serde_json::from_slice(body).map_err(|e| bad(format!("the state of sandbox {id} does not parse ({e})")))?;
        index.insert(id.to_owned(), tenants.len());
        tenants.push((id.to_owned(), base.state, base.usage));
        Ok(())
    })?;
    let mut usage_rows: HashMap<String, usize> = HashMap::new();
    writer::each_row(conn, file, |tenant, kind, key, body| {
        let i = *index.get(tenant).ok_or_else(|| bad(format!("a row names sandbox {tenant}, which has no state")))?;
        let (_, state, usage) = &mut tenants[i];
        let kind =
            Kind::from_i64(kind).ok_or_else(|| bad(format!("a row of sandbox {tenant} has unknown kind {kind}")))?;
        let parse_err = |e: serde_json::Error| bad(format!("row ({tenant}, {kind:?}, {key}) does not parse ({e})"));
        let broken = |e: String| bad(format!("row ({tenant}, {kind:?}, {key}): {e}"));
        match kind {
            Kind::Item | Kind::Location => {
                let r =
                    if kind == Kind::Item { CatalogRef::Item(key as u32) } else { CatalogRef::Location(key as u32) };
                let entry = match kind {
                    Kind::Item => CatalogEntry::Item(serde_json::from_slice(body).map_err(parse_err)?),
                    _ => CatalogEntry::Location(serde_json::from_slice(body).map_err(parse_err)?),
                };
                state.ledger.restore_catalog(r, entry).map_err(broken)?;
            }
            Kind::Movement => {
                let m: MovementRecord = serde_json::from_slice(body).map_err(parse_err)?;
                if key != state.ledger.movement_count() as i64 + 1 {
                    return Err(broken(format!("movements skip from {} to {key}", state.ledger.movement_count())));
                }
                state.ledger.restore_movement(m).map_err(broken)?;
            }
            Kind::Event => {
                let e: EventRecord = serde_json::from_slice(body).map_err(parse_err)?;
                if key != state.ledger.event_count() as i64 + 1 {
                    return Err(broken(format!("events skip from {} to {key}", state.ledger.event_count())));
                }
                state.ledger.restore_event(e);
            }
            Kind::Rest => {
                let rest: RestIn = serde_json::from_slice(body).map_err(parse_err)?;
                if rest.tag != state.ledger.tag {
                    return Err(broken("belongs to another incarnation of the sandbox".to_owned()));
                }
                state.sandbox = rest.sandbox;
                state.ledger.restore_skews(&rest.skews, rest.corruptions).map_err(broken)?;
                state.webhooks.restore_endpoints(rest.endpoints);
                state.billing = rest.billing;
                state.reconciliations = rest.reconciliations;
                state.jobs = rest.jobs;
                state.clock_offset_micros = rest.clock_offset_micros;
            }
            Kind::Delivery => {
                let d: DeliveryRecord = serde_json::from_slice(body).map_err(parse_err)?;
                state.webhooks.restore_delivery(key as u64, d).map_err(broken)?;
            }
            Kind::Usage => {
                let op: UsageOp = serde_json::from_slice(body).map_err(parse_err)?;
                usage.replay(op);
                *usage_rows.entry(tenant.to_owned()).or_default() += 1;
            }
        }
        Ok(())
    })?;
    let mut global = Vec::new();
    writer::each_idem(conn, file, |tenant, key, body| {
        let r: Record = serde_json::from_slice(body)
            .map_err(|e| bad(format!("an idempotency record of sandbox {tenant:?} does not parse ({e})")))?;
        if r.outcome == Outcome::InProgress {
            return Ok(());
        }
        if tenant.is_empty() {
            global.push((key, r));
        } else {
            let i = *index
                .get(tenant)
                .ok_or_else(|| bad(format!("a record names sandbox {tenant}, which has no state")))?;
            tenants[i].1.ledger.idempotency.put(key, r);
        }
        Ok(())
    })?;
    let mut keys: Vec<KeyGrant> = Vec::new();
    writer::each_key(conn, file, |body| {
        keys.push(serde_json::from_slice(body).map_err(|e| bad(format!("an API key does not parse ({e})")))?);
        Ok(())
    })?;
    // The clock never goes back: not before the latest time any change was made at.
    let mut now = Timestamp(meta.clock_now);
    let mut usage_out = Vec::new();
    let mut states = Vec::new();
    for (id, state, usage) in tenants {
        if let Some(last) = state.ledger.events_from(state.ledger.event_count().saturating_sub(1)).last() {
            now = now.max(last.created_at);
        }
        usage_out.push(TenantUsage { tenant_id: id, usage });
        states.push(state);
    }
    let export = StateExport {
        format_version: STATE_FORMAT_VERSION,
        now,
        clock_offset_micros: meta.clock_offset,
        tenants: states,
        keys,
        usage: usage_out,
    };
    Ok(Recovered { export, global, usage_rows })
}

impl Store for Arc<DurableStore> {
    fn commit(&self, c: Commit<'_>) -> io::Result<()> {
        if let Some(e) = self.shared.failed() {
            return Err(e);
        }
        self.shared.clock_now.fetch_max(c.now.micros(), Ordering::Relaxed);
        let state = c.state;
        if state.retired {
            // Gone from the world (deleted, reset, replaced) while this work held it: writing
            // it would leave rows naming a sandbox with no state, which a restart refuses.
            return Ok(());
        }
        let tenant = c.tenant_id;
        let mut ops = Vec::new();
        let Some(p) = state.persisted.as_deref().filter(|p| p.tag == state.ledger.tag).cloned() else {
            // New to the store, or a new incarnation (sandbox reset): written whole.
            self.base_ops(tenant, state, &mut ops);
            self.push(ops);
            return Ok(());
        };
        for (r, entry) in state.ledger.take_catalog_changes() {
            let (kind, key) = match r {
                CatalogRef::Item(i) => (Kind::Item, i),
                CatalogRef::Location(i) => (Kind::Location, i),
            };
            ops.push(Op::Row { tenant: tenant.to_owned(), kind, key: i64::from(key), body: json(&entry) });
        }
        for (key, m) in (p.movements as i64 + 1..).zip(state.ledger.movements_after(p.movements)) {
            ops.push(Op::Row { tenant: tenant.to_owned(), kind: Kind::Movement, key, body: json(m) });
        }
        for (key, e) in (p.events as i64 + 1..).zip(state.ledger.events_from(p.events)) {
            ops.push(Op::Row { tenant: tenant.to_owned(), kind: Kind::Event, key, body: json(e) });
        }
        let stamp = state.rest_stamp();
        if stamp != p.rest_stamp {
            let (skews, corruptions) = state.ledger.skews();
            let rest = RestOut {
                tag: &state.ledger.tag,
                sandbox: &state.sandbox,
                skews,
                corruptions,
                endpoints: state.webhooks.endpoint_records(),
                billing: &state.billing,
                reconciliations: &state.reconciliations,
                jobs: &state.jobs,
                clock_offset_micros: state.clock_offset_micros,
            };
            ops.push(Op::Row { tenant: tenant.to_owned(), kind: Kind::Rest, key: 0, body: json(&rest) });
        }
        for (seq, d) in state.webhooks.take_changed_deliveries() {
            ops.push(Op::Row { tenant: tenant.to_owned(), kind: Kind::Delivery, key: seq as i64, body: json(d) });
        }
        let mut usage_ops = p.usage_ops;
        for op in state.usage.take_journal() {
            usage_ops += 1;
            ops.push(Op::Row { tenant: tenant.to_owned(), kind: Kind::Usage, key: usage_ops as i64, body: json(&op) });
        }
        if let Some(k) = c.idempotency_key {
            if let Some(r) = state.ledger.idempotency.get(k).filter(|r| r.outcome != Outcome::InProgress) {
                ops.push(idem_op(tenant, k, r));
            }
        }
        state.persisted = Some(Box::new(Persisted {
            tag: p.tag,
            movements: state.ledger.movement_count(),
            events: state.ledger.event_count(),
            rest_stamp: stamp,
            usage_ops,
        }));
        self.push(ops);
        Ok(())
    }

    fn tenant_created(&self, tenant_id: &str, state: &mut TenantState) {
        let mut ops = Vec::new();
        self.base_ops(tenant_id, state, &mut ops);
        self.push(ops);
    }

    fn tenants_created(&self, tenants: &mut [(String, TenantState)], after: &KeyMap, changed: &[String]) {
        // One push: the writer commits one push in one transaction, so the tenants and their
        // keys are on disk together or not at all.
        let mut ops = Vec::new();
        for (id, state) in tenants.iter_mut() {
            self.base_ops(id, state, &mut ops);
        }
        key_ops(after, changed, &mut ops);
        self.push(ops);
    }

    fn tenant_deleted(&self, tenant_id: &str) {
        self.push(vec![Op::DeleteTenant { tenant: tenant_id.to_owned() }]);
    }

    fn keys_changed(&self, after: &KeyMap, changed: &[String]) {
        let mut ops = Vec::new();
        key_ops(after, changed, &mut ops);
        self.push(ops);
    }

    fn global_record(&self, key: Digest128, record: &Record) {
        self.push(vec![idem_op("", key, record)]);
    }

    fn clock_moved(&self, offset_micros: i64, now: Timestamp) {
        self.shared.clock_now.fetch_max(now.micros(), Ordering::Relaxed);
        if self.shared.clock_offset.swap(offset_micros, Ordering::Relaxed) != offset_micros {
            self.push(vec![Op::ClockOffset(offset_micros)]);
        }
    }

    fn replaced(&self, world: &World) {
        let mut ops = vec![Op::DeleteAll];
        for tenant in world.tenants() {
            let mut state = tenant.state.lock();
            self.base_ops(&tenant.id, &mut state, &mut ops);
        }
        for (secret, g) in world.keys().iter() {
            ops.push(Op::Key { secret: secret.clone(), body: Some(json(&**g)) });
        }
        for (k, r) in world.global_idempotency.lock().records() {
            ops.push(idem_op("", k, r));
        }
        ops.push(Op::ClockOffset(world.clock.offset_micros()));
        self.shared.clock_offset.store(world.clock.offset_micros(), Ordering::Relaxed);
        self.shared.clock_now.fetch_max(world.clock.now().micros(), Ordering::Relaxed);
        self.push(ops);
    }

    fn is_durable(&self) -> bool {
        true
    }

    fn ticket(&self) -> u64 {
        self.shared.queue.lock().enqueued
    }

    fn wait(&self, ticket: u64) -> BoxFuture<'static, io::Result<()>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            if *shared.durable.borrow() < ticket {
                let mut rx = shared.durable.subscribe();
                let _ = rx.wait_for(|d| *d >= ticket).await;
            }
            match shared.failed() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }

    fn close(&self) -> io::Result<()> {
        self.shut()
    }
}

/// Commits the changes that wait in tenants without a write of their own (the usage rows of
/// reads): called every second and at shutdown when the store is durable.
pub fn flush_pending(world: &World) {
    let now = world.clock.now();
    for tenant in world.tenants() {
        let mut state = tenant.state.lock();
        if state.usage.journal_pending() {
            let _ = world.store.commit(Commit { tenant_id: &tenant.id, state: &mut state, idempotency_key: None, now });
        }
    }
    world.store.clock_moved(world.clock.offset_micros(), now);
}
