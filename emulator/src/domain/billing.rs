//! Metering, plans, billing periods and invoices of one tenant. No HTTP.
//!
//! **Meters.** `api_requests` (every admitted authenticated request), `ledger_lines` (ledger
//! lines written) and `webhook_attempts` (attempts made). Each is recorded by the code that does
//! the counted thing, under the tenant lock it already holds for it: a request when it is
//! admitted (before its handler runs), the lines of a write in the same critical section as the
//! write (added to that request's row), an attempt where the dispatcher records it, the lines of
//! an import job in the chunk that writes them. So usage is exact: the export, the invoice and
//! the ledger agree to the unit.
//!
//! **Rows.** Usage is kept as one row per metered unit group: a request (its `api_requests`
//! and, for a write, its `ledger_lines`), a webhook attempt (its delivery id stands in for a
//! request id), a chunk of an import job (the job id), the seed of a demo sandbox (`seed`). A row
//! is 28 bytes: its time in milliseconds from the period's start, its quantities, and its id
//! packed into 16 bytes when the emulator made it (`req_…`, `msg_…`, `job_…`); a client's own
//! `X-Request-Id` goes to an append-only text log beside the rows. So a million requests cost
//! about 28 MB. Rows are kept for the current period and the previous [`PERIODS_KEPT`] - 1;
//! totals per period are kept with them and on the invoices.
//!
//! **Periods** are calendar months (UTC) of the emulator clock. A row goes to the period of its
//! time. A period closes when its invoice is issued (the scheduler does it as the clock passes
//! the period's end); anything recorded later for a closed period (a request admitted just
//! before the end whose write commits after the clock was advanced past it) is charged to the
//! next open period, so an issued invoice never changes and always equals its rows.
//!
//! **Quotas.** `free` has hard quotas: a request over `api_requests` is refused with 429
//! `quota_exceeded` and is not counted (a hard quota is never exceeded), a write that would pass
//! `ledger_lines` is refused whole, and webhook attempts over `webhook_attempts` wait for the
//! next period. `pro` quotas are included amounts: usage beyond them is billed per unit
//! (`overage_unit_amount`, integer minor units of `currency`). The first time a meter hits a hard
//! quota in a period the caller writes one `usage.quota_exceeded` event ([`Usage::notify`]).
//!
//! **Plan changes** apply at once; an invoice bills the whole period at the plan held when it
//! closes (no proration).

use std::collections::VecDeque;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bounded::BoundedLog;
use super::chunked::ChunkedVec;
use super::csv::csv_record;
use super::error::DomainError;
use super::model::Plan;
use super::paging::{Page, Window};
use crate::clock::Timestamp;
use crate::ids;

/// Periods whose rows are kept (the current one included).
pub const PERIODS_KEPT: usize = 13;
/// Invoices kept per tenant (twenty years).
pub const INVOICES_KEPT: usize = 240;
/// Most nightly runs one catch-up makes: a clock jump over more midnights than this runs only
/// the last ones (a jump to the year 2999 would otherwise write 355,000 runs and events).
pub const NIGHTLY_BACKLOG_MAX_DAYS: u64 = 366;
/// Bytes of one chunk of the request-id text log.
const TEXT_CHUNK_BYTES: usize = 1 << 20;
/// Longest id kept on a row, in bytes (request ids are at most 200).
const ROW_ID_LEN_MAX: usize = 255;

/// What is metered.
///
/// - `api_requests`: Authenticated requests admitted (not those refused by the rate limit or the
///   `api_requests` quota).
/// - `ledger_lines`: Ledger lines written (a transfer writes two).
/// - `webhook_attempts`: Webhook delivery attempts made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Meter {
    ApiRequests,
    LedgerLines,
    WebhookAttempts,
}

impl Meter {
    /// Every meter, in report order.
    pub const ALL: [Meter; 3] = [Meter::ApiRequests, Meter::LedgerLines, Meter::WebhookAttempts];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Meter::ApiRequests => "api_requests",
            Meter::LedgerLines => "ledger_lines",
            Meter::WebhookAttempts => "webhook_attempts",
        }
    }
}

