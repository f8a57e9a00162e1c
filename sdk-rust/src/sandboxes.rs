//! Sandboxes (tenants) and API keys.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{ApiKey, ClientBuilder};
use crate::idempotency::Post;
use crate::items::convert;
use crate::types::{self, Plan, Sandbox};
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

impl Client {
    /// Creates another sandbox (this client's key is sent as the admin token, where one is
    /// required). Use [`Client::with_api_key`] with its
    /// `secret_key.expose()` to act in it.
    pub fn create_sandbox<B>(&self, sandbox: B) -> Post<'_, SandboxCreated>
    where
        B: TryInto<types::CreateSandbox>,
        B::Error: Display,
    {
        let body = convert(sandbox);
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.create_sandbox().idempotency_key(key).body(body?).send()).await?.into_inner())
        })
    }

    /// This client's sandbox.
    pub async fn get_sandbox(&self) -> Result<Sandbox> {
        Ok(self.send(self.raw.get_sandbox().send()).await?.into_inner())
    }

    /// Empties this client's sandbox, keeping its keys.
    pub fn reset_sandbox(&self) -> Post<'_, Sandbox> {
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.reset_sandbox().idempotency_key(key).send()).await?.into_inner())
        })
    }

    /// Deletes this client's sandbox and everything in it; its keys stop working.
    pub async fn delete_sandbox(&self) -> Result<()> {
        self.send(self.raw.delete_sandbox().send()).await?;
        Ok(())
    }

    /// Issues a new secret key. The old one (this client's) keeps working for a grace period
    /// (24 h of emulator time by default); switch with [`Client::with_api_key`].
    pub fn roll_api_key(&self) -> Post<'_, ApiKeyRolled> {
        Post::new(move |key, _| async move {
            Ok(self.send(self.raw.roll_api_key().idempotency_key(key).send()).await?.into_inner())
        })
    }
}
