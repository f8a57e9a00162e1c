//! Metering, quotas and billing: plans, the subscription, usage (and its export), invoices.

use futures::Stream;

use crate::idempotency::Post;
use crate::items::convert;
use crate::pagination::{Page, limit, paginate};
use crate::types::{self, Invoice, PlanInfo, Subscription, UsageExport, UsageReport};
use crate::{Client, Result};

/// Paging of [`Client::list_invoices`] (newest period last).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvoiceQuery {
    /// Page size (1..=100, default 20).
    pub limit: Option<u32>,
    /// Where to start: a `next_cursor`.
    pub cursor: Option<String>,
}

impl Client {
    /// The plans a sandbox can be on (`free` first), with their quotas and prices.
    pub async fn list_plans(&self) -> Result<Vec<PlanInfo>> {
        Ok(self.send(self.raw.list_plans().send()).await?.into_inner().data)
    }

    /// The sandbox's plan and current billing period.
    pub async fn get_subscription(&self) -> Result<Subscription> {
        Ok(self.send(self.raw.get_subscription().send()).await?.into_inner())
    }

    /// Moves the sandbox to `plan`; its quotas apply at once.
    pub fn update_subscription(&self, plan: types::Plan) -> Post<'_, Subscription> {
        Post::new(move |key, _| async move {
            let body = types::UpdateSubscription { plan };
            Ok(self.send(self.raw.update_subscription().idempotency_key(key).body(body).send()).await?.into_inner())
        })
    }

    /// Usage per meter in a period: `None` or `"current"` for the current one, else `"YYYY-MM"`.
    pub async fn get_usage(&self, period: Option<&str>) -> Result<UsageReport> {
        let mut call = self.raw.get_usage();
        if let Some(p) = period {
            call = call.period(convert::<types::GetUsagePeriod, _>(p)?);
        }
        Ok(self.send(call.send()).await?.into_inner())
    }

    /// Every metered unit group of a period (see [`Client::get_usage`] for `period`), as JSON.
    pub async fn export_usage(&self, period: Option<&str>) -> Result<UsageExport> {
        let mut call = self.raw.export_usage().format(types::ExportUsageFormat::Json);
        if let Some(p) = period {
            call = call.period(convert::<types::ExportUsagePeriod, _>(p)?);
        }
        Ok(self.send(call.send()).await?.into_inner())
    }

    /// The same export as [`Client::export_usage`], as CSV text (`time,meter,quantity,request_id`).
    pub async fn export_usage_csv(&self, period: Option<&str>) -> Result<String> {
        if let Some(p) = period {
            convert::<types::ExportUsagePeriod, _>(p)?;
        }
        let mut query = vec![("format", "csv")];
        if let Some(p) = period {
            query.push(("period", p));
        }
        self.get_text("/v1/usage/export", &query, "text/csv", "export_usage").await
    }

    /// One page of invoices.
    pub async fn list_invoices(&self, query: &InvoiceQuery) -> Result<Page<Invoice>> {
        let mut call = self.raw.list_invoices();
        if let Some(v) = limit(query.limit)? {
            call = call.limit(v);
        }
        if let Some(v) = &query.cursor {
            call = call.cursor(v.clone());
        }
        let list = self.send(call.send()).await?.into_inner();
        Ok(Page { data: list.data, next_cursor: list.next_cursor })
    }

    /// Every invoice, page after page.
    pub fn list_invoices_stream(&self, query: InvoiceQuery) -> impl Stream<Item = Result<Invoice>> + Send + '_ {
        paginate(query.cursor.clone(), move |cursor| {
            let page = InvoiceQuery { cursor, ..query.clone() };
            async move { self.list_invoices(&page).await }
        })
    }

    /// Reads an invoice.
    pub async fn get_invoice(&self, id: &str) -> Result<Invoice> {
        Ok(self.send(self.raw.get_invoice().id(id).send()).await?.into_inner())
    }

    /// Reads an invoice as CSV text (one row per line of the invoice).
    pub async fn get_invoice_csv(&self, id: &str) -> Result<String> {
        self.get_text(&format!("/v1/invoices/{}", path_segment(id)?), &[], "text/csv", "get_invoice").await
    }
}

/// An id as one path segment: refused if it could change the path.
pub(crate) fn path_segment(id: &str) -> Result<&str> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(crate::Error::InvalidRequest(format!("{id:?} is not an id")));
    }
    Ok(id)
}