/// One number per meter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PerMeter {
    /// `api_requests`.
    pub api_requests: u64,
    /// `ledger_lines`.
    pub ledger_lines: u64,
    /// `webhook_attempts`.
    pub webhook_attempts: u64,
}

impl PerMeter {
    /// The value of one meter.
    pub fn get(&self, meter: Meter) -> u64 {
        match meter {
            Meter::ApiRequests => self.api_requests,
            Meter::LedgerLines => self.ledger_lines,
            Meter::WebhookAttempts => self.webhook_attempts,
        }
    }
}

/// A plan (`GET /v1/plans`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanInfo {
    /// `free` or `pro`.
    pub id: Plan,
    /// For people.
    pub name: String,
    /// ISO 4217 code, lower case; every amount is in its minor unit.
    pub currency: String,
    /// The fixed price of a period, in minor units.
    pub base_amount: u64,
    /// Whether the quotas are hard (refused beyond them) or included amounts (billed beyond).
    pub hard_quotas: bool,
    /// Per period: the hard limit (`free`) or the amount included in `base_amount` (`pro`).
    pub quotas: PerMeter,
    /// Price of each unit beyond the quota, in minor units (0 on a plan with hard quotas).
    pub overage_unit_amount: PerMeter,
}

impl PlanInfo {
    /// The hard limit of a meter, if this plan has hard quotas.
    pub fn hard_quota(&self, meter: Meter) -> Option<u64> {
        self.hard_quotas.then(|| self.quotas.get(meter))
    }
}

/// The plans this emulator offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plans {
    /// `free`.
    pub free: PlanInfo,
    /// `pro`.
    pub pro: PlanInfo,
}

impl Plans {
    /// One plan.
    pub fn get(&self, plan: Plan) -> &PlanInfo {
        match plan {
            Plan::Free => &self.free,
            Plan::Pro => &self.pro,
        }
    }

    /// Every plan, `free` first.
    pub fn all(&self) -> Vec<PlanInfo> {
        vec![self.free.clone(), self.pro.clone()]
    }
}

/// Hard quotas of `free` per month: generous enough that test suites never meet them (the
/// emulator's own suite writes 10,000 lines in one sandbox).
pub const FREE_QUOTAS: PerMeter = PerMeter { api_requests: 100_000, ledger_lines: 20_000, webhook_attempts: 20_000 };
/// Amounts included in `pro` per month.
pub const PRO_QUOTAS: PerMeter = PerMeter { api_requests: 1_000_000, ledger_lines: 200_000, webhook_attempts: 200_000 };
/// `pro` price per unit beyond its quotas, in cents.
pub const PRO_OVERAGE_UNIT_AMOUNT: PerMeter = PerMeter { api_requests: 1, ledger_lines: 2, webhook_attempts: 1 };
/// `pro` price per month, in cents.
pub const PRO_BASE_AMOUNT: u64 = 4_900;

impl Default for Plans {
    fn default() -> Self {
        Plans {
            free: PlanInfo {
                id: Plan::Free,
                name: "Free".to_owned(),
                currency: "usd".to_owned(),
                base_amount: 0,
                hard_quotas: true,
                quotas: FREE_QUOTAS,
                overage_unit_amount: PerMeter::default(),
            },
            pro: PlanInfo {
                id: Plan::Pro,
                name: "Pro".to_owned(),
                currency: "usd".to_owned(),
                base_amount: PRO_BASE_AMOUNT,
                hard_quotas: false,
                quotas: PRO_QUOTAS,
                overage_unit_amount: PRO_OVERAGE_UNIT_AMOUNT,
            },
        }
    }
}

// ---- calendar ---------------------------------------------------------------------------------

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

// ---- usage rows -------------------------------------------------------------------------------

/// One metered unit group: 28 bytes. Its time is kept in milliseconds from the period's start;
/// its id is packed into `id` when the emulator made it (see [`pack`]), else it is in the
/// period's text log and `id[0]` is its length.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    id: [u8; 16],
    offset_ms: u32,
    lines: u32,
    /// [`ID_TEXT`], [`ID_REQ`], or [`ID_MSG`]/[`ID_JOB`] with the hex digit count above bit 2.
    id_kind: u8,
    api: u8,
    attempts: u8,
}

