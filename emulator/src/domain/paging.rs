//! Paging: a list request's window (where to start, how many), the page it gets back, and the
//! opaque cursor that carries a position between requests. Filtered pages are filled from the
//! indexes ([`super::index::page`]), never by a bounded scan that could return a short page
//! before the end.
//!
//! Why a module of its own: every list (catalogue, movements, levels, events, webhooks,
//! invoices, reconciliations) pages the same way, and the HTTP layer reads and writes the
//! cursors; kept here, below all of them, none of those modules has to import another one (the
//! ledger, which used to hold this) just to page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A list request's window: where to start (a position from a cursor) and how many to return.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Position to start at (0-based).
    pub start: usize,
    /// Most entries to return.
    pub limit: usize,
}

/// One page of results and the position to continue from, if there may be more.
#[derive(Debug)]
pub struct Page<T> {
    /// The entries.
    pub data: Vec<T>,
    /// Position to continue from, `None` at the end.
    pub next: Option<usize>,
}

/// An opaque cursor: the list kind, the tenant incarnation and the position to continue at.
/// Positions in creation order never shift (nothing is erased), so paging neither skips nor
/// repeats while others insert; a reset sandbox draws a new tag, which voids old cursors.
pub fn encode_cursor(kind: &str, tag: &str, position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}.{tag}.{position}"))
}

/// The position a cursor of list `kind` in incarnation `tag` continues at; `None` for a cursor
/// this list did not issue.
pub fn decode_cursor(kind: &str, tag: &str, cursor: &str) -> Option<usize> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let mut parts = raw.splitn(3, '.');
    (parts.next()? == kind && parts.next()? == tag).then_some(())?;
    parts.next()?.parse().ok()
}
