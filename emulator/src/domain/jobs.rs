//! Import jobs: movements from CSV, processed in the background. No HTTP.
//!
//! `POST /v1/jobs` checks the header and the bounds at once (a bad header is a 422 naming it)
//! and queues the job; a worker then runs it in chunks of at most [`CHUNK_ROWS`] rows, each chunk
//! one critical section of the tenant (so API requests interleave with a long import), writing
//! the movements, their events and webhook deliveries, and the chunk's `ledger_lines` usage
//! together, exactly like an API write.
//!
//! **Idempotent by `reference`.** Every row must carry a `reference`; a row whose reference was
//! already imported into this sandbox (by this job or an earlier one) is skipped and counted in
//! `skipped`, so running the same file twice adds each movement once. References of API
//! movements are not considered (the demo data reuses order numbers across movements).
//!
//! **Bad rows** are reported by line number (the header is line 1; a record with a quoted
//! newline is reported at the line where it starts) and the rest still import: the job ends
//! `completed_with_errors`. Rows over a hard `ledger_lines` quota are bad rows too (re-run the
//! file next period, or after upgrading: what was imported is skipped).
//!
//! Bounds: [`DATA_BYTES_MAX`] bytes and [`ROWS_MAX`] rows per file, [`ERRORS_KEPT`] errors listed
//! per job (`error_count` is exact), [`JOBS_ACTIVE_MAX`] jobs queued or running per sandbox,
//! [`JOBS_KEPT`] jobs kept.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::billing::{Meter, PlanInfo, Usage};
use super::bounded::BoundedLog;
use super::error::{DomainError, ErrorKind};
use super::idempotency::{Digest128, key_digest};
use super::ledger::Ledger;
use super::model::{CreateMovement, FieldError, MovementType};
use crate::clock::Timestamp;
use crate::ids;

/// Largest `data`, in bytes.
pub const DATA_BYTES_MAX: usize = 4 << 20;
/// Most rows per file (the header not counted).
pub const ROWS_MAX: u64 = 50_000;
/// Rows per chunk (one critical section).
pub const CHUNK_ROWS: usize = 500;
/// Errors listed per job.
pub const ERRORS_KEPT: usize = 1000;
/// Jobs queued or running per sandbox at once.
pub const JOBS_ACTIVE_MAX: usize = 4;
/// Jobs kept per sandbox (older ones answer 404).
pub const JOBS_KEPT: usize = 100;

/// What a job does.
///
/// - `import_movements`: Imports stock movements from CSV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobType {
    ImportMovements,
}

/// The format of a job's data.
///
/// - `csv`: RFC 4180 CSV with a header record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobFormat {
    Csv,
}

/// Where a job stands.
///
/// - `queued`: Waiting for the worker.
/// - `running`: Being processed.
/// - `completed`: Every row imported or skipped.
/// - `completed_with_errors`: Done; some rows were bad (see `errors`).
/// - `failed`: Stopped (its data could not be processed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Completed,
    CompletedWithErrors,
    Failed,
}

/// `POST /v1/jobs`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJob {
    /// `import_movements`.
    #[serde(rename = "type")]
    pub type_: JobType,
    /// `csv`.
    pub format: JobFormat,
    /// The file: header `type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason`
    /// (any order; unused columns may be absent; `type`, `item_id`, `quantity` and `reference`
    /// are required), at most 4 MiB and 50,000 rows.
    #[schemars(length(min = 1, max = 4_194_304))]
    pub data: String,
}

/// How far a job has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobProgress {
    /// Rows processed (imported, skipped or bad).
    pub processed: u64,
    /// Rows in the file (the header not counted).
    pub total: u64,
}

/// A bad row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JobError {
    /// Its line in the file (the header is line 1).
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}

/// A background job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Job {
    /// `job_…`
    pub id: String,
    /// `import_movements`.
    #[serde(rename = "type")]
    pub type_: JobType,
    /// `csv`.
    pub format: JobFormat,
    /// Where it stands.
    pub status: JobStatus,
    /// Rows processed of the total.
    pub progress: JobProgress,
    /// Movements created.
    pub created: u64,
    /// Rows skipped because their `reference` was already imported.
    pub skipped: u64,
    /// Bad rows (at most 1000 listed).
    pub errors: Vec<JobError>,
    /// Number of bad rows.
    pub error_count: u64,
    /// When it was queued (emulator clock).
    pub created_at: Timestamp,
    /// When it finished.
    pub completed_at: Option<Timestamp>,
}

/// A column of the import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Column {
    Type,
    ItemId,
    LocationId,
    FromLocationId,
    ToLocationId,
    Quantity,
    Reference,
    Reason,
}

