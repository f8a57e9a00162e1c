//! Pagination: one page at a time, or everything as a `Stream`.
//!
//! Every list of the API answers `{data, next_cursor}` in creation order, and its cursor is
//! opaque: the SDK passes it back unread. Each list has two calls (docs/guide/pagination.md):
//! `list_…(&query)` returns one [`Page`], and `list_…_stream(query)` returns a
//! [`Stream`] of every matching value, fetching the next page only when the
//! previous one is used up (so at most one page is held in memory) and ending after the page whose
//! `next_cursor` is null. The server guarantees that paging under concurrent writes skips and
//! repeats nothing. The query's `limit` sets the page size (1..=100, default 20), and its
//! `cursor`, if set, where the stream starts.
//!
//! A failed page ends the stream with that error (after the client's retries). A server that
//! handed back the cursor it was given would loop forever; the stream ends with
//! [`Error::UnexpectedResponse`] instead.

use std::future::Future;

use futures::{Stream, TryStreamExt, stream};

use crate::{Error, Result};

/// Largest page the API serves.
pub const PAGE_SIZE_MAX: u32 = 100;

/// One page of a list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The values, in creation order.
    pub data: Vec<T>,
    /// The cursor of the next page; `None` on the last one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Whether another page follows.
    pub fn has_more(&self) -> bool {
        self.next_cursor.is_some()
    }
}

impl<T> IntoIterator for Page<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    fn into_iter(self) -> Self::IntoIter {
        self.data.into_iter()
    }
}

/// The page size as the generated client takes it.
pub(crate) fn limit(limit: Option<u32>) -> Result<Option<std::num::NonZeroU64>> {
    match limit {
        None => Ok(None),
        Some(n) if (1..=PAGE_SIZE_MAX).contains(&n) => Ok(std::num::NonZeroU64::new(u64::from(n))),
        Some(n) => Err(Error::InvalidRequest(format!("limit {n} is outside 1..={PAGE_SIZE_MAX}"))),
    }
}

enum State {
    Next(Option<String>),
    Done,
}

/// Streams every value of a list, calling `fetch(cursor)` for each page.
pub(crate) fn paginate<'a, T, F, Fut>(first: Option<String>, mut fetch: F) -> impl Stream<Item = Result<T>> + Send + 'a
where
    T: Send + 'a,
    F: FnMut(Option<String>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<Page<T>>> + Send + 'a,
{
    stream::try_unfold(State::Next(first), move |state| {
        let cursor = match state {
            State::Next(cursor) => Some(cursor),
            State::Done => None,
        };
        let page = cursor.map(|c| (c.clone(), fetch(c)));
        async move {
            let Some((asked, page)) = page else { return Ok(None) };
            let page = page.await?;
            let next = match page.next_cursor {
                None => State::Done,
                Some(c) if Some(&c) == asked.as_ref() => {
                    return Err(Error::UnexpectedResponse {
                        status: None,
                        message: format!("the server returned the cursor it was given ({c:?}): paging stopped"),
                        attempts: 0,
                    });
                }
                Some(c) => State::Next(Some(c)),
            };
            Ok(Some((stream::iter(page.data.into_iter().map(Ok)), next)))
        }
    })
    .try_flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    #[tokio::test]
    async fn streams_every_page_once_and_stops_on_a_repeated_cursor() {
        let pages = |c: Option<String>| async move {
            Ok(match c.as_deref() {
                None => Page { data: vec![1, 2], next_cursor: Some("a".into()) },
                Some("a") => Page { data: vec![], next_cursor: Some("b".into()) },
                Some("b") => Page { data: vec![3], next_cursor: None },
                _ => unreachable!(),
            })
        };
        let all: Vec<i32> = paginate(None, pages).try_collect().await.expect("ok");
        assert_eq!(all, [1, 2, 3]);

        let stuck = |_c: Option<String>| async { Ok(Page { data: vec![1], next_cursor: Some("same".into()) }) };
        let got: Vec<Result<i32>> = futures::StreamExt::collect(paginate(Some("same".into()), stuck)).await;
        assert!(matches!(got.last(), Some(Err(Error::UnexpectedResponse { .. }))));
    }

    #[test]
    fn limits_are_checked() {
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
        assert_eq!(limit(Some(100)).expect("ok").map(|n| n.get()), Some(100));
    }
}
