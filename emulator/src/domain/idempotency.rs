//! The idempotency store of one tenant (docs/guide/idempotency-and-concurrency.md).
//!
//! Records live inside the tenant's state and are read and written under the same lock as the
//! ledger, so a record and the change it answers commit together: no number of concurrent or
//! repeated requests with one key can make a second ledger entry.
//!
//! Memory and latency: a record is keyed by a 128-bit hash of the key (not the key itself) and a
//! successful movement stores only its sequence number; its body is rendered again on replay,
//! byte for byte the same because movements are immutable and rendering is deterministic. Other
//! responses store their bytes. The map is split into 1,024 shards so that no single rehash moves
//! more than a sliver of the records while the lock is held: with 64 shards of a million records
//! each rehash moved a megabyte into freshly faulted pages, which showed as p99 spikes and a few
//! percent of the write path's CPU. A shard stays small enough for the allocator to reuse the
//! memory the previous size freed. The shard table is allocated on the first record, so a tenant
//! that never writes costs nothing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::Timestamp;

/// A 128-bit digest (of a key, or of a request fingerprint).
pub type Digest128 = u128;

/// Number of shards; a power of two.
const SHARD_COUNT: usize = 1024;

/// The digest of an idempotency key.
pub fn key_digest(key: &str) -> Digest128 {
    digest(&[key.as_bytes()])
}

/// The fingerprint of a request: method, path and canonical body.
pub fn fingerprint(method: &str, path: &str, canonical_body: &[u8]) -> Digest128 {
    digest(&[method.as_bytes(), b"\n", path.as_bytes(), b"\n", canonical_body])
}

fn digest(parts: &[&[u8]]) -> Digest128 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let out = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&out[..16]);
    u128::from_le_bytes(first)
}

/// A response kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// The exact body.
    pub body: String,
    /// `ETag` version, if the response had one.
    pub etag: Option<u64>,
    /// `Location`, if the response had one.
    pub location: Option<String>,
    /// Whether the body is problem+json.
    pub problem: bool,
}

/// What a key's first request came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Still running.
    InProgress,
    /// Created the movement with this sequence (201).
    Movement(u64),
    /// Created `count` movements from sequence `first` (201).
    Batch {
        /// First sequence.
        first: u64,
        /// How many.
        count: u32,
    },
    /// Any other stored response.
    Response(Box<StoredResponse>),
}

/// One key's record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// Fingerprint of the first request (exported as 32 hex digits: a JSON number cannot carry
    /// 128 bits through `serde_json::Value`, which `PUT /_emulator/state` parses first).
    #[serde(with = "hex128")]
    pub fingerprint: Digest128,
    /// When the record is forgotten (emulator clock).
    pub expires_at: Timestamp,
    /// What it came to.
    pub outcome: Outcome,
}

/// A `u128` as 32 lowercase hex digits.
mod hex128 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:032x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        let text = String::deserialize(d)?;
        u128::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// The answer to a lookup before running a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// No live record: run the request.
    Fresh,
    /// The same request already ran: answer with this.
    Replay(Outcome),
    /// The same key with another request.
    Mismatch,
    /// The first request with this key is still running.
    InUse,
}