const ID_TEXT: u8 = 0;
const ID_REQ: u8 = 1;
const ID_MSG: u8 = 2;
const ID_JOB: u8 = 3;
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Marks a byte that is not in [`BASE36`] in [`BASE36_DIGIT`].
const NOT_BASE36: u8 = u8::MAX;
/// The value of each byte as a [`BASE36`] digit (a row is packed on every request).
const BASE36_DIGIT: [u8; 256] = {
    let mut table = [NOT_BASE36; 256];
    let mut i = 0;
    while i < BASE36.len() {
        table[BASE36[i] as usize] = i as u8;
        i += 1;
    }
    table
};
/// Characters after `req_` in a request id the emulator assigns.
const REQ_ID_BODY_LEN: usize = 24;

/// Packs an id the emulator makes itself into 16 bytes: `req_` + 24 of `[a-z0-9]` (a generated
/// request id: 124 bits in base 36), `msg_`/`job_` + up to 30 lowercase hex digits (a webhook
/// delivery, an import job). `None` for any other id (a client's own `X-Request-Id`, `seed`).
fn pack(id: &str) -> Option<(u8, [u8; 16])> {
    if let Some(body) = id.strip_prefix("req_") {
        if body.len() != REQ_ID_BODY_LEN {
            return None;
        }
        let mut v: u128 = 0;
        for b in body.bytes() {
            let digit = BASE36_DIGIT[usize::from(b)];
            if digit == NOT_BASE36 {
                return None;
            }
            v = v * 36 + u128::from(digit);
        }
        return Some((ID_REQ, v.to_le_bytes()));
    }
    for (prefix, kind) in [("msg_", ID_MSG), ("job_", ID_JOB)] {
        if let Some(body) = id.strip_prefix(prefix) {
            let hex = body.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if body.is_empty() || body.len() > 30 || !hex {
                return None;
            }
            let v = u128::from_str_radix(body, 16).ok()?;
            return Some((kind | ((body.len() as u8) << 2), v.to_le_bytes()));
        }
    }
    None
}

/// Writes the id packed by [`pack`] into `out`.
fn unpack(kind: u8, bytes: [u8; 16], out: &mut String) {
    out.clear();
    let mut v = u128::from_le_bytes(bytes);
    match kind & 3 {
        ID_REQ => {
            let mut body = [b'0'; REQ_ID_BODY_LEN];
            for slot in body.iter_mut().rev() {
                *slot = BASE36[(v % 36) as usize];
                v /= 36;
            }
            out.push_str("req_");
            out.push_str(std::str::from_utf8(&body).unwrap_or_default());
        }
        k => {
            out.push_str(if k == ID_MSG { "msg_" } else { "job_" });
            out.push_str(&format!("{v:0width$x}", width = usize::from(kind >> 2)));
        }
    }
}

/// Ids of rows, concatenated in row order, in chunks that never move (no large copies while the
/// tenant lock is held). An id never spans two chunks.
#[derive(Clone, Debug, Default)]
struct TextLog {
    chunks: Vec<String>,
}

/// A reading position in a [`TextLog`].
#[derive(Clone, Copy, Debug, Default)]
struct TextCursor {
    chunk: usize,
    offset: usize,
}

impl TextLog {
    fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        match self.chunks.last_mut() {
            Some(c) if c.len() + text.len() <= TEXT_CHUNK_BYTES => c.push_str(text),
            _ => {
                let mut c = String::with_capacity(TEXT_CHUNK_BYTES.max(text.len()));
                c.push_str(text);
                self.chunks.push(c);
            }
        }
    }

    fn read(&self, at: &mut TextCursor, len: usize) -> &str {
        if len == 0 {
            return "";
        }
        if self.chunks.get(at.chunk).is_some_and(|c| at.offset + len > c.len()) {
            at.chunk += 1;
            at.offset = 0;
        }
        let text = self.chunks.get(at.chunk).and_then(|c| c.get(at.offset..at.offset + len)).unwrap_or_default();
        at.offset += len;
        text
    }
}

