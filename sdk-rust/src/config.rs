//! Client configuration: arguments first, then the environment, then defaults.
//!
//! | setting | argument | environment | default |
//! | --- | --- | --- | --- |
//! | API key | [`ClientBuilder::api_key`] | `TWH_API_KEY` | none: an error |
//! | base URL | [`ClientBuilder::base_url`] | `TWH_BASE_URL` | [`DEFAULT_BASE_URL`] |
//! | timeout per attempt | [`ClientBuilder::timeout`] | | [`DEFAULT_TIMEOUT`] (30 s) |
//! | retries | [`ClientBuilder::max_retries`] | | [`DEFAULT_MAX_RETRIES`] (3) |
//! | user-agent suffix | [`ClientBuilder::user_agent_suffix`] | | none |
//!
//! Everything is checked in [`ClientBuilder::build`], so a missing key or a malformed URL is an
//! error at construction, never at the first call. An empty environment variable counts as
//! unset. Every request then sends `Authorization: Bearer <key>`, `User-Agent: twh-rust/<version>`
//! (plus the suffix) and an `X-Request-Id`. Keys are never printed: `Debug` shows only their
//! `sk_test_`/`rk_test_` prefix.

use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

use crate::retry::{RETRY_COUNT_MAX, RetryPolicy};
use crate::{Client, Error, Result, generated};

/// The environment variable read for the API key.
pub const API_KEY_ENV: &str = "TWH_API_KEY";
/// The environment variable read for the base URL.
pub const BASE_URL_ENV: &str = "TWH_BASE_URL";
/// The base URL when none is given: a local emulator on its default port (`twh-emulator serve`).
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:4010";
/// Timeout of one attempt when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries when none is given.
pub const DEFAULT_MAX_RETRIES: u32 = 3;
/// Longest timeout accepted.
pub const TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Longest API key accepted, in bytes.
pub const API_KEY_LEN_MAX_BYTES: usize = 512;
/// Longest user-agent suffix accepted, in bytes.
pub const USER_AGENT_SUFFIX_LEN_MAX_BYTES: usize = 200;
/// The user agent: `twh-rust/<version>`.
pub const USER_AGENT: &str = concat!("twh-rust/", env!("CARGO_PKG_VERSION"));

/// An API key. Its `Debug` and `Display` forms show only its prefix (`sk_test_…redacted`);
/// [`ApiKey::expose`] gives the key.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKey(String);

impl TryFrom<String> for ApiKey {
    type Error = Error;

    fn try_from(key: String) -> Result<ApiKey> {
        ApiKey::new(key)
    }
}

impl From<ApiKey> for String {
    fn from(key: ApiKey) -> String {
        key.0
    }
}

impl ApiKey {
    /// Checks a key: 1..=512 visible ASCII characters.
    pub fn new(key: impl Into<String>) -> Result<ApiKey> {
        let key = key.into();
        if key.is_empty() {
            return Err(Error::Configuration(format!("the API key is empty (pass one or set {API_KEY_ENV})")));
        }
        if key.len() > API_KEY_LEN_MAX_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Configuration(format!(
                "the API key must be 1..={API_KEY_LEN_MAX_BYTES} visible ASCII characters"
            )));
        }
        Ok(ApiKey(key))
    }

    /// The key itself. Treat it as a password.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        let prefix = ["sk_test_", "rk_test_", "sk_live_", "rk_live_"].into_iter().find(|p| self.0.starts_with(p));
        format!("{}…redacted", prefix.unwrap_or(""))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.redacted())
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Builds a [`Client`]: the API key (else `TWH_API_KEY`; required), the base URL (else
/// `TWH_BASE_URL`, else [`DEFAULT_BASE_URL`]), the timeout of each attempt
/// ([`DEFAULT_TIMEOUT`]), the retries ([`DEFAULT_MAX_RETRIES`]) and a user-agent suffix, all checked
/// by [`ClientBuilder::build`].
#[derive(Clone, Default)]
pub struct ClientBuilder {
    api_key: Option<String>,
    base_url: Option<String>,
    timeout: Option<Duration>,
    max_retries: Option<u32>,
    user_agent_suffix: Option<String>,
    product: Option<String>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|k| ApiKey(k.clone()).redacted()))
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("user_agent_suffix", &self.user_agent_suffix)
            .field("product", &self.product)
            .finish()
    }
}

impl ClientBuilder {
    /// The API key (else `TWH_API_KEY`).
    pub fn api_key(mut self, key: impl Into<String>) -> ClientBuilder {
        self.api_key = Some(key.into());
        self
    }

    /// The base URL, like `https://api.example.com` or `http://127.0.0.1:4010` (else
    /// `TWH_BASE_URL`, else [`DEFAULT_BASE_URL`]). A path stem is kept; a trailing `/` is not.
    pub fn base_url(mut self, url: impl Into<String>) -> ClientBuilder {
        self.base_url = Some(url.into());
        self
    }

