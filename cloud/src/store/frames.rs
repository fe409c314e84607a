//! Frames as ingest stores them and looks them up: one frame with its
//! detections and `last_seen` updates per transaction, and the reads that
//! tell a resend, a reused seq and an unchanged scene apart.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lastseen_shared::{Detection, DeviceId, Label};

use super::{FrameIdentity, InsertOutcome, NewFrame, StoreResult, StoredFrame};

/// Frame storage on the ingest path.
#[async_trait]
pub trait FrameStore: Send + Sync {
    /// Stores the frame row, its detections and the `last_seen` updates in one
    /// transaction. A frame whose `(device, seq)` exists already is not stored
    /// again: the existing frame's id is returned as [`InsertOutcome::Duplicate`].
    /// `last_seen` only moves forward in `captured_at`, so frames that arrive
    /// late (from a device's spool) never hide a newer sighting.
    ///
    /// A frame that [`NewFrame::shares_image`] is stored only if another frame
    /// of its device points at that image when the transaction commits (else
    /// [`InsertOutcome::ImageGone`]); a concurrent
    /// [`super::RetentionStore::delete_frames`] either sees the new frame or
    /// makes this insert fail that way, so no frame is ever left pointing at a
    /// deleted image.
    async fn insert_frame(&self, frame: &NewFrame) -> StoreResult<InsertOutcome>;

    /// The frame a device already sent with this `seq`, with its detections.
    async fn frame_by_seq(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>>;

    /// The `captured_at` and image digest of the frame stored under
    /// `(device, seq)`, to tell a resend from another frame under a reused seq.
    async fn frame_identity(
        &self,
        device: DeviceId,
        seq: u64,
    ) -> StoreResult<Option<FrameIdentity>>;

    /// The highest seq stored for the device (`None` without frames), so an
    /// agent that lost its spool continues above it.
    async fn highest_seq(&self, device: DeviceId) -> StoreResult<Option<u64>>;

    /// The frame whose image the device's newest frame before `seq` shows:
    /// the earliest remaining frame pointing at that frame's image (itself,
    /// unless it shares an earlier frame's image). Unchanged scenes are
    /// compared against it, so a shared image never drifts from its boxes.
    async fn previous_image(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>>;
}

/// One detection per label: the highest score, the first one on ties.
pub(super) fn best_per_label(detections: &[Detection]) -> BTreeMap<&Label, &Detection> {
    let mut best: BTreeMap<&Label, &Detection> = BTreeMap::new();
    for detection in detections {
        best.entry(&detection.label)
            .and_modify(|kept| {
                if detection.score > kept.score {
                    *kept = detection;
                }
            })
            .or_insert(detection);
    }
    best
}

/// The statements both backends run as written: SQLite's driver numbers `$N`
/// parameters as PostgreSQL does (see `device_state::sql`).
pub(super) mod sql {
    pub(in crate::store) const FRAME_BY_SEQ: &str = "\
        SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
               f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
        FROM frames f JOIN devices d ON d.id = f.device_id \
        WHERE f.device_id = $1 AND f.seq = $2";

    /// One row of the unique `(device_id, seq)` index.
    pub(in crate::store) const FRAME_IDENTITY: &str =
        "SELECT captured_at, image_sha256 FROM frames WHERE device_id = $1 AND seq = $2";

    /// The last entry of the device's part of the `(device_id, seq)` index.
    pub(in crate::store) const HIGHEST_SEQ: &str =
        "SELECT MAX(seq) AS seq FROM frames WHERE device_id = $1";
}

/// The [`FrameStore`] of a backend: the reads run the same way on both, over
/// [`sql`], the module's own `PREVIOUS_IMAGE` and its `with_detections`.
/// Storing a frame differs (one statement per table over arrays on
/// PostgreSQL, bounded multi-row inserts on SQLite, and each its own way of
/// keeping retention out), so that is the module's `insert_frame`. The
/// invoking module imports what the body names.
macro_rules! frame_store {
    ($store:ty) => {
        #[async_trait]
        impl FrameStore for $store {
            async fn insert_frame(&self, frame: &NewFrame) -> StoreResult<InsertOutcome> {
                insert_frame(&self.pool, frame).await
            }

            async fn frame_by_seq(
                &self,
                device: DeviceId,
                seq: u64,
            ) -> StoreResult<Option<StoredFrame>> {
                // No frame can be stored with a seq beyond i64::MAX, so there is nothing to find.
                let Ok(seq) = i64::try_from(seq) else {
                    return Ok(None);
                };
                let row = sqlx::query(sql::FRAME_BY_SEQ)
                    .bind(device.as_uuid())
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                with_detections(&self.pool, row).await
            }

            async fn frame_identity(
                &self,
                device: DeviceId,
                seq: u64,
            ) -> StoreResult<Option<FrameIdentity>> {
                let Ok(seq) = i64::try_from(seq) else {
                    return Ok(None);
                };
                sqlx::query(sql::FRAME_IDENTITY)
                    .bind(device.as_uuid())
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .as_ref()
                    .map(rows::frame_identity)
                    .transpose()
            }

            async fn highest_seq(&self, device: DeviceId) -> StoreResult<Option<u64>> {
                let row = sqlx::query(sql::HIGHEST_SEQ)
                    .bind(device.as_uuid())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                row.optional_int("seq")?
                    .map(|seq| {
                        u64::try_from(seq).map_err(|_| {
                            StoreError::Corrupt(format!("column seq: {seq} is negative"))
                        })
                    })
                    .transpose()
            }

            async fn previous_image(
                &self,
                device: DeviceId,
                seq: u64,
            ) -> StoreResult<Option<StoredFrame>> {
                // Every stored seq fits an i64, so a larger one is after all of them.
                let seq = i64::try_from(seq).unwrap_or(i64::MAX);
                let row = sqlx::query(PREVIOUS_IMAGE)
                    .bind(device.as_uuid())
                    .bind(seq)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                with_detections(&self.pool, row).await
            }
        }
    };
}
pub(super) use frame_store;
