//! Sandboxes (tenants) and API keys: the answers that carry keys, as types whose `Debug` never
//! prints one, and a client builder's way to a new sandbox. (The sandbox methods are generated.)

use std::fmt::Display;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ApiKey, ClientBuilder};
use crate::types::{self, Plan};
use crate::{Client, Result};

/// A new sandbox with its keys: the only time the keys are shown. (The document's
/// `SandboxCreated`, with the keys as [`ApiKey`]s so that `Debug` does not print them.)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxCreated {
    /// `sbx_…`
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: Plan,
    /// `sk_test_…`: may do everything in this sandbox.
    pub secret_key: ApiKey,
    /// `rk_test_…`: may only read.
    pub restricted_key: ApiKey,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// `POST /v1/api-keys/roll`: the new secret key. (The document's `ApiKeyRolled`, with the key
/// as an [`ApiKey`].)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRolled {
    /// The new secret key.
    pub secret_key: ApiKey,
    /// When the previous secret key stops working (emulator clock).
    pub previous_key_expires_at: DateTime<Utc>,
}

impl ClientBuilder {
    /// Creates a sandbox and returns a client for it (with its secret key) and its details,
    /// keys included. No API key is needed on a local emulator; where an admin token is
    /// required, give it as this builder's API key.
    ///
    /// ```no_run
    /// # async fn demo() -> twh::Result<()> {
    /// let (client, sandbox) = twh::Client::builder()
    ///     .base_url("http://127.0.0.1:4010")
    ///     .create_sandbox(twh::types::CreateSandbox::builder().seed(twh::types::Seed::Demo))
    ///     .await?;
    /// println!("{} uses {}", sandbox.id, client.base_url());
    /// # Ok(()) }
    /// ```
    pub async fn create_sandbox<B>(self, sandbox: B) -> Result<(Client, SandboxCreated)>
    where
        B: TryInto<types::CreateSandbox>,
        B::Error: Display,
    {
        let admin = self.clone().build().ok();
        let bootstrap = match admin {
            Some(client) => client,
            None => self.clone().build_with(None)?,
        };
        let created = bootstrap.create_sandbox(sandbox).await?;
        let client = self.api_key(created.secret_key.expose()).build()?;
        Ok((client, created))
    }
}
