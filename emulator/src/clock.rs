//! The emulator clock: the one source of "now" for everything the emulator does.
//!
//! It runs with the system clock plus an offset that only grows (`advance`), and it never goes
//! backwards even if the system clock does, so ledger `created_at` values are monotonic in commit
//! order (which `as_of` reads and time-window filters rely on). Times are microseconds since the
//! Unix epoch, rendered as RFC 3339 UTC.
//!
//! **Per-sandbox clocks.** Every sandbox reads this clock plus an offset of its own (an atomic
//! on the tenant, see `domain::registry::Tenant::now`), which also only grows: advancing one
//! sandbox moves its offset, advancing the emulator moves this clock and so every sandbox.
//!
//! **Deterministic mode** ([`Clock::frozen`]): the clock starts at a fixed time
//! ([`DETERMINISTIC_START`]) and moves only when advanced; the system clock plays no part, so
//! the same requests stamp the same times on every run.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a time as [`Timestamp::to_rfc3339`] writes it for years 0 to 9999.
pub const RFC3339_LEN: usize = 27;

/// A point in emulator time: microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Microseconds since the epoch.
    pub fn micros(self) -> i64 {
        self.0
    }
    /// Whole seconds since the epoch.
    pub fn unix_seconds(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    /// This time plus `seconds` (saturating).
    pub fn plus_seconds(self, seconds: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(seconds.saturating_mul(1_000_000)))
    }
    /// RFC 3339 with microseconds and a `Z`.
    pub fn to_rfc3339(self) -> String {
        let mut buf = [0; RFC3339_LEN];
        match self.write_rfc3339(&mut buf) {
            Some(text) => text.to_owned(),
            None => match DateTime::<Utc>::from_timestamp_micros(self.0) {
                Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
                None => "1970-01-01T00:00:00.000000Z".to_owned(),
            },
        }
    }

    /// Writes what [`Timestamp::to_rfc3339`] returns into `buf`, for years 0 to 9999 (every
    /// other time is `None`). Every answer carries times, and this writes one with no
    /// allocation and no formatting machinery.
    pub fn write_rfc3339(self, buf: &mut [u8; RFC3339_LEN]) -> Option<&str> {
        use chrono::{Datelike, Timelike};
        let t = DateTime::<Utc>::from_timestamp_micros(self.0)?;
        let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut put = |at: usize, digits: usize, mut v: u32| {
            for i in (at..at + digits).rev() {
                buf[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 6, t.nanosecond() / 1000);
        for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (26, b'Z')] {
            buf[at] = sep;
        }
        std::str::from_utf8(buf).ok()
    }
    /// Parses RFC 3339 (any offset; converted to UTC).
    pub fn parse(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| Timestamp(t.with_timezone(&Utc).timestamp_micros()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; RFC3339_LEN];
        match self.write_rfc3339(&mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.to_rfc3339()),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time"))
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Timestamp".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "format": "date-time"})
    }
}

/// Where a deterministic clock starts: 2030-01-01T00:00:00Z.
pub const DETERMINISTIC_START: Timestamp = Timestamp(1_893_456_000_000_000);

/// The emulator clock. Cheap to read from many threads at once.
#[derive(Debug, Default)]
pub struct Clock {
    offset_micros: AtomicI64,
    last_micros: AtomicI64,
    /// `Some(start)`: a frozen clock, `start` plus the offset, with no system time in it.
    frozen_at: Option<i64>,
}

impl Clock {
    /// A clock that starts at the system time.
    pub fn new() -> Clock {
        Clock::default()
    }

    /// A clock that reads `start` until it is advanced (deterministic mode).
    pub fn frozen(start: Timestamp) -> Clock {
        Clock { frozen_at: Some(start.0), ..Clock::default() }
    }

    /// Whether the clock moves only when advanced.
    pub fn is_frozen(&self) -> bool {
        self.frozen_at.is_some()
    }

