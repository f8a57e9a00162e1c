//! The one CSV writer: RFC 4180 quoting, `\n` between records.
//!
//! Why a module of its own: invoices, usage exports and reconciliation discrepancies are all
//! offered as CSV and must quote alike; each used to reach into billing for it (reconciliation
//! imported billing only for this), so the writer sits here, below both.

/// Appends one field, quoted when it holds a comma, a quote or a line break.
fn field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// Appends one CSV record (RFC 4180, CRLF-free: `\n` ends records).
pub fn csv_record<S: AsRef<str>>(out: &mut String, fields: &[S]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f.as_ref());
    }
    out.push('\n');
}