fn clip(id: &str) -> &str {
    if id.len() <= ROW_ID_LEN_MAX {
        return id;
    }
    let mut end = ROW_ID_LEN_MAX;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

/// The usage of one billing period.
#[derive(Clone, Debug)]
pub struct PeriodUsage {
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive): the next month's start.
    pub end: Timestamp,
    /// Sum of the rows, per meter.
    pub totals: PerMeter,
    /// Meters whose `usage.quota_exceeded` event was written this period.
    pub notified: Vec<Meter>,
    /// Invoiced: nothing more is charged to it.
    pub closed: bool,
    rows: ChunkedVec<Row>,
    ids: TextLog,
}

impl PeriodUsage {
    fn new(start: Timestamp) -> PeriodUsage {
        PeriodUsage {
            start,
            end: next_month(start),
            totals: PerMeter::default(),
            notified: Vec::new(),
            closed: false,
            rows: ChunkedVec::default(),
            ids: TextLog::default(),
        }
    }

    fn push(&mut self, at: Timestamp, id: &str, api: u8, lines: u32, attempts: u8) -> usize {
        let (id_kind, packed) = pack(id).unwrap_or_else(|| {
            let text = clip(id);
            self.ids.push(text);
            let mut len = [0; 16];
            len[0] = text.len() as u8;
            (ID_TEXT, len)
        });
        // Milliseconds from the start (a straggler charged to a later period reads as its start).
        let offset_ms =
            u32::try_from(at.micros().saturating_sub(self.start.micros()).max(0) / 1000).unwrap_or(u32::MAX);
        self.rows.push(Row { id: packed, offset_ms, lines, id_kind, api, attempts });
        self.totals.api_requests += u64::from(api);
        self.totals.ledger_lines += u64::from(lines);
        self.totals.webhook_attempts += u64::from(attempts);
        self.rows.len() - 1
    }

    /// Number of rows.
    pub fn row_count(&self) -> usize {
        self.rows.len()
    }

    /// Visits up to `max` rows from `cursor` (and before row `end`), advancing it; each row is
    /// given with its time, id and quantities. Returns whether rows remain before `end`.
    pub fn visit(
        &self,
        cursor: &mut ExportCursor,
        end: usize,
        max: usize,
        mut f: impl FnMut(Timestamp, &str, PerMeter),
    ) -> bool {
        let end = end.min(self.rows.len());
        let mut seen = 0;
        let mut packed = String::new();
        while cursor.row < end && seen < max {
            let Some(row) = self.rows.get(cursor.row) else { break };
            let id = if row.id_kind == ID_TEXT {
                self.ids.read(&mut cursor.text, usize::from(row.id[0]))
            } else {
                unpack(row.id_kind, row.id, &mut packed);
                packed.as_str()
            };
            let q = PerMeter {
                api_requests: u64::from(row.api),
                ledger_lines: u64::from(row.lines),
                webhook_attempts: u64::from(row.attempts),
            };
            let at = Timestamp(self.start.micros() + i64::from(row.offset_ms) * 1000);
            f(at, id, q);
            cursor.row += 1;
            seen += 1;
        }
        cursor.row < end
    }

    /// Recomputes the totals from the rows (`quantity == Σ rows`, checked on import and in debug
    /// builds when an invoice is issued).
    fn sum_rows(&self) -> PerMeter {
        let mut t = PerMeter::default();
        for r in self.rows.iter_from(0) {
            t.api_requests += u64::from(r.api);
            t.ledger_lines += u64::from(r.lines);
            t.webhook_attempts += u64::from(r.attempts);
        }
        t
    }
}

/// Where an export has got to in a period's rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportCursor {
    row: usize,
    text: TextCursor,
}

/// The rows of a period as exported: `[time_micros, id, api_requests, ledger_lines,
/// webhook_attempts]` each, streamed rather than collected.
struct RowsOut<'a>(&'a PeriodUsage);

