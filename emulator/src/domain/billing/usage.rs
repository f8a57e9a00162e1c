//! A tenant's metered usage, period by period: admitting requests against a hard quota, adding
//! a write's ledger lines to its request's row, webhook attempts, quota notices and closing a
//! period; and the journal of those changes that the durable store replays.
//!
//! Why a file of its own: this is what runs under the tenant lock on every request. How rows
//! are packed is in `codec.rs`, and the invoice made from a closed period in `invoices.rs`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::calendar::{month_start, next_month, period_label};
use super::codec::PeriodUsage;
use super::{Meter, PerMeter};
use crate::clock::Timestamp;

/// Periods whose rows are kept (the current one included).
pub const PERIODS_KEPT: usize = 13;

/// Where a request's row is, so that its write can add its ledger lines to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRef {
    period_start: Timestamp,
    index: usize,
}

/// A request refused by a hard quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverQuota {
    /// The meter.
    pub meter: Meter,
    /// Its quota.
    pub quota: u64,
    /// When the period ends (when the quota renews).
    pub period_end: Timestamp,
}

/// A tenant's metered usage, period by period.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Usage {
    periods: VecDeque<PeriodUsage>,
    /// Periods before this one were forgotten (their rows are no longer kept).
    #[serde(default)]
    forgotten_before: Timestamp,
    /// Webhook attempts claimed and not yet recorded (they count against a hard quota).
    #[serde(skip)]
    attempts_in_flight: u64,
    /// The changes made since the durable store last took them (`None`: not tracked, the
    /// in-memory default). Replaying them in order on the stored usage gives this one.
    #[serde(skip)]
    journal: Option<Vec<UsageOp>>,
}

/// One change to a tenant's usage, as the durable store journals it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UsageOp {
    /// An admitted request.
    Admit {
        /// When.
        at: Timestamp,
        /// Its request id.
        id: String,
    },
    /// The period of `at` was opened.
    Open {
        /// When.
        at: Timestamp,
    },
    /// Ledger lines added.
    AddLines {
        /// The request's row.
        row: Option<RowRef>,
        /// When.
        at: Timestamp,
        /// The request id.
        id: String,
        /// How many lines.
        lines: u64,
    },
    /// A webhook attempt.
    Attempt {
        /// When.
        at: Timestamp,
        /// The delivery id.
        id: String,
    },
    /// A meter's quota notice.
    Notify {
        /// When.
        at: Timestamp,
        /// The meter.
        meter: Meter,
    },
    /// A period closed.
    Close {
        /// Its start.
        start: Timestamp,
    },
    /// The whole usage (a compacted journal starts with one).
    Snapshot {
        /// It.
        usage: Box<Usage>,
    },
}

