//! An append-only vector stored in fixed-size chunks.
//!
//! A plain `Vec` doubles its buffer as it grows: at a million movements that is a copy of a
//! hundred-odd megabytes while the tenant lock is held, which every waiting request feels as
//! latency (the p99 of the write benchmark). Chunks never move once allocated, so an append costs
//! at most one chunk-sized allocation.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Elements per chunk.
const CHUNK_LEN: usize = 4096;

/// An append-only, chunked vector.
#[derive(Clone, Debug)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        ChunkedVec { chunks: Vec::new(), len: 0 }
    }
}

impl<T> ChunkedVec<T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends an element.
    pub fn push(&mut self, value: T) {
        if self.len % CHUNK_LEN == 0 {
            self.chunks.push(Vec::with_capacity(CHUNK_LEN));
        }
        if let Some(last) = self.chunks.last_mut() {
            last.push(value);
        }
        self.len += 1;
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.chunks.get(index / CHUNK_LEN)?.get(index % CHUNK_LEN)
    }

    /// The element at `index`, mutably.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks.get_mut(index / CHUNK_LEN)?.get_mut(index % CHUNK_LEN)
    }

    /// Removes every element after the first `len` (used to undo a failed batch).
    pub fn truncate(&mut self, len: usize) {
        while self.len > len {
            if let Some(last) = self.chunks.last_mut() {
                last.pop();
                if last.is_empty() {
                    self.chunks.pop();
                }
            }
            self.len -= 1;
        }
    }

    /// Elements from `start` on.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &T> {
        self.chunks.iter().skip(start / CHUNK_LEN).flatten().skip(start % CHUNK_LEN)
    }

    /// Index of the first element for which `pred` is false, given that `pred` holds for a
    /// prefix (binary search over a monotone predicate).
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.get(mid) {
                Some(v) if pred(v) => low = mid + 1,
                _ => high = mid,
            }
        }
        low
    }
}

impl<T: Serialize> Serialize for ChunkedVec<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.chunks.iter().flatten())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ChunkedVec<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let all = Vec::<T>::deserialize(d)?;
        let mut out = ChunkedVec::default();
        for v in all {
            out.push(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_truncate_across_chunks() {
        let mut v = ChunkedVec::default();
        for i in 0..(CHUNK_LEN * 2 + 5) {
            v.push(i);
        }
        assert_eq!(v.len(), CHUNK_LEN * 2 + 5);
        assert_eq!(v.get(CHUNK_LEN + 1), Some(&(CHUNK_LEN + 1)));
        assert_eq!(v.iter_from(CHUNK_LEN * 2).count(), 5);
        assert_eq!(v.partition_point(|x| *x < 5000), 5000);
        v.truncate(CHUNK_LEN);
        assert_eq!(v.len(), CHUNK_LEN);
        assert_eq!(v.get(CHUNK_LEN), None);
        v.push(7);
        assert_eq!(v.get(CHUNK_LEN), Some(&7));
    }
}
