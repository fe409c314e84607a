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

/// The [`SightingStore`] of a backend, over the statements its module
/// defines (`FRAMES_OF_DEVICE`, `FRAME_OF_OWNER`, `LAST_SEEN_OF_LABEL`,
/// `LAST_SEEN_ALL`, `push_detection_listing`) in its own dialect: the calls
/// and the reading of rows are the same for both, so they are written once.
/// The invoking module imports what the body names.
macro_rules! sighting_store {
    ($store:ty) => {
        #[async_trait]
        impl SightingStore for $store {
            async fn frames_of_device(
                &self,
                owner: UserId,
                device: DeviceId,
                after_seq: Option<u64>,
                limit: u32,
            ) -> StoreResult<Vec<FrameRecord>> {
                // Stored seqs are 0..=i64::MAX: -1 is before all of them, and nothing is after i64::MAX.
                let after = match after_seq {
                    None => -1,
                    Some(seq) => match i64::try_from(seq) {
                        Ok(seq) => seq,
                        Err(_) => return Ok(Vec::new()),
                    },
                };
                sqlx::query(FRAMES_OF_DEVICE)
                    .bind(device.as_uuid())
                    .bind(owner.as_uuid())
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(rows::frame)
                    .collect()
            }

            async fn frame_of_owner(
                &self,
                owner: UserId,
                id: FrameId,
            ) -> StoreResult<Option<StoredFrame>> {
                let row = sqlx::query(FRAME_OF_OWNER)
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                with_detections(&self.pool, row).await
            }

            async fn last_seen(
                &self,
                owner: UserId,
                label: Option<&Label>,
            ) -> StoreResult<Vec<Sighting>> {
                let query = match label {
                    Some(label) => sqlx::query(LAST_SEEN_OF_LABEL)
                        .bind(owner.as_uuid())
                        .bind(label.as_str()),
                    None => sqlx::query(LAST_SEEN_ALL).bind(owner.as_uuid()),
                };
                query
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(rows::sighting)
                    .collect()
            }

            async fn detections(&self, query: &DetectionQuery) -> StoreResult<Vec<DetectionRow>> {
                let mut listing = QueryBuilder::new("");
                push_detection_listing(&mut listing, query);
                listing
                    .build()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(rows::detection_row)
                    .collect()
            }
        }
    };
}
pub(super) use sighting_store;