impl Column {
    const ALL: [Column; 8] = [
        Column::Type,
        Column::ItemId,
        Column::LocationId,
        Column::FromLocationId,
        Column::ToLocationId,
        Column::Quantity,
        Column::Reference,
        Column::Reason,
    ];
    const REQUIRED: [Column; 4] = [Column::Type, Column::ItemId, Column::Quantity, Column::Reference];

    fn name(self) -> &'static str {
        match self {
            Column::Type => "type",
            Column::ItemId => "item_id",
            Column::LocationId => "location_id",
            Column::FromLocationId => "from_location_id",
            Column::ToLocationId => "to_location_id",
            Column::Quantity => "quantity",
            Column::Reference => "reference",
            Column::Reason => "reason",
        }
    }
}

/// A stored job: the record and, while it runs, its data and position.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobRecord {
    /// What the API shows.
    pub job: Job,
    columns: Vec<Column>,
    /// The file, until the job ends.
    data: Option<String>,
    /// Byte offset of the next record.
    offset: usize,
    /// Line number at `offset`.
    line: u64,
}

mod digests {
    use super::*;
    pub fn serialize<S: serde::Serializer>(set: &HashSet<Digest128>, s: S) -> Result<S::Ok, S::Error> {
        let mut v: Vec<String> = set.iter().map(|d| format!("{d:032x}")).collect();
        v.sort_unstable();
        s.collect_seq(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<HashSet<Digest128>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| u128::from_str_radix(t, 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// The jobs of one sandbox (emptied with it on reset).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Jobs {
    records: BoundedLog<JobRecord>,
    /// Digests of every reference imported (what makes an import idempotent).
    #[serde(with = "digests")]
    imported: HashSet<Digest128>,
}

/// What one step of the worker did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Step {
    /// Whether a row was refused by the hard `ledger_lines` quota.
    pub quota_hit: bool,
    /// Whether the job finished in this step.
    pub finished: bool,
}

/// Reads the next record at `*offset` (`*line` is the line number there), skipping blank lines.
/// Returns the record's first line and its fields, or what is wrong with it.
fn next_record(data: &str, offset: &mut usize, line: &mut u64) -> Option<(u64, Result<Vec<String>, String>)> {
    let bytes = data.as_bytes();
    let len = bytes.len();
    let mut i = *offset;
    loop {
        match bytes.get(i) {
            None => {
                *offset = i;
                return None;
            }
            Some(b'\n') => {
                i += 1;
                *line += 1;
            }
            Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {
                i += 2;
                *line += 1;
            }
            Some(_) => break,
        }
    }
    let start_line = *line;
    let mut fields = Vec::new();
    let mut problem = None;
    loop {
        let mut field = String::new();
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                let Some(q) = data[i..].find('"').map(|p| i + p) else {
                    *line += data[i..].matches('\n').count() as u64;
                    *offset = len;
                    return Some((start_line, Err("unterminated quoted field".to_owned())));
                };
                field.push_str(&data[i..q]);
                *line += data[i..q].matches('\n').count() as u64;
                if bytes.get(q + 1) == Some(&b'"') {
                    field.push('"');
                    i = q + 2;
                } else {
                    i = q + 1;
                    break;
                }
            }
            if !matches!(bytes.get(i), None | Some(b',' | b'\n' | b'\r')) {
                problem.get_or_insert_with(|| "text after a closing quote".to_owned());
                while !matches!(bytes.get(i), None | Some(b',' | b'\n')) {
                    i += 1;
                }
            }
        } else {
            let start = i;
            while !matches!(bytes.get(i), None | Some(b',' | b'\n')) {
                i += 1;
            }
            field.push_str(data[start..i].strip_suffix('\r').unwrap_or(&data[start..i]));
        }
        fields.push(field);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {
                i += 2;
                *line += 1;
                break;
            }
            Some(b'\n') => {
                i += 1;
                *line += 1;
                break;
            }
            Some(_) => {
                // A lone `\r` after a quoted field: treat as the end of the record.
                i += 1;
                break;
            }
            None => break,
        }
    }
    *offset = i;
    Some((start_line, problem.map_or(Ok(fields), Err)))
}

fn describe(e: &DomainError) -> String {
    if e.errors.is_empty() {
        e.detail.clone()
    } else {
        e.errors.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
    }
}

fn reference_digest(reference: &str) -> Digest128 {
    key_digest(&format!("import_movements\n{reference}"))
}

