//! Metering and billing methods shaped by hand: the plan change takes a plan, and usage takes a
//! period as text (`current` or `YYYY-MM`), checked against the document's pattern before it is
//! sent. (Plans, the subscription, invoices and their CSV are generated.)

use crate::client::convert;
use crate::idempotency::Post;
use crate::types::{self, Subscription, UsageExport, UsageReport};
use crate::{Client, Result};

impl Client {
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
}
