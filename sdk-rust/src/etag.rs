//! ETags: optimistic concurrency without locks.
//!
//! Every single-resource read and every write that returns a resource comes back as a
//! [`Versioned<T>`]: the value and the strong ETag the server sent with it (`"<version>"`).
//! Updates and archives take that ETag as a required argument and send it as `If-Match`; if
//! someone changed the resource in between, the server answers 412 and nothing is written
//! ([`Error::PreconditionFailed`]).
//!
//! [`Client::update_item_with`](crate::Client::update_item_with) and
//! [`Client::update_location_with`](crate::Client::update_location_with) wrap the whole
//! read-modify-write cycle: read, apply your function to what was read, write with `If-Match`,
//! and on 412 read again and re-apply, at most [`READ_MODIFY_WRITE_ATTEMPTS_MAX`] times. Your
//! function may therefore run more than once, each time on fresher data; it should compute the
//! change from its argument alone.
//!
//! Updates and archives are retried like everything else ([`crate::retry`]), but the API takes
//! idempotency keys on POSTs only: if an attempt committed and its answer was lost, the retry
//! meets its own write and answers 412. A plain update then reports
//! [`Error::PreconditionFailed`] although it was applied, and
//! a read-modify-write loop applies your function once more to the fresh value, which is right
//! for "set" changes (a name, a threshold) and wrong for relative ones (add 5), which are safe
//! only with retries off (`max_retries(0)`).
//!
//! A stock movement can be made conditional on the ETag of the stock level it changes
//! ([`Client::create_movement_if_match`](crate::Client::create_movement_if_match)): the
//! point-of-sale "sell only if the count is still what I saw".

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use progenitor_client::ResponseValue;

use crate::response::Response;
use crate::{Error, Result};

/// Most rounds of a read-modify-write loop before its last 412 is returned.
pub const READ_MODIFY_WRITE_ATTEMPTS_MAX: u32 = 10;

/// A strong entity tag, as sent in `ETag` and `If-Match`: `"<version>"` (quotes included), or
/// `*` ([`ETag::any`]) to match any existing resource.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps a header value. Returns `None` for a value that cannot be sent as a header.
    pub fn new(value: impl Into<String>) -> Option<ETag> {
        let value = value.into();
        let valid = !value.is_empty() && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
        valid.then_some(ETag(value))
    }

    /// An `ETag` header's value, if a valid one.
    pub(crate) fn from_header(value: &reqwest::header::HeaderValue) -> Option<ETag> {
        value.to_str().ok().and_then(ETag::new)
    }

    /// The ETag of a version: `"<version>"`.
    pub fn from_version(version: u64) -> ETag {
        ETag(format!("\"{version}\""))
    }

    /// `*`: matches whatever version exists (an unconditional write that still fails on a
    /// resource that does not exist).
    pub fn any() -> ETag {
        ETag("*".to_owned())
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The version inside a TWH ETag, if it is one (`"7"` → 7).
    pub fn version(&self) -> Option<u64> {
        self.0.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({})", self.0)
    }
}

impl AsRef<str> for ETag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A value as of one version, with the ETag to send back to change it.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its ETag.
    pub etag: ETag,
}

impl<T> Versioned<T> {
    /// The ETag, for `If-Match`.
    pub fn etag(&self) -> &ETag {
        &self.etag
    }

    /// The value, dropping the ETag.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Splits into value and ETag.
    pub fn into_parts(self) -> (T, ETag) {
        (self.value, self.etag)
    }
}

impl<T> Deref for Versioned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> DerefMut for Versioned<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

/// ETag helpers on the generated client's responses.
pub trait ResponseValueExt<T> {
    /// The response's `ETag`, if it has a valid one.
    fn etag(&self) -> Option<ETag>;

    /// The value with its ETag; an error if the server sent none.
    fn into_versioned(self) -> Result<Versioned<T>>;
}

impl<T> ResponseValueExt<T> for ResponseValue<T> {
    fn etag(&self) -> Option<ETag> {
        self.headers().get(reqwest::header::ETAG).and_then(ETag::from_header)
    }

    fn into_versioned(self) -> Result<Versioned<T>> {
        let etag = self.etag().ok_or_else(|| Error::UnexpectedResponse {
            status: Some(self.status().as_u16()),
            message: "the response has no ETag".to_owned(),
            attempts: 0,
        })?;
        Ok(Versioned { value: self.into_inner(), etag })
    }
}

/// The wait after losing round `round` (1-based) of a read-modify-write to another writer: full
/// jitter under 2^round ms, at most 64 ms. Writers that retry at once can lose to each other in
/// lockstep until the bound; a random pause breaks the tie.
pub(crate) fn conflict_pause(round: u32) -> Duration {
    let ceiling_ms = 1u64 << round.min(6);
    Duration::from_micros(rand::random_range(0..=ceiling_ms * 1000))
}

/// Read, apply `change`, write with `If-Match`; on 412 start over (after [`conflict_pause`]), at most
/// [`READ_MODIFY_WRITE_ATTEMPTS_MAX`] rounds.
pub(crate) async fn read_modify_write<T, P, R, RF, W, WF>(
    mut read: R,
    mut change: impl FnMut(&T) -> P,
    mut write: W,
) -> Result<Response<Versioned<T>>>
where
    R: FnMut() -> RF,
    RF: Future<Output = Result<Versioned<T>>>,
    W: FnMut(ETag, P) -> WF,
    WF: Future<Output = Result<Response<Versioned<T>>>>,
{
    let mut round = 0;
    loop {
        round += 1;
        let current = read().await?;
        let patch = change(&current.value);
        match write(current.etag, patch).await {
            Err(Error::PreconditionFailed(_)) if round < READ_MODIFY_WRITE_ATTEMPTS_MAX => {
                tokio::time::sleep(conflict_pause(round)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_carry_versions() {
        assert_eq!(ETag::from_version(7).as_str(), "\"7\"");
        assert_eq!(ETag::from_version(7).version(), Some(7));
        assert_eq!(ETag::any().version(), None);
        assert_eq!(ETag::new("W/\"3\"").and_then(|e| e.version()), None);
        assert!(ETag::new("").is_none());
        assert!(ETag::new("\"1\"\n").is_none());
    }
}
