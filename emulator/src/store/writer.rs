//! The SQLite side of the durable store: the schema, reading it back (every row's checksum
//! checked), and the writer thread that commits queued changes in groups.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::{Connection, OpenFlags, params};
use sha2::{Digest, Sha256};

use super::{Op, SCHEMA_VERSION, Shared, data_error};
use crate::domain::idempotency::Digest128;

fn checksum(body: &[u8]) -> i64 {
    let d = Sha256::digest(body);
    i64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn sql_error(file: &Path, e: rusqlite::Error) -> io::Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            data_error(file, format!("is corrupt or not a TWH database ({e})"))
        }
        _ => io::Error::other(format!("data dir file {}: {e}", file.display())),
    }
}

/// Opens the database (creating it when `fresh`), with the pragmas durability needs.
pub(super) fn connect(file: &Path, fresh: bool) -> io::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if fresh {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if std::fs::metadata(file).map(|m| m.len()).unwrap_or(0) == 0 {
        return Err(data_error(file, "is empty (truncated?)"));
    }
    let conn = Connection::open_with_flags(file, flags).map_err(|e| sql_error(file, e))?;
    let err = |e| sql_error(file, e);
    // WAL with FULL sync: a commit is on disk (the WAL fsynced) before it returns.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(io::Error::other(format!("{}: cannot switch to WAL mode (got {mode})", file.display())));
    }
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-65536;").map_err(err)?;
    if !fresh {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        if version != SCHEMA_VERSION {
            return Err(data_error(
                file,
                format!("has schema version {version}; this twh-emulator reads version {SCHEMA_VERSION}"),
            ));
        }
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(err)?;
        if check != "ok" {
            return Err(data_error(file, format!("fails SQLite's integrity check ({check})")));
        }
    }
    Ok(conn)
}

pub(super) fn create_schema(conn: &Connection, file: &Path) -> io::Result<()> {
    conn.execute_batch(&format!(
        "BEGIN;
         CREATE TABLE meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);
         CREATE TABLE tenants(id TEXT PRIMARY KEY, body BLOB NOT NULL, sum INTEGER NOT NULL);
         CREATE TABLE rows(tenant TEXT NOT NULL, kind INTEGER NOT NULL, k INTEGER NOT NULL,
                           body BLOB NOT NULL, sum INTEGER NOT NULL,
                           PRIMARY KEY(tenant, kind, k)) WITHOUT ROWID;
         CREATE TABLE idem(tenant TEXT NOT NULL, key BLOB NOT NULL, expires INTEGER NOT NULL,
                           body BLOB NOT NULL, sum INTEGER NOT NULL,
                           PRIMARY KEY(tenant, key)) WITHOUT ROWID;
         CREATE TABLE keys(secret TEXT PRIMARY KEY, body BLOB NOT NULL, sum INTEGER NOT NULL);
         INSERT INTO meta VALUES ('clock_offset', 0), ('clock_now', 0);
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;"
    ))
    .map_err(|e| sql_error(file, e))
}

pub(super) struct Meta {
    pub clock_offset: i64,
    pub clock_now: i64,
}

pub(super) fn read_meta(conn: &Connection, file: &Path) -> io::Result<Meta> {
    let get = |k: &str| -> io::Result<i64> {
        conn.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .map_err(|e| data_error(file, format!("has no {k} in its meta table ({e})")))
    };
    Ok(Meta { clock_offset: get("clock_offset")?, clock_now: get("clock_now")? })
}

fn verify(file: &Path, body: &[u8], sum: i64, what: impl FnOnce() -> String) -> io::Result<()> {
    if checksum(body) != sum {
        return Err(data_error(file, format!("{} fails its checksum (the file was damaged)", what())));
    }
    Ok(())
}

pub(super) fn each_base(
    conn: &Connection,
    file: &Path,
    mut f: impl FnMut(&str, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let err = |e| sql_error(file, e);
    let mut stmt = conn.prepare("SELECT id, body, sum FROM tenants ORDER BY id").map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let id: String = row.get(0).map_err(err)?;
        let body: Vec<u8> = row.get(1).map_err(err)?;
        verify(file, &body, row.get(2).map_err(err)?, || format!("the state of sandbox {id}"))?;
        f(&id, &body)?;
    }
    Ok(())
}

pub(super) fn each_row(
    conn: &Connection,
    file: &Path,
    mut f: impl FnMut(&str, i64, i64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let err = |e| sql_error(file, e);
    let mut stmt = conn.prepare("SELECT tenant, kind, k, body, sum FROM rows ORDER BY tenant, kind, k").map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let tenant: String = row.get(0).map_err(err)?;
        let (kind, k): (i64, i64) = (row.get(1).map_err(err)?, row.get(2).map_err(err)?);
        let body: Vec<u8> = row.get(3).map_err(err)?;
        verify(file, &body, row.get(4).map_err(err)?, || format!("row ({tenant}, {kind}, {k})"))?;
        f(&tenant, kind, k, &body)?;
    }
    Ok(())
}

pub(super) fn each_idem(
    conn: &Connection,
    file: &Path,
    mut f: impl FnMut(&str, Digest128, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let err = |e| sql_error(file, e);
    let mut stmt = conn.prepare("SELECT tenant, key, body, sum FROM idem").map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let tenant: String = row.get(0).map_err(err)?;
        let key: Vec<u8> = row.get(1).map_err(err)?;
        let key: [u8; 16] = key.try_into().map_err(|_| data_error(file, "an idempotency key is not 16 bytes"))?;
        let body: Vec<u8> = row.get(2).map_err(err)?;
        verify(file, &body, row.get(3).map_err(err)?, || format!("an idempotency record of sandbox {tenant:?}"))?;
        f(&tenant, u128::from_be_bytes(key), &body)?;
    }
    Ok(())
}

