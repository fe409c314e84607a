//! Retention: per-user limits, usage, the oldest frames, their deletion with
//! the `last_seen` repair, and which images no frame points at any more.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{FrameId, UserId};

use super::{AgedFrame, RetentionLimits, RetentionSubject, StoreResult};

/// Storage behind the retention sweep and the storage quota.
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// The user's own retention limits, None when they use the defaults.
    async fn retention_of(&self, user: UserId) -> StoreResult<Option<RetentionLimits>>;
    /// Sets (Some) or clears (None, back to the defaults) the user's own
    /// limits. False when the user does not exist.
    async fn set_retention_of(
        &self,
        user: UserId,
        limits: Option<RetentionLimits>,
    ) -> StoreResult<bool>;
    /// Up to `limit` users after `after` in id order, with their own limits.
    async fn retention_subjects(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<RetentionSubject>>;
    /// Bytes of the distinct images the owner's frames point at.
    async fn stored_bytes(&self, owner: UserId) -> StoreResult<u64>;
    /// Up to `limit` of the owner's frames, oldest first by arrival
    /// (`received_at`, then id), only those received before `before` when given.
    async fn oldest_frames(
        &self,
        owner: UserId,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<AgedFrame>>;
    /// Deletes those of `ids` that are frames of `owner`, with their
    /// detections, in one transaction that also points each `last_seen` row
    /// that named one of them at the newest remaining detection of its
    /// `(device, label)` (or deletes it when none remains). Returns the blob
    /// keys of the deleted frames that no remaining frame points at: the
    /// images the caller may now delete.
    async fn delete_frames(&self, owner: UserId, ids: &[FrameId]) -> StoreResult<Vec<String>>;
    /// Those of `keys` that no frame points at (each once).
    async fn unreferenced_blob_keys(&self, keys: &[String]) -> StoreResult<Vec<String>>;
}