impl Usage {
    /// Starts (or keeps) journaling changes, for the durable store.
    pub fn track(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The changes since the last call, in order.
    pub fn take_journal(&mut self) -> Vec<UsageOp> {
        self.journal.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Whether changes wait in the journal.
    pub fn journal_pending(&self) -> bool {
        self.journal.as_ref().is_some_and(|j| !j.is_empty())
    }

    fn note(&mut self, op: UsageOp) {
        if let Some(j) = &mut self.journal {
            j.push(op);
        }
    }

    fn note_open(&mut self, periods_before: usize, at: Timestamp) {
        if self.journal.is_some() && self.periods.len() != periods_before {
            self.note(UsageOp::Open { at });
        }
    }

    /// Applies a journaled change (recovery); the result equals the state it was taken from.
    pub fn replay(&mut self, op: UsageOp) {
        match op {
            UsageOp::Admit { at, id } => {
                let _ = self.admit(at, &id, None);
            }
            UsageOp::Open { at } => {
                self.open(at);
            }
            UsageOp::AddLines { mut row, at, id, lines } => self.add_lines(&mut row, at, &id, lines),
            UsageOp::Attempt { at, id } => {
                self.open(at).push(at, &id, 0, 0, 1);
            }
            UsageOp::Notify { at, meter } => {
                self.notify(at, meter);
            }
            UsageOp::Close { start } => {
                self.close(start);
            }
            UsageOp::Snapshot { usage } => {
                let journal = self.journal.take();
                *self = *usage;
                self.journal = journal;
            }
        }
    }

    /// The index of the open period `at` is charged to (see the module docs).
    fn open_index(&mut self, at: Timestamp) -> usize {
        let start = month_start(at);
        if self.periods.back().is_none_or(|p| start > p.start) {
            self.periods.push_back(PeriodUsage::new(start));
        }
        if let Some(i) = self.periods.iter().position(|p| p.start == start && !p.closed) {
            return i;
        }
        if let Some(i) = self.periods.iter().position(|p| !p.closed && p.start > start) {
            return i;
        }
        let next = next_month(self.periods.back().map_or(start, |p| p.start));
        self.periods.push_back(PeriodUsage::new(next));
        self.periods.len() - 1
    }

    fn open(&mut self, at: Timestamp) -> &mut PeriodUsage {
        let i = self.open_index(at);
        &mut self.periods[i]
    }

    /// The period starting at `start`, if kept.
    pub fn period(&self, start: Timestamp) -> Option<&PeriodUsage> {
        self.periods.iter().find(|p| p.start == start)
    }

    /// Totals of the period starting at `start` (zero if nothing was recorded in it).
    pub fn totals(&self, start: Timestamp) -> PerMeter {
        self.period(start).map(|p| p.totals).unwrap_or_default()
    }

    /// Admits a request at `at`: refused if `quota` (the hard `api_requests` quota) is used up,
    /// else counted in a new row whose reference is returned.
    pub fn admit(&mut self, at: Timestamp, request_id: &str, quota: Option<u64>) -> Result<RowRef, OverQuota> {
        let periods = self.periods.len();
        let p = self.open(at);
        if let Some(q) = quota.filter(|q| p.totals.api_requests >= *q) {
            let over = OverQuota { meter: Meter::ApiRequests, quota: q, period_end: p.end };
            self.note_open(periods, at);
            return Err(over);
        }
        let index = p.push(at, request_id, 1, 0, 0);
        let row = RowRef { period_start: p.start, index };
        if self.journal.is_some() {
            self.note(UsageOp::Admit { at, id: request_id.to_owned() });
        }
        Ok(row)
    }

    /// How much of a hard quota remains in the period of `at` (webhook attempts in flight count
    /// as used).
    pub fn remaining(&mut self, at: Timestamp, meter: Meter, quota: u64) -> u64 {
        let in_flight = if meter == Meter::WebhookAttempts { self.attempts_in_flight } else { 0 };
        let periods = self.periods.len();
        let used = self.open(at).totals.get(meter);
        self.note_open(periods, at);
        quota.saturating_sub(used).saturating_sub(in_flight)
    }

    /// When the period `at` is charged to ends.
    pub fn period_end(&mut self, at: Timestamp) -> Timestamp {
        self.period_bounds(at).1
    }

    /// Start and end of the period `at` is charged to.
    pub fn period_bounds(&mut self, at: Timestamp) -> (Timestamp, Timestamp) {
        let periods = self.periods.len();
        let p = self.open(at);
        let bounds = (p.start, p.end);
        self.note_open(periods, at);
        bounds
    }

    /// Adds `lines` ledger lines written at `at`: to `row` (the request's own row) while its
    /// period is open, else to a new row (which `row` then names).
    pub fn add_lines(&mut self, row: &mut Option<RowRef>, at: Timestamp, id: &str, lines: u64) {
        if lines == 0 {
            return;
        }
        if self.journal.is_some() {
            self.note(UsageOp::AddLines { row: *row, at, id: id.to_owned(), lines });
        }
        let lines32 = u32::try_from(lines).unwrap_or(u32::MAX);
        if let Some(r) = *row {
            if let Some(p) = self.periods.iter_mut().find(|p| p.start == r.period_start && !p.closed) {
                if p.add_lines_to_row(r.index, lines32) {
                    return;
                }
            }
        }
        let p = self.open(at);
        let index = p.push(at, id, 0, lines32, 0);
        *row = Some(RowRef { period_start: p.start, index });
    }

    /// Notes that `count` webhook attempts were claimed (they count against a hard quota until
    /// recorded).
    pub fn claim_attempts(&mut self, count: u64) {
        self.attempts_in_flight += count;
    }

    /// Records one webhook attempt made at `at` for delivery `delivery_id`.
    pub fn record_attempt(&mut self, at: Timestamp, delivery_id: &str) {
        self.attempts_in_flight = self.attempts_in_flight.saturating_sub(1);
        self.open(at).push(at, delivery_id, 0, 0, 1);
        if self.journal.is_some() {
            self.note(UsageOp::Attempt { at, id: delivery_id.to_owned() });
        }
    }

    /// Whether this is the first time `meter` hit its quota in the period of `at` (and notes it):
    /// the caller then writes the one `usage.quota_exceeded` event.
    pub fn notify(&mut self, at: Timestamp, meter: Meter) -> bool {
        let periods = self.periods.len();
        let p = self.open(at);
        if p.notified.contains(&meter) {
            self.note_open(periods, at);
            return false;
        }
        p.notified.push(meter);
        self.note(UsageOp::Notify { at, meter });
        true
    }

    /// Closes the period starting at `start` (its invoice is being issued) and returns its totals.
    pub fn close(&mut self, start: Timestamp) -> PerMeter {
        self.note(UsageOp::Close { start });
        let i = match self.periods.iter().position(|p| p.start >= start) {
            Some(i) if self.periods[i].start == start => i,
            Some(i) => {
                self.periods.insert(i, PeriodUsage::new(start));
                i
            }
            None => {
                self.periods.push_back(PeriodUsage::new(start));
                self.periods.len() - 1
            }
        };
        let p = &mut self.periods[i];
        p.closed = true;
        debug_assert_eq!(p.totals, p.sum_rows(), "usage totals == Σ rows");
        let totals = p.totals;
        while self.periods.len() > PERIODS_KEPT && self.periods.front().is_some_and(|p| p.closed) {
            if let Some(p) = self.periods.pop_front() {
                self.forgotten_before = p.end;
            }
        }
        totals
    }

    /// Checks every kept period's totals against its rows.
    pub fn check(&self) -> Result<(), String> {
        for p in &self.periods {
            if p.totals != p.sum_rows() {
                return Err(format!("period {}: totals differ from the rows", period_label(p.start)));
            }
        }
        Ok(())
    }

    /// Whether the period starting at `start` was forgotten.
    pub fn forgotten(&self, start: Timestamp) -> bool {
        start < self.forgotten_before
    }
}

#[cfg(test)]
mod tests {
    use super::super::calendar::tests::t;
    use super::super::codec::ExportCursor;
    use super::*;

    #[test]
    fn rows_totals_quotas_and_closing() {
        let mut u = Usage::default();
        let at = t("2026-11-22T10:00:00Z");
        let mut row = Some(u.admit(at, "req_a", Some(2)).expect("admitted"));
        u.add_lines(&mut row, at, "req_a", 2);
        u.admit(at, "req_b", Some(2)).expect("admitted");
        let over = u.admit(at, "req_c", Some(2)).expect_err("over quota");
        assert_eq!(over.period_end, t("2026-12-01T00:00:00Z"));
        assert!(u.notify(at, Meter::ApiRequests));
        assert!(!u.notify(at, Meter::ApiRequests), "once per period");
        u.record_attempt(at, "msg_1");
        let start = month_start(at);
        assert_eq!(u.totals(start), PerMeter { api_requests: 2, ledger_lines: 2, webhook_attempts: 1 });
        // A write committing after its period closed is charged to the next period.
        let closed = u.close(start);
        u.add_lines(&mut row, t("2026-12-01T00:00:01Z"), "req_a", 1);
        assert_eq!(u.totals(start), closed);
        assert_eq!(u.totals(t("2026-12-01T00:00:00Z")).ledger_lines, 1);
        let mut rows = Vec::new();
        u.period(start)
            .expect("kept")
            .visit(&mut ExportCursor::default(), usize::MAX, 100, |at, id, q| rows.push((at, id.to_owned(), q)));
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].1, "req_a");
        assert_eq!(rows[2].1, "msg_1");
        u.check().expect("totals == rows");
        // Round trip through the export format.
        let text = serde_json::to_string(&u).expect("ser");
        let back: Usage = serde_json::from_str(&text).expect("de");
        assert_eq!(serde_json::to_string(&back).expect("ser"), text);
    }
}
