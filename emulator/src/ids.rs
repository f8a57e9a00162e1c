//! Opaque, prefixed identifiers.
//!
//! Ledger-side ids (`itm_`, `loc_`, `mov_`, `evt_`) are the tenant's random 16-hex-digit (64-bit)
//! tag followed by the record's 1-based position in hex. (Tags were 8 digits, 32 bits, before:
//! among 10,000 sandboxes two shared a tag about once in a hundred emulators, and then one
//! sandbox's ids resolved in the other. A state or data dir written then keeps its 8-digit tags
//! and its ids; a parse takes the tag's own length.) The position makes lookups O(1) with no id index (one
//! less map to grow under the tenant lock, and less memory per movement); the tag makes an id from
//! another tenant (or from before a sandbox reset, which draws a new tag) resolve to nothing, so the
//! answer is 404 and existence never leaks across tenants.
//!
//! **Where randomness comes from.** Every random id, key, tag, webhook secret and retry jitter
//! of a [`World`](crate::domain::registry::World) is drawn from its [`Generator`]: the thread's
//! system-seeded generator normally, or, in deterministic mode (`--deterministic SEED`),
//! ChaCha8 generators seeded by SEED. Deterministic draws are made in the order requests arrive,
//! so a client that sends one request at a time gets the same ids on every run; concurrent
//! requests get them in whatever order they reach the generator. Three independent streams keep
//! background work from shifting what a client sees: product ids and keys, request ids of `/v1`
//! requests, and request ids of everything else (the control plane, whose built-in webhook sink
//! is called by the background dispatcher at times of its own); retry jitter is no draw at all
//! but a function of the seed and the delivery's own id and attempt.

use parking_lot::Mutex;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Number of hex digits in a new tenant tag (64 bits: no two of even millions of sandboxes
/// share one, short of one chance in billions).
pub const TAG_LEN: usize = 16;
/// Minimum number of hex digits of the position part.
const POSITION_DIGITS_MIN: usize = 6;

/// Draws a new random tenant tag.
pub fn new_tag() -> String {
    tag_from(&mut rand::rng())
}

fn tag_from(rng: &mut (impl RngCore + ?Sized)) -> String {
    format!("{:016x}", rng.random::<u64>())
}

/// Which sequence of a seeded [`Generator`] a draw comes from (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Sandboxes, keys, tenant tags, webhook secrets, faults.
    Ids = 0,
    /// Request ids of `/v1` requests.
    Requests = 1,
    /// Request ids of every other request (`/_emulator`, `/openapi…`, `/metrics`).
    Control = 2,
}

/// Number of [`Stream`]s.
const STREAM_COUNT: usize = 3;

/// The source of every random value of one emulator (see the module docs).
#[derive(Debug, Default)]
pub struct Generator {
    seeded: Option<Seeded>,
}

#[derive(Debug)]
struct Seeded {
    seed: u64,
    streams: [Mutex<ChaCha8Rng>; STREAM_COUNT],
}

impl Generator {
    /// Draws from the system-seeded thread generator.
    pub fn system() -> Generator {
        Generator::default()
    }

    /// Deterministic draws, from ChaCha8 seeded by `seed` (one stream per [`Stream`]).
    pub fn seeded(seed: u64) -> Generator {
        let stream = |n: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(n);
            Mutex::new(rng)
        };
        Generator { seeded: Some(Seeded { seed, streams: [stream(0), stream(1), stream(2)] }) }
    }

    /// The seed, in deterministic mode.
    pub fn seed(&self) -> Option<u64> {
        self.seeded.as_ref().map(|s| s.seed)
    }

    fn with<T>(&self, stream: Stream, f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
        match &self.seeded {
            Some(s) => f(&mut *s.streams[stream as usize].lock()),
            None => f(&mut rand::rng()),
        }
    }

    /// A random id (see [`random`]) from `stream`.
    pub fn random(&self, stream: Stream, prefix: &str, len: usize) -> String {
        self.with(stream, |rng| random_from(rng, prefix, len))
    }

    /// A new tenant tag (see the module docs of the ids).
    pub fn tag(&self) -> String {
        self.with(Stream::Ids, |rng| tag_from(rng))
    }

    /// `len` random bytes (webhook secrets).
    pub fn bytes(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0; len];
        self.with(Stream::Ids, |rng| rng.fill_bytes(&mut out));
        out
    }

    /// A jitter in `0..=max` for attempt `attempt` of delivery `delivery` of the tenant tagged
    /// `tag`: random, or in deterministic mode a function of the seed and those three, so it does
    /// not depend on when the background dispatcher gets to it.
    pub fn jitter(&self, tag: &str, delivery: u64, attempt: u64, max: u64) -> u64 {
        let Some(s) = &self.seeded else { return rand::rng().random_range(0..=max) };
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&s.seed.to_le_bytes());
        key[8..16].copy_from_slice(&delivery.to_le_bytes());
        key[16..24].copy_from_slice(&attempt.to_le_bytes());
        for (k, b) in key[24..].iter_mut().zip(tag.bytes()) {
            *k = b;
        }
        ChaCha8Rng::from_seed(key).random_range(0..=max)
    }
}

/// Formats `prefix_<tag><position>`.
pub fn format(prefix: &str, tag: &str, position: u64) -> String {
    IdText::new(prefix, tag, position).as_str().to_owned()
}

/// An id as [`format`] writes it, on the stack (rendering a movement writes several).
pub struct IdText {
    buf: [u8; ID_TEXT_MAX],
    len: usize,
}

