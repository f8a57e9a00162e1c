//! Reconciliation: recompute levels from the ledger and compare them with the snapshot.

use std::fmt::Display;

use futures::Stream;

use crate::billing::path_segment;
use crate::idempotency::Post;
use crate::items::convert;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, Reconciliation};
use crate::{Client, Result};

/// Paging of [`Client::list_reconciliations`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconciliationQuery {
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// Runs a reconciliation of every level (or of one location's:
    /// `types::CreateReconciliation { location_id: Some(id) }`), and returns it with its
    /// discrepancies.
    pub fn create_reconciliation<B>(&self, reconciliation: B) -> Post<'_, Reconciliation>
    where
        B: TryInto<types::CreateReconciliation>,
        B::Error: Display,
    {
        let body = convert(reconciliation);
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.create_reconciliation().idempotency_key(key).body(body?).send()).await?.into_inner())
        })
    }

    /// Reads a reconciliation.
    pub async fn get_reconciliation(&self, id: &str) -> Result<Reconciliation> {
        Ok(self.send(self.raw.get_reconciliation().id(id).send()).await?.into_inner())
    }

    /// Reads a reconciliation's discrepancies as CSV text.
    pub async fn get_reconciliation_csv(&self, id: &str) -> Result<String> {
        self.get_text(&format!("/v1/reconciliations/{}", path_segment(id)?), &[], "text/csv", "get_reconciliation")
            .await
    }

    /// One page of reconciliations.
    pub async fn list_reconciliations(&self, query: &ReconciliationQuery) -> Result<Page<Reconciliation>> {
        let mut call = self.raw.list_reconciliations();
        if let Some(v) = limit(query.limit)? {
            call = call.limit(v);
        }
        if let Some(v) = &query.cursor {
            call = call.cursor(v.clone());
        }
        let list = self.send(call.send()).await?.into_inner();
        Ok(Page { data: list.data, next_cursor: list.next_cursor })
    }

    /// Every reconciliation, page after page.
    pub fn list_reconciliations_stream(
        &self,
        query: ReconciliationQuery,
    ) -> impl Stream<Item = Result<Reconciliation>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = ReconciliationQuery { cursor, ..query.clone() };
            async move { self.list_reconciliations(&page).await }
        })
    }
}
