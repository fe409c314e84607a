//! The per-user storage quota (`user_quota_bytes`): a hard ceiling on the
//! bytes of a user's images, checked at ingest before the frame is detected
//! or stored. Retention's `retention_max_bytes` deletes the oldest frames at
//! each sweep; this refuses new ones between sweeps, so the disk never holds
//! more than the quota whatever the sweep interval. A user cannot lift it.
//!
//! A user's usage is read from the store ([`RetentionStore::stored_bytes`], each
//! image once) at most every `user_quota_refresh_secs`; in between, this node
//! adds what it stores. Frames in flight hold a reservation of their size, so
//! concurrent frames cannot all pass on the same free space. Deletions (by
//! retention or the user) and frames other nodes store show at the next read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lastseen_shared::UserId;

use crate::store::{RetentionStore, StoreError};

/// The frame would take its owner past the quota. The device keeps it.
#[derive(Debug, thiserror::Error)]
#[error(
    "the account's images take {used} of its {limit} bytes of storage and this frame needs {needed} more; the device keeps it and sends it again later (delete frames or lower the retention to make room)"
)]
pub struct OverQuota {
    pub limit: u64,
    pub used: u64,
    pub needed: u64,
}

pub(super) struct Quota {
    limit: u64,
    refresh: Duration,
    store: Arc<dyn RetentionStore>,
    usage: Arc<Mutex<Usages>>,
}

#[derive(Debug)]
struct Usages {
    users: HashMap<UserId, Usage>,
    swept_at: Instant,
}

#[derive(Debug)]
struct Usage {
    /// Read from the store at `read_at`, plus what this node stored since.
    stored: u64,
    /// Bytes of frames admitted and not yet stored or refused.
    reserved: u64,
    read_at: Instant,
}

/// Bytes held for one admitted frame; given back on drop unless committed.
#[derive(Debug)]
pub(super) struct Reservation {
    usage: Arc<Mutex<Usages>>,
    user: UserId,
    bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum QuotaError {
    #[error(transparent)]
    Over(#[from] OverQuota),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn lock(usage: &Mutex<Usages>) -> std::sync::MutexGuard<'_, Usages> {
    usage.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Quota {
    pub(super) fn new(limit: u64, refresh: Duration, store: Arc<dyn RetentionStore>) -> Self {
        Self {
            limit,
            refresh,
            store,
            usage: Arc::new(Mutex::new(Usages {
                users: HashMap::new(),
                swept_at: Instant::now(),
            })),
        }
    }

    pub(super) async fn reserve(
        &self,
        user: UserId,
        bytes: u64,
    ) -> Result<Reservation, QuotaError> {
        let now = Instant::now();
        let fresh = {
            let mut usage = lock(&self.usage);
            usage.forget_stale(self.refresh, now);
            usage
                .users
                .get(&user)
                .is_some_and(|u| now.saturating_duration_since(u.read_at) < self.refresh)
        };
        if !fresh {
            let stored = self.store.stored_bytes(user).await?;
            let mut usage = lock(&self.usage);
            let entry = usage.users.entry(user).or_insert(Usage {
                stored,
                reserved: 0,
                read_at: now,
            });
            entry.stored = stored;
            entry.read_at = now;
        }
        let mut usage = lock(&self.usage);
        let entry = usage.users.entry(user).or_insert(Usage {
            stored: 0,
            reserved: 0,
            read_at: now,
        });
        let used = entry.stored.saturating_add(entry.reserved);
        if used.saturating_add(bytes) > self.limit {
            return Err(OverQuota {
                limit: self.limit,
                used,
                needed: bytes,
            }
            .into());
        }
        entry.reserved += bytes;
        Ok(Reservation {
            usage: self.usage.clone(),
            user,
            bytes,
        })
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        lock(&self.usage).users.len()
    }
}

impl Usages {
    /// Entries older than a refresh are read again anyway; those without a
    /// frame in flight go, so memory follows the users active lately.
    fn forget_stale(&mut self, refresh: Duration, now: Instant) {
        if now.saturating_duration_since(self.swept_at) < refresh {
            return;
        }
        self.swept_at = now;
        self.users.retain(|_, usage| {
            usage.reserved > 0 || now.saturating_duration_since(usage.read_at) < refresh
        });
    }
}

impl Reservation {
    /// The frame is stored; its image added `new_bytes` (0 when it shares an
    /// earlier one).
    pub(super) fn commit(mut self, new_bytes: u64) {
        self.release(new_bytes);
        self.bytes = 0;
    }

    fn release(&self, new_bytes: u64) {
        if let Some(entry) = lock(&self.usage).users.get_mut(&self.user) {
            entry.reserved = entry.reserved.saturating_sub(self.bytes);
            entry.stored = entry.stored.saturating_add(new_bytes);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.release(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    async fn store() -> (Arc<dyn RetentionStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("q.db").display());
        let store = SqliteStore::connect(&url, 2).await.unwrap();
        (Arc::new(store), dir)
    }

    #[tokio::test]
    async fn frames_in_flight_hold_their_bytes_until_stored_or_dropped() {
        let (store, _dir) = store().await;
        let quota = Quota::new(1_000, Duration::from_secs(60), store);
        let user = UserId::new();
        let first = quota.reserve(user, 600).await.unwrap();
        // 600 in flight: 500 more do not fit.
        let QuotaError::Over(over) = quota.reserve(user, 500).await.unwrap_err() else {
            panic!("expected OverQuota");
        };
        assert_eq!((over.limit, over.used, over.needed), (1_000, 600, 500));
        drop(first);
        // Refused by the detector (dropped): its bytes are free again.
        let second = quota.reserve(user, 500).await.unwrap();
        second.commit(500);
        let third = quota.reserve(user, 400).await.unwrap();
        // Shares an earlier image: adds nothing.
        third.commit(0);
        assert!(quota.reserve(user, 500).await.is_ok());
        assert!(quota.reserve(user, 501).await.is_err());
        // Another user has their own quota.
        assert!(quota.reserve(UserId::new(), 1_000).await.is_ok());
    }

    #[tokio::test]
    async fn usage_is_read_again_after_the_refresh_and_idle_users_are_forgotten() {
        let (store, _dir) = store().await;
        let quota = Quota::new(1_000, Duration::from_millis(50), store);
        let user = UserId::new();
        quota.reserve(user, 900).await.unwrap().commit(900);
        assert!(quota.reserve(user, 200).await.is_err());
        // The store (which holds nothing for this user) is read again: what
        // retention deleted meanwhile shows.
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(quota.reserve(user, 200).await.is_ok());
        tokio::time::sleep(Duration::from_millis(60)).await;
        let other = quota.reserve(UserId::new(), 1).await.unwrap();
        assert_eq!(quota.tracked(), 1);
        drop(other);
    }
}