/// Room for a 3-letter prefix, `_`, a tag and 16 hex digits, with some to spare.
const ID_TEXT_MAX: usize = 48;

impl IdText {
    /// `prefix_<tag><position>` (a prefix and tag too long for the buffer are cut short, which
    /// no id of ours is).
    pub fn new(prefix: &str, tag: &str, position: u64) -> IdText {
        // By hand: `format!` costs more than the rest of an id's rendering.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = IdText { buf: [0; ID_TEXT_MAX], len: 0 };
        let digits = ((64 - position.leading_zeros() as usize).div_ceil(4)).max(POSITION_DIGITS_MIN);
        for part in [prefix.as_bytes(), b"_", tag.as_bytes()] {
            let n = part.len().min(ID_TEXT_MAX - 16 - out.len);
            out.buf[out.len..out.len + n].copy_from_slice(&part[..n]);
            out.len += n;
        }
        for i in (0..digits).rev() {
            out.buf[out.len] = HEX[((position >> (4 * i)) & 0xf) as usize];
            out.len += 1;
        }
        out
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Prefixes and tags are ASCII; a cut could only split a non-ASCII one.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// Parses an id made by [`format`] with this prefix and tag; returns the position.
pub fn parse(prefix: &str, tag: &str, id: &str) -> Option<u64> {
    let position = id.strip_prefix(prefix)?.strip_prefix('_')?.strip_prefix(tag)?;
    // After an older 8-digit tag at most 13 digits (2^52 records, never reached), so an id of a
    // 16-digit tag that starts with it (22 digits or more) is not read as one of its positions.
    let digits_max = if tag.len() < TAG_LEN { 13 } else { 16 };
    if position.len() < POSITION_DIGITS_MIN
        || position.len() > digits_max
        || !position.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    u64::from_str_radix(position, 16).ok().filter(|p| *p > 0)
}

/// A random id with a prefix and `len` lowercase alphanumerics (sandboxes, keys, faults).
///
/// Cheap enough for every request (request ids): one draw of 64 random bits per 11 characters
/// (36^11 < 2^57, so each character's bias stays under 1%), no per-character range sampling,
/// and 64-bit arithmetic (a 128-bit division per character cost more than the rest of a request
/// id).
pub fn random(prefix: &str, len: usize) -> String {
    random_from(&mut rand::rng(), prefix, len)
}

fn random_from(rng: &mut (impl RngCore + ?Sized), prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const PER_DRAW: usize = 11;
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bits = 0u64;
    for i in 0..len {
        if i % PER_DRAW == 0 {
            bits = rng.next_u64();
        }
        out.push(ALPHABET[(bits % 36) as usize] as char);
        bits /= 36;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_ids() {
        let id = format("mov", "0a1b2c3d", 42);
        assert_eq!(id, "mov_0a1b2c3d00002a");
        for p in [1, 0xf, 0xff_ffff, 0x100_0000, 0xdead_beef_cafe, u64::MAX] {
            assert_eq!(format("evt", "0a1b2c3d", p), format!("evt_0a1b2c3d{p:06x}"));
        }
        assert_eq!(parse("mov", "0a1b2c3d", &id), Some(42));
        assert_eq!(parse("mov", "ffffffff", &id), None, "another tenant's id");
        assert_eq!(parse("itm", "0a1b2c3d", &id), None, "another kind's id");
        assert_eq!(parse("mov", "0a1b2c3d", "mov_0a1b2c3d000000"), None, "position 0");
        assert_eq!(parse("mov", "0a1b2c3d", "mov_0a1b2c3dZZZZZZ"), None);
        assert_eq!(parse("mov", "0a1b2c3d", "mov_é"), None);
        // Tags of 16 digits (and the 8-digit ones of older states) both round-trip.
        let wide = "0a1b2c3d4e5f6071";
        assert_eq!(parse("mov", wide, &format("mov", wide, 42)), Some(42));
        assert_eq!(parse("mov", "0a1b2c3d", &format("mov", wide, 42)), None, "a longer tag is not a position");
        assert_eq!(parse("mov", wide, &id), None);
    }

    /// Issue 19 item 15: 200,000 tags drawn, none twice (with 32-bit tags about five pairs
    /// collided in as many draws).
    #[test]
    fn tags_are_64_bits_and_do_not_collide() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200_000 {
            let tag = new_tag();
            assert_eq!(tag.len(), TAG_LEN);
            assert!(seen.insert(tag), "a tag was drawn twice");
        }
        assert_eq!(TAG_LEN, 16);
    }

    #[test]
    fn random_ids_have_the_length_and_alphabet() {
        let a = random("req_", 30);
        assert_eq!(a.len(), 34);
        assert!(a[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random("req_", 24), random("req_", 24));
    }

    #[test]
    fn a_seed_draws_the_same_values_and_another_seed_others() {
        let draw = |seed| {
            let g = Generator::seeded(seed);
            (g.random(Stream::Ids, "sbx_", 16), g.tag(), g.bytes(32), g.random(Stream::Requests, "req_", 24))
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
        let g = Generator::seeded(42);
        let first = g.random(Stream::Ids, "sbx_", 16);
        let h = Generator::seeded(42);
        let _ = h.random(Stream::Requests, "req_", 24);
        assert_eq!(h.random(Stream::Ids, "sbx_", 16), first, "streams are independent");
        assert_eq!(g.jitter("0a1b2c3d", 7, 2, 30_000), h.jitter("0a1b2c3d", 7, 2, 30_000));
        assert!(g.jitter("0a1b2c3d", 7, 2, 30_000) <= 30_000);
        assert_eq!(Generator::system().seed(), None);
    }
}
