//! Secondary indexes for the lists: posting lists of positions in creation order, and the page
//! that walks their intersection.
//!
//! Why posting lists of positions: every list pages in creation order and its cursor is a
//! position (see [`super::paging`]), so an index that keeps, for one filter value, the sorted
//! positions of the entries that match answers a page by a binary search to the cursor and
//! `limit` steps. Positions never shift (nothing is erased), so cursors stay stable while others
//! insert, and appending a new entry is one push on each list it belongs to (the write path's
//! whole cost). Several filters intersect by leapfrogging: start from the most selective list,
//! seek every other list to the candidate, and move the candidate to the largest answer until
//! all agree; the cost is a few binary searches per match, never a walk over non-matching
//! entries. Values that change (a status, a level's `below_threshold`) move a position between
//! lists with a sorted insert and remove.
//!
//! Every page still checks each candidate against the full filter (`accept`) before it keeps
//! it: the index narrows, the predicate decides, so an index can only make a page slower, never
//! wrong (n-grams, for instance, find candidates a substring test then confirms).
//!
//! Memory: 4 bytes per entry per list it is in (a movement: its item, its location(s), its type;
//! about 16 bytes per movement), counted by [`Postings::bytes`]. The indexes are not stored:
//! they are rebuilt from the records when a tenant is loaded (`Ledger::rebuild`).

use std::collections::BTreeSet;

use super::paging::Page;

/// Positions in increasing order: the entries that have one filter value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Postings(Vec<u32>);

impl Postings {
    /// Appends a position greater than every one held (a new entry); a repeat is ignored.
    #[inline]
    pub fn push(&mut self, position: u32) {
        if self.0.last().is_none_or(|last| *last < position) {
            self.0.push(position);
        } else {
            self.insert(position);
        }
    }

    /// Adds a position anywhere (a value that changed).
    pub fn insert(&mut self, position: u32) {
        if let Err(i) = self.0.binary_search(&position) {
            self.0.insert(i, position);
        }
    }

    /// Removes a position, if held.
    pub fn remove(&mut self, position: u32) {
        if let Ok(i) = self.0.binary_search(&position) {
            self.0.remove(i);
        }
    }

    /// Whether it holds a position.
    pub fn contains(&self, position: u32) -> bool {
        self.0.binary_search(&position).is_ok()
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The positions, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    /// Heap bytes held.
    pub fn bytes(&self) -> usize {
        self.0.capacity() * std::mem::size_of::<u32>()
    }
}

/// Positions a page can seek in: the first one at or after a position.
pub trait Seek {
    /// The first position `>= from`.
    fn seek(&self, from: u32) -> Option<u32>;
    /// How many positions (to start from the most selective).
    fn count(&self) -> usize;
}

impl Seek for Postings {
    #[inline]
    fn seek(&self, from: u32) -> Option<u32> {
        self.0.get(self.0.partition_point(|p| *p < from)).copied()
    }
    fn count(&self) -> usize {
        self.0.len()
    }
}

impl Seek for BTreeSet<u32> {
    #[inline]
    fn seek(&self, from: u32) -> Option<u32> {
        self.range(from..).next().copied()
    }
    fn count(&self) -> usize {
        self.len()
    }
}

/// Every position below `len`: the list without a filter.
pub struct All(pub u32);

impl Seek for All {
    fn seek(&self, from: u32) -> Option<u32> {
        (from < self.0).then_some(from)
    }
    fn count(&self) -> usize {
        self.0 as usize
    }
}

/// Exactly one position (an exact key lookup).
pub struct One(pub u32);

impl Seek for One {
    fn seek(&self, from: u32) -> Option<u32> {
        (from <= self.0).then_some(self.0)
    }
    fn count(&self) -> usize {
        1
    }
}

/// The first position `>= from` held by every list (leapfrog), or `None`.
fn next_common(lists: &[&dyn Seek], mut from: u32) -> Option<u32> {
    'outer: loop {
        for list in lists {
            let p = list.seek(from)?;
            if p > from {
                from = p;
                continue 'outer;
            }
        }
        return Some(from);
    }
}

/// A page of the positions in `[start, end)` held by every list of `lists` (an empty slice
/// means every position) and passing `accept`, rendered by `render`. Holds `limit` entries
/// whenever that many exist; `next` is the position of the first match after them, so a
/// cursor is issued only when there is more to read.
pub fn page<U>(
    lists: &mut [&dyn Seek],
    start: usize,
    end: usize,
    limit: usize,
    mut accept: impl FnMut(usize) -> bool,
    mut render: impl FnMut(usize) -> Option<U>,
) -> Page<U> {
    let end = u32::try_from(end).unwrap_or(u32::MAX);
    let all = All(end);
    let mut lists: Vec<&dyn Seek> = lists.to_vec();
    if lists.is_empty() {
        lists.push(&all);
    }
    lists.sort_by_key(|l| l.count()); // the most selective leads
    let mut data = Vec::with_capacity(limit.min(100));
    let mut at = u32::try_from(start).unwrap_or(u32::MAX);
    while at < end {
        let Some(p) = next_common(&lists, at) else { break };
        if p >= end {
            break;
        }
        if accept(p as usize) {
            if data.len() == limit {
                return Page { data, next: Some(p as usize) };
            }
            data.extend(render(p as usize));
        }
        at = p + 1;
    }
    Page { data, next: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postings(v: &[u32]) -> Postings {
        let mut p = Postings::default();
        for x in v {
            p.push(*x);
        }
        p
    }

    #[test]
    fn intersects_and_pages_to_the_end() {
        let a = postings(&[1, 3, 5, 7, 9, 11]);
        let b = postings(&[0, 3, 4, 7, 11, 12]);
        let first = page(&mut [&a, &b], 0, 100, 2, |_| true, Some);
        assert_eq!(first.data, vec![3, 7]);
        assert_eq!(first.next, Some(11));
        let second = page(&mut [&a, &b], 11, 100, 2, |_| true, Some);
        assert_eq!(second.data, vec![11]);
        assert_eq!(second.next, None);
        let bounded = page(&mut [&a, &b], 0, 11, 5, |_| true, Some);
        assert_eq!(bounded.data, vec![3, 7]);
        assert_eq!(bounded.next, None);
        let all = page(&mut [], 3, 6, 10, |p| p % 2 == 0, Some);
        assert_eq!(all.data, vec![4]);
        let exact = page(&mut [&One(7), &a], 0, 100, 10, |_| true, Some);
        assert_eq!((exact.data, exact.next), (vec![7], None));
    }

    #[test]
    fn insert_remove_keep_order() {
        let mut p = postings(&[2, 4]);
        p.insert(3);
        p.push(1);
        p.remove(4);
        assert_eq!(p.0, vec![1, 2, 3]);
        assert!(p.contains(3) && !p.contains(4));
    }
}
