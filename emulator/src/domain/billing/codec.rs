//! The usage codec: a period's usage as rows of 28 bytes (time in milliseconds from the
//! period's start, quantities, and an id packed into 16 bytes when the emulator made it, else
//! kept in an append-only text log), and the period's stored form.
//!
//! Why a file of its own: a row is written on every request, so its packing is tuned and
//! tested for itself (a million requests cost about 28 MB); what a tenant's usage means
//! (periods, quotas, the journal) is the usage module's.

use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::calendar::{month_start, next_month};
use super::{Meter, PerMeter};
use crate::clock::Timestamp;
use crate::domain::chunked::ChunkedVec;

/// Bytes of one chunk of the request-id text log.
const TEXT_CHUNK_BYTES: usize = 1 << 20;
/// Longest id kept on a row, in bytes (request ids are at most 200).
const ROW_ID_LEN_MAX: usize = 255;

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
    pub(super) fn new(start: Timestamp) -> PeriodUsage {
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

    // Inline: called on every admitted request, from the usage module.
    #[inline]
    pub(super) fn push(&mut self, at: Timestamp, id: &str, api: u8, lines: u32, attempts: u8) -> usize {
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

    /// Adds `lines` ledger lines to row `index`, if it exists; whether it did.
    #[inline]
    pub(super) fn add_lines_to_row(&mut self, index: usize, lines: u32) -> bool {
        let Some(existing) = self.rows.get_mut(index) else { return false };
        existing.lines = existing.lines.saturating_add(lines);
        self.totals.ledger_lines += u64::from(lines);
        true
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
    pub(super) fn sum_rows(&self) -> PerMeter {
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

#[cfg(test)]
mod tests {
    use super::*;

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
