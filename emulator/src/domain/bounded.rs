//! A log that keeps its newest `max` entries and forgets the oldest.
//!
//! Entries are addressed by their 1-based position since the log began, which never shifts: ids
//! made from positions stay valid while kept, and a forgotten one resolves to nothing (404), as
//! do positions not yet written. Invoices, reconciliations and jobs live in these, so a sandbox
//! that runs for simulated decades holds a bounded history.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::paging::{Page, Window};

/// A bounded, append-only log.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct BoundedLog<T> {
    /// Entries forgotten so far (the position of the oldest kept one is `dropped + 1`).
    dropped: u64,
    entries: VecDeque<T>,
}

impl<T> Default for BoundedLog<T> {
    fn default() -> Self {
        BoundedLog { dropped: 0, entries: VecDeque::new() }
    }
}

impl<T> BoundedLog<T> {
    /// Number of entries ever written.
    pub fn written(&self) -> u64 {
        self.dropped + self.entries.len() as u64
    }

    /// The position the next entry gets.
    pub fn next_position(&self) -> u64 {
        self.written() + 1
    }

    /// Appends, forgetting the oldest entries beyond `max`; returns the new entry's position.
    pub fn push(&mut self, value: T, max: usize) -> u64 {
        self.entries.push_back(value);
        while self.entries.len() > max.max(1) {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.written()
    }

    fn index(&self, position: u64) -> Option<usize> {
        position.checked_sub(self.dropped + 1).and_then(|i| usize::try_from(i).ok()).filter(|i| *i < self.entries.len())
    }

    /// The entry at a 1-based position, if kept.
    pub fn get(&self, position: u64) -> Option<&T> {
        self.entries.get(self.index(position)?)
    }

    /// The entry at a 1-based position, mutably, if kept.
    pub fn get_mut(&mut self, position: u64) -> Option<&mut T> {
        let i = self.index(position)?;
        self.entries.get_mut(i)
    }

    /// Kept entries, oldest first, with their positions.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.entries.iter().enumerate().map(|(i, e)| (self.dropped + 1 + i as u64, e))
    }

    /// Kept entries, mutably, with their positions.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut T)> {
        let first = self.dropped + 1;
        self.entries.iter_mut().enumerate().map(move |(i, e)| (first + i as u64, e))
    }

    /// One page in creation order: `window.start` counts entries ever written, so a cursor
    /// stays valid while older entries are forgotten.
    pub fn page<U>(&self, window: Window, render: impl Fn(&T) -> U) -> Page<U> {
        let skip = (window.start as u64).saturating_sub(self.dropped) as usize;
        let data: Vec<U> = self.entries.iter().skip(skip).take(window.limit).map(render).collect();
        let consumed = self.dropped.max(window.start as u64) + data.len() as u64;
        let next = (consumed < self.written()).then_some(consumed as usize);
        Page { data, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_and_keeps_positions() {
        let mut log = BoundedLog::default();
        for i in 1..=5 {
            assert_eq!(log.push(i * 10, 3), i);
        }
        assert_eq!(log.get(1), None, "forgotten");
        assert_eq!(log.get(3), Some(&30));
        assert_eq!(log.get(5), Some(&50));
        assert_eq!(log.get(6), None, "not written yet");
        assert_eq!(log.get(0), None);
        let p = log.page(Window { start: 0, limit: 2 }, |v| *v);
        assert_eq!((p.data, p.next), (vec![30, 40], Some(4)));
        let p = log.page(Window { start: 4, limit: 2 }, |v| *v);
        assert_eq!((p.data, p.next), (vec![50], None));
    }
}