    /// Timeout of each attempt (default 30 s, at most 10 min).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Retries after the first attempt (default 3, at most 10); 0 turns retries off.
    pub fn max_retries(mut self, retries: u32) -> ClientBuilder {
        self.max_retries = Some(retries);
        self
    }

    /// Appended to the `User-Agent` after a space, to name your application
    /// (`twh-rust/0.1.0 my-shop/2.3`).
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> ClientBuilder {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// The product token that opens the `User-Agent` (default [`USER_AGENT`], `twh-rust/…`).
    /// For the Python and Node packages, which send `twh-python/…` and `twh-node/…`.
    #[doc(hidden)]
    pub fn product(mut self, product: impl Into<String>) -> ClientBuilder {
        self.product = Some(product.into());
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        let key = match self.api_key.clone().or_else(|| env(API_KEY_ENV)) {
            Some(k) => ApiKey::new(k)?,
            None => {
                return Err(Error::Configuration(format!(
                    "no API key: pass one to `ClientBuilder::api_key` or set {API_KEY_ENV}"
                )));
            }
        };
        self.build_with(Some(key))
    }

    /// Builds a client that sends no API key: enough for `POST /v1/sandboxes` on a local
    /// emulator, and for nothing else.
    pub(crate) fn build_with(self, key: Option<ApiKey>) -> Result<Client> {
        let (base_url, base) = parse_base_url(
            &self.base_url.clone().or_else(|| env(BASE_URL_ENV)).unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
        )?;
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > TIMEOUT_MAX {
            return Err(Error::Configuration(format!("the timeout must be more than 0 and at most {TIMEOUT_MAX:?}")));
        }
        let max_retries = self.max_retries.unwrap_or(DEFAULT_MAX_RETRIES);
        if max_retries > RETRY_COUNT_MAX {
            return Err(Error::Configuration(format!("max_retries must be at most {RETRY_COUNT_MAX}")));
        }
        match &self.user_agent_suffix {
            Some(s)
                if s.len() > USER_AGENT_SUFFIX_LEN_MAX_BYTES
                    || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) =>
            {
                return Err(Error::Configuration(format!(
                    "the user-agent suffix must be at most {USER_AGENT_SUFFIX_LEN_MAX_BYTES} printable ASCII characters"
                )));
            }
            _ => {}
        };
        let product = match &self.product {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic()) => p.as_str(),
            Some(_) => {
                return Err(Error::Configuration("the user-agent product must be one printable token".to_owned()));
            }
            None => USER_AGENT,
        };
        let user_agent = match &self.user_agent_suffix {
            Some(s) if !s.trim().is_empty() => format!("{product} {}", s.trim()),
            _ => product.to_owned(),
        };
        let mut headers = HeaderMap::new();
        if let Some(key) = &key {
            let mut auth = HeaderValue::try_from(format!("Bearer {}", key.expose()))
                .map_err(|_| Error::Configuration("the API key is not a valid header value".to_owned()))?;
            auth.set_sensitive(true);
            headers.insert(AUTHORIZATION, auth);
        }
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // The SDK's own policy retries (`retry.rs`), protocol refusals included; reqwest's
            // built-in one would copy every request to replay the rare HTTP/2 refusal.
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .build()
            .map_err(|e| Error::Configuration(format!("the HTTP client could not be built: {e}")))?;
        let raw = generated::Client::new_with_client(&base_url, http, RetryPolicy::new(max_retries));
        let resolved = ClientBuilder {
            api_key: key.as_ref().map(|k| k.expose().to_owned()),
            base_url: Some(base_url),
            timeout: Some(timeout),
            max_retries: Some(max_retries),
            user_agent_suffix: self.user_agent_suffix,
            product: self.product,
        };
        Ok(Client::from_parts(raw, resolved, base))
    }
}

/// Settings for the calls of one client made by [`Client::with_options`]: it shares the
/// original's connection pool, and only these settings differ (unset ones are kept).
///
/// ```no_run
/// # async fn demo(client: twh::Client) -> twh::Result<()> {
/// use std::time::Duration;
/// let quick = client.with_options(twh::RequestOptions::new().timeout(Duration::from_millis(300)).max_retries(0))?;
/// let sandbox = quick.get_sandbox().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct RequestOptions {
    timeout: Option<Duration>,
    max_retries: Option<u32>,
    headers: Vec<(String, String)>,
    hooks: crate::hooks::Hooks,
}

impl RequestOptions {
    /// No overrides.
    pub fn new() -> RequestOptions {
        RequestOptions::default()
    }

    /// Timeout of each attempt (more than 0, at most 10 min).
    pub fn timeout(mut self, timeout: Duration) -> RequestOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Retries after the first attempt (at most 10; 0 turns retries off).
    pub fn max_retries(mut self, retries: u32) -> RequestOptions {
        self.max_retries = Some(retries);
        self
    }

