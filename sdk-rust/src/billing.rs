//! Metering and billing methods shaped by hand: the plan change takes a plan, and usage takes a
//! period as text (`current` or `YYYY-MM`), checked against the document's pattern before it is
//! sent. (Plans, the subscription, invoices and their CSV are generated.)

use crate::Client;
use crate::call::Call;
use crate::client::convert;
use crate::idempotency::Post;
use crate::response::IntoResponse;
use crate::types::{self, Subscription, UsageExport, UsageReport};

impl Client {
    /// Moves the sandbox to `plan`; its quotas apply at once.
    pub fn update_subscription(&self, plan: types::Plan) -> Post<'_, Subscription> {
        Post::new(move |key, _| async move {
            let body = types::UpdateSubscription { plan };
            Ok(self.send(self.raw.update_subscription().idempotency_key(key).body(body).send()).await?.into_response())
        })
    }

    /// Usage per meter in a period: `None` or `"current"` for the current one, else `"YYYY-MM"`.
    pub fn get_usage<'a>(&'a self, period: Option<&'a str>) -> Call<'a, UsageReport> {
        Call::new(async move {
            let mut call = self.raw.get_usage();
            if let Some(p) = period {
                call = call.period(convert::<types::GetUsagePeriod, _>(p)?);
            }
            Ok(self.send(call.send()).await?.into_response())
        })
    }

    /// Every metered unit group of a period (see [`Client::get_usage`] for `period`), as JSON.
    pub fn export_usage<'a>(&'a self, period: Option<&'a str>) -> Call<'a, UsageExport> {
        Call::new(async move {
            let mut call = self.raw.export_usage().format(types::ExportUsageFormat::Json);
            if let Some(p) = period {
                call = call.period(convert::<types::ExportUsagePeriod, _>(p)?);
            }
            Ok(self.send(call.send()).await?.into_response())
        })
    }

    /// The same export as [`Client::export_usage`], as CSV text (`time,meter,quantity,request_id`).
    pub fn export_usage_csv<'a>(&'a self, period: Option<&'a str>) -> Call<'a, String> {
        Call::new(async move {
            if let Some(p) = period {
                convert::<types::ExportUsagePeriod, _>(p)?;
            }
            let mut query = vec![("format", "csv")];
            if let Some(p) = period {
                query.push(("period", p));
            }
            self.get_text("/v1/usage/export", &query, "text/csv", "export_usage").await
        })
    }
}