    /// The time the offset is added to: the system time, or the frozen start.
    fn base_micros(&self) -> i64 {
        match self.frozen_at {
            Some(start) => start,
            // The system clock in microseconds, as `Utc::now().timestamp_micros()` is, without
            // building a calendar date on the way (a third of the cost of a read).
            None => match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                Ok(since) => i64::try_from(since.as_micros()).unwrap_or(i64::MAX),
                Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
            },
        }
    }

    /// Now, in emulator time. Monotonic: never less than a value returned before.
    pub fn now(&self) -> Timestamp {
        let system = self.base_micros();
        let candidate = system.saturating_add(self.offset_micros.load(Ordering::Acquire));
        let previous = self.last_micros.fetch_max(candidate, Ordering::AcqRel);
        Timestamp(previous.max(candidate))
    }

    /// How far the clock has been moved ahead of the system clock (of its start, when frozen),
    /// in microseconds.
    pub fn offset_micros(&self) -> i64 {
        self.offset_micros.load(Ordering::Acquire)
    }

    /// Moves the clock forward so that `now() >= to`. Returns the new now.
    pub fn advance_to(&self, to: Timestamp) -> Timestamp {
        let now = self.now();
        if to > now {
            self.offset_micros.fetch_add(to.0 - now.0, Ordering::AcqRel);
        }
        self.now()
    }

    /// Restores an offset taken from an exported state. The clock never goes back, and it keeps
    /// running: an offset that would put the system clock plus it behind now (an older export)
    /// is raised to now's. (Only raising `now`'s floor would freeze the clock until wall time
    /// caught up, and with it everything that waits for time to pass, the rate limit's refill
    /// among them.)
    pub fn restore(&self, offset_micros: i64, not_before: Timestamp) {
        let floor = self.now().0.max(not_before.0);
        let system = self.base_micros();
        let offset = offset_micros.max(floor.saturating_sub(system));
        self.offset_micros.store(offset, Ordering::Release);
        self.last_micros.fetch_max(floor, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_stays_monotonic() {
        let clock = Clock::new();
        let before = clock.now();
        let after = clock.advance_to(before.plus_seconds(3600));
        assert!(after >= before.plus_seconds(3600));
        assert!(clock.now() >= after);
    }

    /// Restoring an older state's offset keeps the clock running from where it was.
    #[test]
    fn restoring_an_older_offset_does_not_freeze_the_clock() {
        let clock = Clock::new();
        let old = clock.now();
        let ahead = clock.advance_to(old.plus_seconds(24 * 3600));
        clock.restore(0, old);
        let a = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = clock.now();
        assert!(a >= ahead, "never back");
        assert!(b.0 - a.0 >= 4_000, "still running: {a:?} then {b:?}");
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = Clock::frozen(DETERMINISTIC_START);
        assert_eq!(clock.now().to_rfc3339(), "2030-01-01T00:00:00.000000Z");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(clock.now(), DETERMINISTIC_START);
        assert_eq!(clock.advance_to(DETERMINISTIC_START.plus_seconds(60)), DETERMINISTIC_START.plus_seconds(60));
        assert_eq!(clock.offset_micros(), 60_000_000);
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = Timestamp(1_700_000_000_123_456);
        assert_eq!(t.to_rfc3339(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(Timestamp::parse(&t.to_rfc3339()), Some(t));
        assert_eq!(Timestamp::parse("2023-11-14T23:13:20.123456+01:00"), Some(t));
        assert_eq!(Timestamp::parse("yesterday"), None);
    }

    #[test]
    fn rfc3339_fast_path_writes_what_chrono_writes() {
        let mut samples =
            vec![0, -1, 1, 999_999, -62_167_219_200_000_000, 253_402_300_799_999_999, 951_782_400_000_001];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x % 253_402_300_800_000_000);
        }
        for micros in samples {
            let chrono = DateTime::<Utc>::from_timestamp_micros(micros)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                .unwrap_or_default();
            let mut buf = [0; RFC3339_LEN];
            if let Some(fast) = Timestamp(micros).write_rfc3339(&mut buf) {
                assert_eq!(fast, chrono, "{micros}");
            }
            assert_eq!(Timestamp(micros).to_rfc3339(), chrono, "{micros}");
        }
    }
}
