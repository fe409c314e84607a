//! What the owner reads back: the newest sighting per label, detection
//! listings, and a device's frames.
//!
//! Every read is filtered by owner in SQL, never after the fact.

use async_trait::async_trait;
use lastseen_shared::{DeviceId, FrameId, Label, UserId};

use super::{DetectionQuery, DetectionRow, FrameRecord, Sighting, StoreResult, StoredFrame};

/// The owner's queries.
#[async_trait]
pub trait SightingStore: Send + Sync {
    /// The newest sighting per label over the owner's devices (one row per
    /// label, newest first), or only for `label` when given.
    async fn last_seen(&self, owner: UserId, label: Option<&Label>) -> StoreResult<Vec<Sighting>>;

    /// Detections matching the query, newest first (`captured_at`, then id),
    /// strictly after the cursor when one is given, at most `query.limit` rows.
    async fn detections(&self, query: &DetectionQuery) -> StoreResult<Vec<DetectionRow>>;

    /// Up to `limit` frames of one of `owner`'s devices, in `seq` order,
    /// strictly after `after_seq` when given (a ledger walks a device's
    /// history with it). Empty for another owner's device.
    async fn frames_of_device(
        &self,
        owner: UserId,
        device: DeviceId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<FrameRecord>>;

    /// A frame with its detections, only if it belongs to one of `owner`'s devices.
    async fn frame_of_owner(&self, owner: UserId, id: FrameId) -> StoreResult<Option<StoredFrame>>;
}
