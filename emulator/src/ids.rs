//! Opaque, prefixed identifiers.
//!
//! Ledger-side ids (`itm_`, `loc_`, `mov_`, `evt_`) are the tenant's random 8-hex-digit tag followed
//! by the record's 1-based position in hex. The position makes lookups O(1) with no id index (one
//! less map to grow under the tenant lock, and less memory per movement); the tag makes an id from
//! another tenant (or from before a sandbox reset, which draws a new tag) resolve to nothing, so the
//! answer is 404 and existence never leaks across tenants.

use rand::Rng;

/// Number of hex digits in a tenant tag.
const TAG_LEN: usize = 8;
/// Minimum number of hex digits of the position part.
const POSITION_DIGITS_MIN: usize = 6;

/// Draws a new random tenant tag.
pub fn new_tag() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
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
    let rest = id.strip_prefix(prefix)?.strip_prefix('_')?;
    if rest.len() < TAG_LEN + POSITION_DIGITS_MIN || rest.len() > TAG_LEN + 16 || !rest.is_char_boundary(TAG_LEN) {
        return None;
    }
    let (id_tag, position) = rest.split_at(TAG_LEN);
    if id_tag != tag || !position.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
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
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    const PER_DRAW: usize = 11;
    let mut rng = rand::rng();
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    let mut bits = 0u64;
    for i in 0..len {
        if i % PER_DRAW == 0 {
            bits = rng.random::<u64>();
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
    }

    #[test]
    fn random_ids_have_the_length_and_alphabet() {
        let a = random("req_", 30);
        assert_eq!(a.len(), 34);
        assert!(a[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random("req_", 24), random("req_", 24));
    }
}