pub(super) fn each_key(conn: &Connection, file: &Path, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
    let err = |e| sql_error(file, e);
    let mut stmt = conn.prepare("SELECT body, sum FROM keys").map_err(err)?;
    let mut rows = stmt.query([]).map_err(err)?;
    while let Some(row) = rows.next().map_err(err)? {
        let body: Vec<u8> = row.get(0).map_err(err)?;
        verify(file, &body, row.get(1).map_err(err)?, || "an API key".to_owned())?;
        f(&body)?;
    }
    Ok(())
}

fn apply(tx: &rusqlite::Transaction<'_>, op: Op) -> rusqlite::Result<()> {
    match op {
        Op::Row { tenant, kind, key, body } => {
            let sum = checksum(&body);
            tx.prepare_cached("INSERT OR REPLACE INTO rows(tenant, kind, k, body, sum) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![tenant, kind as u8, key, body, sum])?;
        }
        Op::Idem { tenant, key, expires, body } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idem(tenant, key, expires, body, sum) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![tenant, key.to_be_bytes().as_slice(), expires, body, checksum(&body)])?;
        }
        Op::Base { tenant, body } => {
            tx.prepare_cached("DELETE FROM rows WHERE tenant = ?1")?.execute([&tenant])?;
            tx.prepare_cached("DELETE FROM idem WHERE tenant = ?1")?.execute([&tenant])?;
            tx.prepare_cached("INSERT OR REPLACE INTO tenants(id, body, sum) VALUES (?1, ?2, ?3)")?
                .execute(params![tenant, body, checksum(&body)])?;
        }
        Op::DropRows { tenant, kind } => {
            tx.prepare_cached("DELETE FROM rows WHERE tenant = ?1 AND kind = ?2")?
                .execute(params![tenant, kind as u8])?;
        }
        Op::DeleteTenant { tenant } => {
            tx.prepare_cached("DELETE FROM rows WHERE tenant = ?1")?.execute([&tenant])?;
            tx.prepare_cached("DELETE FROM idem WHERE tenant = ?1")?.execute([&tenant])?;
            tx.prepare_cached("DELETE FROM tenants WHERE id = ?1")?.execute([&tenant])?;
        }
        Op::Key { secret, body: Some(body) } => {
            tx.prepare_cached("INSERT OR REPLACE INTO keys(secret, body, sum) VALUES (?1, ?2, ?3)")?
                .execute(params![secret, body, checksum(&body)])?;
        }
        Op::Key { secret, body: None } => {
            tx.prepare_cached("DELETE FROM keys WHERE secret = ?1")?.execute([&secret])?;
        }
        Op::ClockOffset(offset) => {
            tx.prepare_cached("UPDATE meta SET v = ?1 WHERE k = 'clock_offset'")?.execute([offset])?;
        }
        Op::PurgeIdem(before) => {
            tx.prepare_cached("DELETE FROM idem WHERE expires <= ?1")?.execute([before])?;
        }
        Op::DeleteAll => {
            tx.execute_batch("DELETE FROM rows; DELETE FROM idem; DELETE FROM tenants; DELETE FROM keys;")?;
        }
    }
    Ok(())
}

fn write_batch(conn: &mut Connection, ops: Vec<Op>, clock_now: i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for op in ops {
        apply(&tx, op)?;
    }
    tx.prepare_cached("UPDATE meta SET v = max(v, ?1) WHERE k = 'clock_now'")?.execute([clock_now])?;
    tx.commit()
}

/// The writer thread: takes what is queued, commits it in one transaction, marks it durable.
pub(super) fn run(mut conn: Connection, shared: Arc<Shared>) {
    loop {
        let (ops, upto) = {
            let mut q = shared.queue.lock();
            while q.ops.is_empty() && !q.closing {
                shared.wake.wait(&mut q);
            }
            if q.ops.is_empty() {
                break; // closing, and nothing left
            }
            // Everything queued, in whole groups: a batch is bounded by the requests in flight
            // (each waits for it), so there is no separate cap.
            (std::mem::take(&mut q.ops), q.enqueued)
        };
        let clock_now = shared.clock_now.load(Ordering::Relaxed);
        if let Err(e) = write_batch(&mut conn, ops, clock_now) {
            tracing::error!(error = %e, file = %shared.file.display(), "the durable store failed; answering 503 from now on");
            *shared.failed.lock() = Some(format!("writing {} failed: {e}", shared.file.display()));
            shared.durable.send_replace(u64::MAX);
            // Keep draining (and refusing) so nobody waits forever.
            loop {
                let mut q = shared.queue.lock();
                q.ops.clear();
                if q.closing {
                    return;
                }
                shared.wake.wait(&mut q);
            }
        }
        shared.durable.send_replace(upto);
    }
    // Shutdown: move the WAL into the main file so the data dir is one self-contained file.
    let clock_now = shared.clock_now.load(Ordering::Relaxed);
    let _ = conn.execute("UPDATE meta SET v = max(v, ?1) WHERE k = 'clock_now'", [clock_now]);
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}