/// Keys are already uniform hashes: use their low bits as the hash.
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes.iter().take(8) {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type Shard = HashMap<Digest128, Record, BuildHasherDefault<DigestHasher>>;

/// The records of one tenant.
#[derive(Clone, Debug, Default)]
pub struct IdempotencyStore {
    shards: Vec<Shard>,
    /// No record expires before this (`None`: not known), so a purge with nothing expired costs
    /// nothing (the background expiry visits every sandbox every second).
    earliest: Option<Timestamp>,
}

/// The shard of `key`. Shards get unequal shares on purpose: shard `i` gets a share of the keys
/// proportional to 2^(i/1024), so their sizes spread evenly over a factor of two. Equal shares
/// made all 1,024 shards reach their next capacity together, and their rehashes (each a fresh
/// table to fault in) came in one burst: the write latency's worst slices. Spread out, a shard
/// doubles every few hundred writes, at an even pace.
fn shard_index(key: Digest128) -> usize {
    // 53 uniform bits as u in [0, 1); the index is floor(N * log2(1 + u)).
    let u = (key >> 75) as u64 as f64 / (1u64 << 53) as f64;
    ((SHARD_COUNT as f64 * (1.0 + u).log2()) as usize).min(SHARD_COUNT - 1)
}

impl IdempotencyStore {
    fn shard(&self, key: Digest128) -> Option<&Shard> {
        self.shards.get(shard_index(key))
    }
    fn shard_mut(&mut self, key: Digest128) -> &mut Shard {
        if self.shards.is_empty() {
            self.shards = (0..SHARD_COUNT).map(|_| Shard::default()).collect();
        }
        &mut self.shards[shard_index(key)]
    }

    /// Number of live and expired records held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What to do with a request carrying `key`.
    pub fn lookup(&self, key: Digest128, fingerprint: Digest128, now: Timestamp) -> Lookup {
        match self.shard(key).and_then(|s| s.get(&key)) {
            Some(r) if r.expires_at > now => {
                if r.fingerprint != fingerprint {
                    Lookup::Mismatch
                } else if r.outcome == Outcome::InProgress {
                    Lookup::InUse
                } else {
                    Lookup::Replay(r.outcome.clone())
                }
            }
            _ => Lookup::Fresh,
        }
    }

    /// The record of `key`, expired or not.
    pub fn get(&self, key: Digest128) -> Option<&Record> {
        self.shard(key)?.get(&key)
    }

    /// Every finished record (the durable store's rewrite).
    pub fn records(&self) -> impl Iterator<Item = (Digest128, &Record)> {
        self.shards
            .iter()
            .flat_map(|s| s.iter())
            .filter(|(_, r)| r.outcome != Outcome::InProgress)
            .map(|(k, r)| (*k, r))
    }

    /// Writes the record of `key` (a reservation, or the final outcome).
    pub fn put(&mut self, key: Digest128, record: Record) {
        self.earliest = self.earliest.map(|t| t.min(record.expires_at));
        self.shard_mut(key).insert(key, record);
    }

    /// Forgets a reservation that did not commit (a 5xx before commit stores nothing).
    pub fn release(&mut self, key: Digest128) {
        let Some(shard) = self.shards.get_mut(shard_index(key)) else { return };
        if shard.get(&key).is_some_and(|r| r.outcome == Outcome::InProgress) {
            shard.remove(&key);
        }
    }

    /// Drops every record expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: Timestamp) -> usize {
        if self.earliest.is_some_and(|t| t > now) {
            return 0;
        }
        let mut dropped = 0;
        let mut earliest = Timestamp(i64::MAX);
        for shard in &mut self.shards {
            let before = shard.len();
            shard.retain(|_, r| {
                let keep = r.expires_at > now;
                if keep {
                    earliest = earliest.min(r.expires_at);
                }
                keep
            });
            dropped += before - shard.len();
        }
        self.earliest = Some(earliest);
        dropped
    }
}

impl Serialize for IdempotencyStore {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Sorted by key: hash-map order depends on insertion history, and an export must not
        // change across an import (nor between two exports of the same state).
        let mut records: Vec<(&Digest128, &Record)> = self
            .shards
            .iter()
            .flat_map(|shard| shard.iter())
            .filter(|(_, r)| r.outcome != Outcome::InProgress)
            .collect();
        records.sort_unstable_by_key(|(k, _)| **k);
        s.collect_seq(records.into_iter().map(|(k, r)| (format!("{k:032x}"), r)))
    }
}

impl<'de> Deserialize<'de> for IdempotencyStore {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<(String, Record)>::deserialize(d)?;
        let mut store = IdempotencyStore::default();
        for (k, r) in entries {
            let key = u128::from_str_radix(&k, 16).map_err(serde::de::Error::custom)?;
            store.put(key, r);
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_states() {
        let mut store = IdempotencyStore::default();
        let now = Timestamp(1_000);
        let (k, fp) = (key_digest("k1"), fingerprint("POST", "/v1/x", b"{}"));
        assert_eq!(store.lookup(k, fp, now), Lookup::Fresh);
        store.put(k, Record { fingerprint: fp, expires_at: Timestamp(2_000), outcome: Outcome::InProgress });
        assert_eq!(store.lookup(k, fp, now), Lookup::InUse);
        assert_eq!(store.lookup(k, fp + 1, now), Lookup::Mismatch);
        store.put(k, Record { fingerprint: fp, expires_at: Timestamp(2_000), outcome: Outcome::Movement(7) });
        assert_eq!(store.lookup(k, fp, now), Lookup::Replay(Outcome::Movement(7)));
        store.release(k);
        assert_eq!(store.lookup(k, fp, now), Lookup::Replay(Outcome::Movement(7)), "release keeps finished records");
        assert_eq!(store.lookup(k, fp, Timestamp(2_000)), Lookup::Fresh, "expired");
        assert_eq!(store.purge_expired(Timestamp(2_000)), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn shard_shares_spread_over_a_factor_of_two() {
        let mut counts = vec![0u32; SHARD_COUNT];
        for i in 0..400_000u32 {
            counts[shard_index(key_digest(&i.to_string()))] += 1;
        }
        let first: u32 = counts[..64].iter().sum();
        let last: u32 = counts[SHARD_COUNT - 64..].iter().sum();
        let ratio = f64::from(last) / f64::from(first);
        assert!((1.8..2.1).contains(&ratio), "the last shards get about twice the first's share: {ratio}");
        assert!(counts.iter().all(|c| *c > 0));
    }
}
