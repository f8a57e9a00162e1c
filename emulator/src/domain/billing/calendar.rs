//! The billing calendar: calendar months (UTC) of the emulator clock, midnights, `YYYY-MM`
//! labels and `Retry-After` seconds.
//!
//! Why a file of its own: periods, invoices, the nightly schedule and the HTTP layer all count
//! time the same way; kept here, none of them owns the others' dates.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};

use crate::clock::Timestamp;

fn date_of(t: Timestamp) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(t.micros()).unwrap_or_default().date_naive()
}

fn at_midnight(d: NaiveDate) -> Timestamp {
    Timestamp(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp_micros())
}

/// The start of the calendar month (UTC) holding `t`.
pub fn month_start(t: Timestamp) -> Timestamp {
    let d = date_of(t);
    at_midnight(d.with_day(1).unwrap_or(d))
}

/// The start of the month after the one holding `t` (the end of `t`'s period).
pub fn next_month(t: Timestamp) -> Timestamp {
    let d = date_of(month_start(t));
    at_midnight(d.checked_add_months(Months::new(1)).unwrap_or(d))
}

/// The first 00:00 UTC strictly after `t`.
pub fn next_midnight(t: Timestamp) -> Timestamp {
    let d = date_of(t);
    at_midnight(d.checked_add_days(Days::new(1)).unwrap_or(d))
}

/// `YYYY-MM` of a period start.
pub fn period_label(start: Timestamp) -> String {
    let d = date_of(start);
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Parses `YYYY-MM` into the period's start.
pub fn parse_period(text: &str) -> Option<Timestamp> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1).map(at_midnight)
}

/// Whole seconds from `now` until `end`, rounded up, at least 1 (a `Retry-After`).
pub fn seconds_until(end: Timestamp, now: Timestamp) -> u64 {
    let micros = end.micros().saturating_sub(now.micros()).max(1) as u64;
    micros.div_ceil(1_000_000)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The time written in RFC 3339 (the billing tests' shorthand).
    pub(in crate::domain::billing) fn t(text: &str) -> Timestamp {
        Timestamp::parse(text).expect("time")
    }

    #[test]
    fn calendar() {
        assert_eq!(month_start(t("2026-11-22T13:14:15Z")), t("2026-11-01T00:00:00Z"));
        assert_eq!(next_month(t("2026-12-31T23:59:59Z")), t("2027-01-01T00:00:00Z"));
        assert_eq!(next_month(t("2028-02-29T00:00:00Z")), t("2028-03-01T00:00:00Z"));
        assert_eq!(next_midnight(t("2026-11-22T00:00:00Z")), t("2026-11-23T00:00:00Z"));
        assert_eq!(parse_period("2026-02"), Some(t("2026-02-01T00:00:00Z")));
        assert_eq!(parse_period("2026-13"), None);
        assert_eq!(parse_period("26-01"), None);
        assert_eq!(period_label(t("2026-02-01T00:00:00Z")), "2026-02");
        assert_eq!(seconds_until(t("2026-02-01T00:00:00Z"), t("2026-01-31T23:59:58.5Z")), 2);
    }
}
