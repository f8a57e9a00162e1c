//! Integration tests of the emulator over real HTTP: every test starts its own server.
//!
//! - `errors`: auth (401/403), tenancy (404 never 403), routing (404/405), problem details,
//!   validation (400/415/422), cursors, uniqueness, request ids (API.md §1).
//! - `idempotency`: Idempotency-Key rules, replays, in-use, concurrency, faults (§2, §5).
//! - `ledger`: ETags and preconditions (§3), items, locations, movement rules, levels, `as_of`,
//!   batches, reversals, sequences, events (§4).
//! - `paging`: lists under concurrent inserts (§1).
//! - `indexes`: every list filter against a brute-force scan, on random data (§1).
//! - `property`: random concurrent operations keep every ledger invariant (§4).
//! - `state`: export/reset/import, sandbox lifecycle, clock (§4, §5).
//! - `openapi`: the document matches what is served, routed and committed.
//! - `webhooks`: signed delivery, schedule, dead-letter queue, replay, sink, isolation.
//! - `billing`: plans, quotas, rate limits, and a month's invoice against the ledger and a request log.
//! - `reconciliation`: on demand and nightly, before and after a corrupted snapshot.
//! - `jobs`: background CSV imports, idempotent by reference, bad rows by line number.
//! - `fixtures`: `POST /_emulator/fixtures` and `serve --fixtures FILE`: known keys and contents,
//!   all or nothing, errors naming the entry, `key_taken`, with and without `--data-dir`.
//! - `clocks`: per-sandbox clocks, faults scoped to a sandbox, deterministic mode (§5).
//! - `durable`: `--data-dir` under SIGKILL and SIGTERM, its lock, damaged files, what a restart
//!   restores.

mod billing;
mod clocks;
mod common;
mod durable;
mod errors;
mod fixtures;
mod idempotency;
mod indexes;
mod jobs;
mod ledger;
mod model;
mod openapi;
mod paging;
mod property;
mod reconciliation;
mod security;
mod state;
mod webhooks;