impl Serialize for RowsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.rows.len()))?;
        let mut cursor = ExportCursor::default();
        let mut failed = None;
        self.0.visit(&mut cursor, usize::MAX, usize::MAX, |at, id, q| {
            if failed.is_none() {
                let row = (at.micros(), id, q.api_requests, q.ledger_lines, q.webhook_attempts);
                if let Err(e) = seq.serialize_element(&row) {
                    failed = Some(e);
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct PeriodOut<'a> {
    start: Timestamp,
    closed: bool,
    notified: &'a [Meter],
    totals: PerMeter,
    rows: RowsOut<'a>,
}

#[derive(Deserialize)]
struct PeriodIn {
    start: Timestamp,
    #[serde(default)]
    closed: bool,
    #[serde(default)]
    notified: Vec<Meter>,
    #[serde(default)]
    rows: Vec<(i64, String, u8, u32, u8)>,
}

impl Serialize for PeriodUsage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        PeriodOut {
            start: self.start,
            closed: self.closed,
            notified: &self.notified,
            totals: self.totals,
            rows: RowsOut(self),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PeriodUsage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let input = PeriodIn::deserialize(d)?;
        let mut p = PeriodUsage::new(month_start(input.start));
        p.closed = input.closed;
        p.notified = input.notified;
        // Totals are recomputed from the rows: they are the record.
        for (at, id, api, lines, attempts) in input.rows {
            p.push(Timestamp(at), &id, api, lines, attempts);
        }
        Ok(p)
    }
}

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
                if let Some(existing) = p.rows.get_mut(r.index) {
                    existing.lines = existing.lines.saturating_add(lines32);
                    p.totals.ledger_lines += u64::from(lines32);
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

// ---- invoices ---------------------------------------------------------------------------------

/// Where an invoice stands. Invoices are issued at the end of their period; the emulator takes
/// no payments, so `issued` is final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Issued,
}

/// One meter on an invoice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceLine {
    /// The meter.
    pub meter: Meter,
    /// Used in the period.
    pub quantity: u64,
    /// The plan's quota (hard limit or included amount).
    pub included: u64,
    /// `max(0, quantity - included)`.
    pub overage: u64,
    /// Price per unit of overage, in minor units.
    pub unit_amount: u64,
    /// `overage * unit_amount`, in minor units.
    pub amount: u64,
}

/// An invoice: one billing period of one sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Invoice {
    /// `inv_…`
    pub id: String,
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period (inclusive).
    pub period_start: Timestamp,
    /// End of the period (exclusive).
    pub period_end: Timestamp,
    /// The plan billed (the one held when the period closed).
    pub plan: Plan,
    /// ISO 4217 code, lower case.
    pub currency: String,
    /// The plan's fixed price, in minor units.
    pub base_amount: u64,
    /// One line per meter.
    pub lines: Vec<InvoiceLine>,
    /// `base_amount + Σ lines[].amount`, in minor units.
    pub subtotal: u64,
    /// What is due (no taxes in the emulator: equals `subtotal`).
    pub total: u64,
    /// `issued`.
    pub status: InvoiceStatus,
    /// When it was issued (emulator clock).
    pub created_at: Timestamp,
}

impl Invoice {
    /// The invoice as CSV: one record per meter and one `base` record; `amount` sums to `total`.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        csv_record(
            &mut out,
            &[
                "invoice_id",
                "period_start",
                "period_end",
                "plan",
                "currency",
                "item",
                "quantity",
                "included",
                "overage",
                "unit_amount",
                "amount",
            ],
        );
        let head = [
            self.id.clone(),
            self.period_start.to_rfc3339(),
            self.period_end.to_rfc3339(),
            plan_name(self.plan).to_owned(),
            self.currency.clone(),
        ];
        for l in &self.lines {
            let mut rec = head.to_vec();
            rec.extend([
                l.meter.as_str().to_owned(),
                l.quantity.to_string(),
                l.included.to_string(),
                l.overage.to_string(),
                l.unit_amount.to_string(),
                l.amount.to_string(),
            ]);
            csv_record(&mut out, &rec);
        }
        let mut base = head.to_vec();
        base.extend([
            "base".to_owned(),
            "1".into(),
            "0".into(),
            "0".into(),
            self.base_amount.to_string(),
            self.base_amount.to_string(),
        ]);
        csv_record(&mut out, &base);
        out
    }
}

fn plan_name(plan: Plan) -> &'static str {
    match plan {
        Plan::Free => "free",
        Plan::Pro => "pro",
    }
}

