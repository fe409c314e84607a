//! Drawn and shrunk copies of frames (`?boxes=`, `?width=`) kept in memory,
//! least recently used first out, within `thumbnail_cache_bytes`.
//!
//! Frames never change once stored, so an entry is never stale; a deleted
//! frame's entries are not served because `Sightings::image` looks the frame
//! up in the store (existence and ownership) before it asks the cache, and
//! they fall out as newer ones come in.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use lastseen_shared::FrameId;
use lru::LruCache;

use crate::metrics::CacheStats;

/// What distinguishes two copies of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct CopyKey {
    pub(super) frame: FrameId,
    /// None: the frame's own width.
    pub(super) width: Option<u32>,
    pub(super) boxes: bool,
}

/// Counted per entry beside its bytes: the key, the map's and the list's
/// bookkeeping.
const ENTRY_OVERHEAD: usize = 96;

pub(super) struct CopyCache {
    capacity: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Inner {
    entries: LruCache<CopyKey, Bytes>,
    bytes: usize,
}

impl CopyCache {
    /// At most `capacity` bytes of copies (0 keeps none).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The copy if it is kept; counts a hit or, with `count_miss`, a miss.
    pub(super) fn get(&self, key: &CopyKey, count_miss: bool) -> Option<Bytes> {
        let found = self.lock().entries.get(key).cloned();
        match &found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None if count_miss => self.misses.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        found
    }

    /// Keeps `copy`, evicting the least recently used copies to make room;
    /// a copy larger than the whole cache is not kept.
    pub(super) fn put(&self, key: CopyKey, copy: Bytes) {
        let size = copy.len() + ENTRY_OVERHEAD;
        if size > self.capacity {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.put(key, copy) {
            inner.bytes -= old.len() + ENTRY_OVERHEAD;
        }
        inner.bytes += size;
        while inner.bytes > self.capacity {
            match inner.entries.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.len() + ENTRY_OVERHEAD,
                None => break,
            }
        }
    }

    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: self.lock().bytes as u64,
            capacity: self.capacity as u64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(width: u32) -> CopyKey {
        CopyKey {
            frame: FrameId::from_uuid(uuid::Uuid::nil()),
            width: Some(width),
            boxes: false,
        }
    }

    fn copy(len: usize) -> Bytes {
        Bytes::from(vec![7u8; len])
    }

    #[test]
    fn keeps_within_its_bytes_and_evicts_the_least_recently_used() {
        let cache = CopyCache::new(3 * (1000 + ENTRY_OVERHEAD));
        for width in 1..=3 {
            cache.put(key(width), copy(1000));
        }
        // 1 is used, so 2 is the oldest when 4 comes in.
        assert!(cache.get(&key(1), true).is_some());
        cache.put(key(4), copy(1000));
        assert!(cache.get(&key(2), true).is_none());
        for width in [1, 3, 4] {
            assert!(cache.get(&key(width), true).is_some(), "{width}");
        }
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (4, 1));
        assert_eq!(stats.bytes, 3 * (1000 + ENTRY_OVERHEAD as u64));
    }

    #[test]
    fn a_copy_larger_than_the_cache_is_not_kept_and_zero_keeps_none() {
        let cache = CopyCache::new(1000);
        cache.put(key(1), copy(2000));
        assert!(cache.get(&key(1), false).is_none());
        assert_eq!(cache.stats().bytes, 0);
        let none = CopyCache::new(0);
        none.put(key(1), copy(1));
        assert!(none.get(&key(1), false).is_none());
    }

    #[test]
    fn replacing_an_entry_counts_its_bytes_once() {
        let cache = CopyCache::new(10_000);
        cache.put(key(1), copy(1000));
        cache.put(key(1), copy(500));
        assert_eq!(cache.stats().bytes, 500 + ENTRY_OVERHEAD as u64);
    }
}