/// Turns one record into a movement request.
fn movement(columns: &[Column], fields: Vec<String>) -> Result<CreateMovement, String> {
    if fields.len() != columns.len() {
        return Err(format!("expected {} fields, found {}", columns.len(), fields.len()));
    }
    let mut req = CreateMovement {
        type_: MovementType::Receipt,
        item_id: String::new(),
        location_id: None,
        from_location_id: None,
        to_location_id: None,
        quantity: 0,
        reference: None,
        reason: None,
        metadata: None,
        allow_negative: None,
    };
    let text = |v: String| {
        let t = v.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    for (column, value) in columns.iter().zip(fields) {
        match column {
            Column::Type => {
                req.type_ = match value.trim() {
                    "receipt" => MovementType::Receipt,
                    "shipment" => MovementType::Shipment,
                    "adjustment" => MovementType::Adjustment,
                    "transfer" => MovementType::Transfer,
                    other => {
                        return Err(format!("type: must be receipt, shipment, adjustment or transfer, not {other:?}"));
                    }
                }
            }
            Column::ItemId => req.item_id = value.trim().to_owned(),
            Column::LocationId => req.location_id = text(value),
            Column::FromLocationId => req.from_location_id = text(value),
            Column::ToLocationId => req.to_location_id = text(value),
            Column::Quantity => {
                req.quantity = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("quantity: must be an integer, not {:?}", value.trim()))?;
            }
            Column::Reference => req.reference = text(value),
            Column::Reason => req.reason = text(value),
        }
    }
    if req.reference.is_none() {
        return Err("reference: required (it makes the row idempotent)".to_owned());
    }
    Ok(req)
}

impl Jobs {
    /// A cheap summary that changes whenever a job does (for the durable store).
    pub fn stamp(&self, h: &mut impl std::hash::Hasher) {
        h.write_u64(self.records.written());
        h.write_usize(self.imported.len());
        for (_, r) in self.records.iter() {
            h.write_u64(r.job.progress.processed);
            h.write_u64(r.job.error_count);
            h.write_u64(r.job.created);
            h.write_u64(r.job.skipped);
            h.write_usize(r.offset);
            h.write_u8(r.job.status as u8);
        }
    }

    /// `POST /v1/jobs`: checks the file's header and bounds and queues the job.
    pub fn submit(&mut self, tag: &str, req: CreateJob, now: Timestamp) -> Result<Job, DomainError> {
        let invalid = |m: String| DomainError::validation(vec![FieldError::new("data", m)]);
        if req.data.len() > DATA_BYTES_MAX {
            return Err(invalid(format!("must be at most {DATA_BYTES_MAX} bytes")));
        }
        let active =
            self.records.iter().filter(|(_, r)| matches!(r.job.status, JobStatus::Queued | JobStatus::Running)).count();
        if active >= JOBS_ACTIVE_MAX {
            return Err(DomainError::new(
                ErrorKind::TooManyJobs,
                format!("This sandbox already has {JOBS_ACTIVE_MAX} jobs queued or running; wait for one to finish."),
            ));
        }
        let (mut offset, mut line) = (0, 1);
        let header = match next_record(&req.data, &mut offset, &mut line) {
            Some((1, Ok(h))) => h,
            Some((_, Ok(_))) | None => return Err(invalid("must start with a header record on line 1".to_owned())),
            Some((_, Err(e))) => return Err(invalid(format!("line 1 (the header): {e}"))),
        };
        let mut columns = Vec::with_capacity(header.len());
        for name in &header {
            let name = name.trim();
            let column = Column::ALL.into_iter().find(|c| c.name() == name).ok_or_else(|| {
                invalid(format!(
                    "unknown column {name:?} in the header (known: {})",
                    Column::ALL.map(Column::name).join(", ")
                ))
            })?;
            if columns.contains(&column) {
                return Err(invalid(format!("column {name:?} appears twice in the header")));
            }
            columns.push(column);
        }
        if let Some(missing) = Column::REQUIRED.into_iter().find(|c| !columns.contains(c)) {
            return Err(invalid(format!("the header lacks the required column {:?}", missing.name())));
        }
        let (body_offset, body_line) = (offset, line);
        let mut total = 0;
        while next_record(&req.data, &mut offset, &mut line).is_some() {
            total += 1;
            if total > ROWS_MAX {
                return Err(invalid(format!("must hold at most {ROWS_MAX} rows")));
            }
        }
        let job = Job {
            id: ids::format("job", tag, self.records.next_position()),
            type_: req.type_,
            format: req.format,
            status: JobStatus::Queued,
            progress: JobProgress { processed: 0, total },
            created: 0,
            skipped: 0,
            errors: Vec::new(),
            error_count: 0,
            created_at: now,
            completed_at: None,
        };
        let record =
            JobRecord { job: job.clone(), columns, data: Some(req.data), offset: body_offset, line: body_line };
        self.records.push(record, JOBS_KEPT);
        Ok(job)
    }