/// `invoice` lines from a period's totals under a plan.
pub fn invoice_lines(plan: &PlanInfo, totals: PerMeter) -> Vec<InvoiceLine> {
    Meter::ALL
        .into_iter()
        .map(|m| {
            let quantity = totals.get(m);
            let included = plan.quotas.get(m);
            let overage = quantity.saturating_sub(included);
            let unit_amount = plan.overage_unit_amount.get(m);
            InvoiceLine {
                meter: m,
                quantity,
                included,
                overage,
                unit_amount,
                amount: overage.saturating_mul(unit_amount),
            }
        })
        .collect()
}

/// The billing state of a tenant: the open period, the nightly schedule, the invoices. It changes
/// only at period ends and midnights (usage, which changes on every request, is apart).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Billing {
    /// Id tag of invoices (kept across sandbox resets, as invoices are).
    pub tag: String,
    /// Start of the period not yet invoiced.
    pub period_start: Timestamp,
    /// When the next nightly reconciliation is due.
    pub next_nightly: Timestamp,
    invoices: BoundedLog<Invoice>,
}

impl Billing {
    /// A cheap summary that changes whenever the billing state does (for the durable store).
    pub fn stamp(&self, h: &mut impl std::hash::Hasher) {
        h.write(self.tag.as_bytes());
        h.write_i64(self.period_start.micros());
        h.write_i64(self.next_nightly.micros());
        h.write_u64(self.invoices.written());
    }

    /// Billing of a tenant created at `now`.
    pub fn new(now: Timestamp) -> Billing {
        Billing {
            tag: ids::new_tag(),
            period_start: month_start(now),
            next_nightly: next_midnight(now),
            invoices: BoundedLog::default(),
        }
    }

    /// Whether it was set up (an export from before billing carries none).
    pub fn is_set_up(&self) -> bool {
        !self.tag.is_empty()
    }

    /// End of the period not yet invoiced.
    pub fn period_end(&self) -> Timestamp {
        next_month(self.period_start)
    }

    /// The next time something is due: a period end or a midnight.
    pub fn next_due(&self) -> Timestamp {
        self.period_end().min(self.next_nightly)
    }

    /// Skips the nightly runs due more than [`NIGHTLY_BACKLOG_MAX_DAYS`] before `until`.
    pub fn skip_nightly_backlog(&mut self, until: Timestamp) {
        let earliest = Timestamp(until.micros().saturating_sub(NIGHTLY_BACKLOG_MAX_DAYS as i64 * 86_400_000_000));
        if self.next_nightly < earliest {
            self.next_nightly = next_midnight(Timestamp(earliest.micros() - 1));
        }
    }

    /// Closes the open period and issues its invoice under `plan`.
    pub fn issue_invoice(&mut self, usage: &mut Usage, plan: &PlanInfo, now: Timestamp) -> Invoice {
        let start = self.period_start;
        let end = self.period_end();
        let totals = usage.close(start);
        let lines = invoice_lines(plan, totals);
        let subtotal = plan.base_amount + lines.iter().map(|l| l.amount).sum::<u64>();
        let invoice = Invoice {
            id: ids::format("inv", &self.tag, self.invoices.next_position()),
            period: period_label(start),
            period_start: start,
            period_end: end,
            plan: plan.id,
            currency: plan.currency.clone(),
            base_amount: plan.base_amount,
            lines,
            subtotal,
            total: subtotal,
            status: InvoiceStatus::Issued,
            created_at: now,
        };
        self.invoices.push(invoice.clone(), INVOICES_KEPT);
        self.period_start = end;
        invoice
    }

    /// `GET /v1/invoices/{id}`.
    pub fn invoice(&self, id: &str) -> Result<&Invoice, DomainError> {
        ids::parse("inv", &self.tag, id)
            .and_then(|p| self.invoices.get(p))
            .ok_or_else(|| DomainError::not_found("invoice"))
    }

    /// `GET /v1/invoices`.
    pub fn invoices(&self, window: Window) -> Page<Invoice> {
        self.invoices.page(window, Invoice::clone)
    }
}

// ---- API types --------------------------------------------------------------------------------