    /// A header to add to every request (replacing one of the same name the SDK would send).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> RequestOptions {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Called before each attempt ([`crate::hooks`]).
    pub fn on_request(mut self, f: impl Fn(&crate::Attempt) + Send + Sync + 'static) -> RequestOptions {
        self.hooks.on_request = Some(std::sync::Arc::new(f));
        self
    }

    /// Called after each attempt, with its status and elapsed time ([`crate::hooks`]).
    pub fn on_response(mut self, f: impl Fn(&crate::Attempt) + Send + Sync + 'static) -> RequestOptions {
        self.hooks.on_response = Some(std::sync::Arc::new(f));
        self
    }
}

impl Client {
    /// A client that shares this one's connection pool and key and differs only in the settings
    /// of `options` (this client keeps its own).
    pub fn with_options(&self, options: RequestOptions) -> Result<Client> {
        if options.timeout.is_some_and(|t| t.is_zero() || t > TIMEOUT_MAX) {
            return Err(Error::Configuration(format!("the timeout must be more than 0 and at most {TIMEOUT_MAX:?}")));
        }
        if options.max_retries.is_some_and(|n| n > RETRY_COUNT_MAX) {
            return Err(Error::Configuration(format!("max_retries must be at most {RETRY_COUNT_MAX}")));
        }
        let headers = if options.headers.is_empty() {
            None
        } else {
            let mut map = HeaderMap::new();
            for (name, value) in &options.headers {
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| Error::Configuration(format!("{name:?} is not a header name")))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| Error::Configuration(format!("the value of header {name} is not a header value")))?;
                map.insert(name, value);
            }
            Some(std::sync::Arc::new(map))
        };
        let hooks = (!options.hooks.is_empty()).then(|| std::sync::Arc::new(options.hooks));
        let policy = <generated::Client as progenitor_client::ClientInfo<RetryPolicy>>::inner(&self.raw).with(
            options.max_retries,
            options.timeout,
            headers,
            hooks,
        );
        let raw = generated::Client::new_with_client(
            self.base_url(),
            progenitor_client::ClientInfo::<RetryPolicy>::client(&self.raw).clone(),
            policy,
        );
        let mut settings = self.settings().clone();
        settings.timeout = options.timeout.or(settings.timeout);
        settings.max_retries = options.max_retries.or(settings.max_retries);
        Ok(Client::from_parts(raw, settings, self.base.clone()))
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Checks a base URL: `http` or `https`, a host, no credentials, query or fragment. Answers it
/// as text without a trailing `/`, and parsed (the dispatch sets each request's path on a copy).
fn parse_base_url(text: &str) -> Result<(String, reqwest::Url)> {
    let bad = |why: &str| Error::Configuration(format!("malformed base URL {text:?}: {why}"));
    let url = reqwest::Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials belong in the API key, not the URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment allowed"));
    }
    Ok((url.as_str().trim_end_matches('/').to_owned(), url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked_and_normalised() {
        assert_eq!(parse_base_url("http://127.0.0.1:4010/").expect("ok").0, "http://127.0.0.1:4010");
        assert_eq!(parse_base_url("https://example.com/twh/").expect("ok").0, "https://example.com/twh");
        for bad in [
            "",
            "127.0.0.1:4010",
            "ftp://example.com",
            "http://",
            "http://u:p@example.com",
            "http://x.com/?a=1",
            "not a url",
        ] {
            assert!(matches!(parse_base_url(bad), Err(Error::Configuration(_))), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_checked_and_redacted() {
        let key = ApiKey::new("sk_test_abcdef123").expect("ok");
        assert_eq!(format!("{key:?}"), "ApiKey(sk_test_…redacted)");
        assert!(!format!("{key}").contains("abcdef"));
        assert!(ApiKey::new("").is_err());
        assert!(ApiKey::new("sk test").is_err());
        assert!(ApiKey::new("x".repeat(API_KEY_LEN_MAX_BYTES + 1)).is_err());
    }

    #[test]
    fn limits_are_enforced_at_construction() {
        let b = || ClientBuilder::default().api_key("sk_test_1").base_url("http://127.0.0.1:1");
        assert!(b().build().is_ok());
        assert!(b().max_retries(RETRY_COUNT_MAX + 1).build().is_err());
        assert!(b().timeout(Duration::ZERO).build().is_err());
        assert!(b().user_agent_suffix("bad\nsuffix").build().is_err());
        assert!(b().product("twh python").build().is_err());
        assert!(b().product("twh-python/0.1.0").user_agent_suffix("shop/1").build().is_ok());
        let built = b().build().expect("ok");
        assert!(!format!("{built:?}").contains("sk_test_1"));
    }
}