    /// `GET /v1/jobs/{id}`.
    pub fn get(&self, tag: &str, id: &str) -> Result<&Job, DomainError> {
        ids::parse("job", tag, id)
            .and_then(|p| self.records.get(p))
            .map(|r| &r.job)
            .ok_or_else(|| DomainError::not_found("job"))
    }

    /// Whether a job is waiting for the worker.
    pub fn has_work(&self) -> bool {
        self.records.iter().any(|(_, r)| matches!(r.job.status, JobStatus::Queued | JobStatus::Running))
    }

    /// Runs up to `rows_max` rows of the oldest unfinished job: movements into `ledger`, their
    /// lines into `usage` (one row per step, named by the job id) under `plan`'s hard quota.
    pub fn step(
        &mut self,
        ledger: &mut Ledger,
        usage: &mut Usage,
        plan: &PlanInfo,
        now: Timestamp,
        rows_max: usize,
    ) -> Option<Step> {
        let imported = &mut self.imported;
        let (_, record) =
            self.records.iter_mut().find(|(_, r)| matches!(r.job.status, JobStatus::Queued | JobStatus::Running))?;
        let mut step = Step::default();
        let Some(data) = record.data.take() else {
            record.job.status = JobStatus::Failed;
            record.job.completed_at = Some(now);
            step.finished = true;
            return Some(step);
        };
        record.job.status = JobStatus::Running;
        let job = &mut record.job;
        let mut usage_row = None;
        let mut done = false;
        for _ in 0..rows_max {
            let Some((line, fields)) = next_record(&data, &mut record.offset, &mut record.line) else {
                done = true;
                break;
            };
            job.progress.processed += 1;
            let mut fail = |message: String| {
                job.error_count += 1;
                if job.errors.len() < ERRORS_KEPT {
                    job.errors.push(JobError { line, message });
                }
            };
            let req = match fields.and_then(|f| movement(&record.columns, f)) {
                Ok(r) => r,
                Err(m) => {
                    fail(m);
                    continue;
                }
            };
            let digest = reference_digest(req.reference.as_deref().unwrap_or_default());
            if imported.contains(&digest) {
                job.skipped += 1;
                continue;
            }
            let budget = plan.hard_quota(Meter::LedgerLines).map(|q| usage.remaining(now, Meter::LedgerLines, q));
            ledger.set_line_budget(budget);
            let before = ledger.movement_count();
            let result = ledger.create_movement(req, None, now);
            ledger.set_line_budget(None);
            match result {
                Ok(_) => {
                    job.created += 1;
                    imported.insert(digest);
                    usage.add_lines(&mut usage_row, now, &job.id, ledger.lines_since(before));
                }
                Err(e) => {
                    step.quota_hit |= e.kind == ErrorKind::QuotaExceeded;
                    fail(describe(&e));
                }
            }
        }
        if !done && record.offset >= data.len() {
            done = true;
        }
        if done {
            job.status = if job.error_count > 0 { JobStatus::CompletedWithErrors } else { JobStatus::Completed };
            job.completed_at = Some(now);
            step.finished = true;
        } else {
            record.data = Some(data);
        }
        Some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &str) -> Vec<(u64, Result<Vec<String>, String>)> {
        let (mut offset, mut line) = (0, 1);
        std::iter::from_fn(|| next_record(data, &mut offset, &mut line)).collect()
    }

    #[test]
    fn csv_records_and_line_numbers() {
        let data = "a,b\r\n1,\"x, \"\"y\"\"\"\n\n2,\"multi\nline\"\n3,z";
        let r = records(data);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], (1, Ok(vec!["a".into(), "b".into()])));
        assert_eq!(r[1], (2, Ok(vec!["1".into(), "x, \"y\"".into()])));
        assert_eq!(r[2], (4, Ok(vec!["2".into(), "multi\nline".into()])));
        assert_eq!(r[3], (6, Ok(vec!["3".into(), "z".into()])));
        let bad = records("a\n\"open\n");
        assert_eq!(bad[1].0, 2);
        assert!(bad[1].1.is_err());
        assert_eq!(records("a,b\n1,2\n").len(), 2, "a final newline is not a record");
        assert_eq!(records("x\n\"q\"junk,2\n").get(1).map(|r| r.1.is_err()), Some(true));
    }
}
