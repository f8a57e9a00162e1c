//! Importing movements from CSV: a job made from the text alone. (Creating and reading jobs
//! are generated.)

use crate::Client;
use crate::idempotency::Post;
use crate::types::{self, Job};

impl Client {
    /// Starts an import of movements from CSV text (header
    /// `type,item_id,location_id,from_location_id,to_location_id,quantity,reference,reason`;
    /// unused columns may be absent). Rows with a `reference` are idempotent. Poll it with
    /// [`Client::get_job`].
    pub fn import_movements_csv(&self, csv: &str) -> Post<'_, Job> {
        self.create_job(
            types::CreateJob::builder().data(csv).format(types::JobFormat::Csv).type_(types::JobType::ImportMovements),
        )
    }
}
