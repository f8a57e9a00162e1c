//! Background jobs: importing movements from CSV.

use std::fmt::Display;

use crate::idempotency::Post;
use crate::items::convert;
use crate::types::{self, Job};
use crate::{Client, Result};

impl Client {
    /// Starts a job (202): `types::CreateJob` with `type_: JobType::ImportMovements`,
    /// `format: JobFormat::Csv` and the CSV `data`. Poll it with [`Client::get_job`].
    pub fn create_job<B>(&self, job: B) -> Post<'_, Job>
    where
        B: TryInto<types::CreateJob>,
        B::Error: Display,
    {
        self.post_job(convert(job))
    }

    /// Starts an import of movements from CSV text (header
    /// `type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason`;
    /// unused columns may be absent). Rows with a `reference` are idempotent.
    pub fn import_movements_csv(&self, csv: &str) -> Post<'_, Job> {
        self.post_job(convert::<types::CreateJobData, _>(csv).map(|data| types::CreateJob {
            data,
            format: types::JobFormat::Csv,
            type_: types::JobType::ImportMovements,
        }))
    }

    fn post_job(&self, body: Result<types::CreateJob>) -> Post<'_, Job> {
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.create_job().idempotency_key(key).body(body?).send()).await?.into_inner())
        })
    }

    /// Reads a job: its status, progress and the errors of rejected rows.
    pub async fn get_job(&self, id: &str) -> Result<Job> {
        Ok(self.send(self.raw.get_job().id(id).send()).await?.into_inner())
    }
}