/// `GET /v1/plans`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct PlanList {
    /// `free`, then `pro`.
    pub data: Vec<PlanInfo>,
}

/// `GET /v1/subscription`: the plan and the current billing period.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    /// The plan; its quotas apply now.
    pub plan: Plan,
    /// Start of the current period (a calendar month, UTC).
    pub period_start: Timestamp,
    /// End of the current period.
    pub period_end: Timestamp,
}

/// `POST /v1/subscription`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscription {
    /// The new plan; its quotas apply at once.
    pub plan: Plan,
}

/// One meter of a usage report.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct MeterUsage {
    /// The meter.
    pub meter: Meter,
    /// Used in the period.
    pub quantity: u64,
    /// The current plan's quota of it.
    pub quota: u64,
    /// Whether the quota is a hard limit.
    pub hard: bool,
}

/// `GET /v1/usage`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageReport {
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period.
    pub period_end: Timestamp,
    /// The current plan.
    pub plan: Plan,
    /// One entry per meter.
    pub meters: Vec<MeterUsage>,
}

/// One row of a usage export.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageRecord {
    /// When it was metered.
    pub time: Timestamp,
    /// The request (or webhook delivery `msg_…`, import job `job_…`, or `seed`) it belongs to.
    pub request_id: String,
    /// The meter.
    pub meter: Meter,
    /// How many units.
    pub quantity: u64,
}

/// `GET /v1/usage/export?format=json`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct UsageExport {
    /// `YYYY-MM`.
    pub period: String,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period.
    pub period_end: Timestamp,
    /// Every row, in the order metered.
    pub data: Vec<UsageRecord>,
}

/// A page of invoices.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceList {
    /// This page, oldest first.
    pub data: Vec<Invoice>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The data of a `usage.quota_exceeded` event.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct QuotaExceeded {
    /// The meter.
    pub meter: Meter,
    /// Its hard quota.
    pub quota: u64,
    /// The plan.
    pub plan: Plan,
    /// Start of the period.
    pub period_start: Timestamp,
    /// End of the period (when the quota renews).
    pub period_end: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Timestamp {
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

    #[test]
    fn ids_pack_and_unpack() {
        let mut out = String::new();
        for id in [
            crate::ids::random("req_", 24),
            "req_zzzzzzzzzzzzzzzzzzzzzzzz".to_owned(),
            "req_000000000000000000000000".to_owned(),
            crate::ids::format("msg", "0a1b2c3d", 42),
            crate::ids::format("job", "ffffffff", u64::MAX),
        ] {
            let (kind, bytes) = pack(&id).unwrap_or_else(|| panic!("{id} packs"));
            unpack(kind, bytes, &mut out);
            assert_eq!(out, id);
        }
        for id in ["seed", "req_short", "req_UPPERCASEUPPERCASEUPPER", "msg_xyz", "my-own-id, with a comma", ""] {
            assert!(pack(id).is_none(), "{id}");
        }
        assert_eq!(std::mem::size_of::<Row>(), 28);
        // Client ids go to the text log and come back whole, in order with packed ones.
        let mut p = PeriodUsage::new(month_start(Timestamp(1_790_000_000_000_000)));
        let at = Timestamp(p.start.micros() + 1_234_567);
        for id in ["client-1", "req_000000000000000000000001", "", "seed"] {
            p.push(at, id, 1, 0, 0);
        }
        let mut seen = Vec::new();
        p.visit(&mut ExportCursor::default(), usize::MAX, 10, |t, id, _| seen.push((t, id.to_owned())));
        let ids: Vec<&str> = seen.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids, ["client-1", "req_000000000000000000000001", "", "seed"]);
        assert_eq!(seen[0].0, Timestamp(p.start.micros() + 1_234_000), "milliseconds");
    }

    #[test]
    fn text_log_never_splits_an_id() {
        let mut log = TextLog::default();
        let id = "x".repeat(200);
        let n = TEXT_CHUNK_BYTES / 200 + 3;
        for _ in 0..n {
            log.push(&id);
        }
        let mut c = TextCursor::default();
        for _ in 0..n {
            assert_eq!(log.read(&mut c, 200), id);
        }
    }
}
