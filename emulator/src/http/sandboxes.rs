//! `GET /_emulator/sandboxes`: every sandbox of this emulator with its keys, for the dashboard
//! (`/_emulator/ui`) and for tools that drive an emulator another process started.
//!
//! Why a listing with keys: the dashboard reads a sandbox through the product API (`/v1`), which
//! needs one of its keys, and the only other place the control plane shows keys is the whole
//! state export (`GET /_emulator/state`, every ledger line of every sandbox). This route is an
//! admin route like the rest of `/_emulator` (the admin token, or the Origin/Host rule without
//! one), so it shows nothing that `GET /_emulator/state` does not.
//!
//! Order is creation order (then id), and the cursor names the last sandbox of the page by its
//! creation time and id, so deleting a sandbox between two pages skips or repeats nothing.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ApiResult};
use super::extract::{Admin, LIMIT_MAX, Query};
use crate::clock::Timestamp;
use crate::domain::model::Plan;
use crate::domain::registry::KeyKind;

/// Sandboxes per page when `limit` is not given.
pub const SANDBOX_PAGE_DEFAULT: usize = 20;

/// One sandbox, with the keys that work for it now.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SandboxSummary {
    /// `sbx_…`
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// When it was created.
    pub created_at: Timestamp,
    /// Its permanent secret key (`sk_test_…`); `null` only while none is permanent.
    pub secret_key: Option<String>,
    /// Its restricted (read-only) key (`rk_test_…`).
    pub restricted_key: Option<String>,
}

/// `GET /_emulator/sandboxes`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct SandboxSummaryList {
    /// In creation order.
    pub data: Vec<SandboxSummary>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

fn cursor_of(s: &SandboxSummary) -> String {
    format!("{}.{}", s.created_at.micros(), s.id)
}

fn parse_cursor(text: &str) -> Option<(i64, String)> {
    let (micros, id) = text.split_once('.')?;
    let id =
        id.strip_prefix("sbx_").filter(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))?;
    Some((micros.parse().ok()?, format!("sbx_{id}")))
}

/// `GET /_emulator/sandboxes?limit=&cursor=`
pub async fn list_sandboxes(
    State(s): State<Arc<AppState>>,
    _: Admin,
    mut q: Query,
) -> ApiResult<axum::Json<SandboxSummaryList>> {
    let limit = q
        .parsed("limit", &format!("an integer in 1..={LIMIT_MAX}"), |v| {
            v.parse::<usize>().ok().filter(|n| (1..=LIMIT_MAX).contains(n))
        })
        .unwrap_or(SANDBOX_PAGE_DEFAULT);
    let after = match q.cursor() {
        Some(c) => Some(parse_cursor(&c).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "The cursor is not one this list issued.")
        })?),
        None => None,
    };
    q.finish()?;
    // Live keys by tenant: a rolled key in its grace period is not the one to show.
    let mut keys: HashMap<&str, (Option<String>, Option<String>)> = HashMap::new();
    let all_keys = s.world.keys();
    for grant in all_keys.values().filter(|g| g.expires_at.is_none()) {
        let entry = keys.entry(grant.tenant_id.as_str()).or_default();
        match grant.kind {
            KeyKind::Secret => entry.0 = Some(grant.secret.clone()),
            KeyKind::Restricted => entry.1 = Some(grant.secret.clone()),
        }
    }
    let mut all: Vec<SandboxSummary> = s
        .world
        .tenants()
        .iter()
        .filter_map(|t| {
            let st = t.state.lock();
            if st.retired {
                return None;
            }
            let (secret_key, restricted_key) = keys.get(t.id.as_str()).cloned().unwrap_or_default();
            Some(SandboxSummary {
                id: st.sandbox.id.clone(),
                name: st.sandbox.name.clone(),
                plan: st.sandbox.plan,
                created_at: st.sandbox.created_at,
                secret_key,
                restricted_key,
            })
        })
        .collect();
    all.sort_unstable_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let start = match &after {
        Some((micros, id)) => all.partition_point(|x| (x.created_at.micros(), &x.id) <= (*micros, id)),
        None => 0,
    };
    let data: Vec<SandboxSummary> = all.into_iter().skip(start).take(limit + 1).collect();
    let mut data = data;
    let next_cursor = if data.len() > limit {
        data.truncate(limit);
        data.last().map(cursor_of)
    } else {
        None
    };
    Ok(axum::Json(SandboxSummaryList { data, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let s = SandboxSummary {
            id: "sbx_abc123".into(),
            name: "n".into(),
            plan: Plan::default(),
            created_at: Timestamp(1_700_000_000_000_000),
            secret_key: None,
            restricted_key: None,
        };
        assert_eq!(parse_cursor(&cursor_of(&s)), Some((1_700_000_000_000_000, "sbx_abc123".to_owned())));
        for bad in ["", "12", "x.sbx_a", "12.itm_a", "12.sbx_", "12.sbx_a/b"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
