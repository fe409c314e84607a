//! Frames as ingest stores them and looks them up: one frame with its
//! detections and `last_seen` updates per transaction, and the reads that
//! tell a resend, a reused seq and an unchanged scene apart.

use async_trait::async_trait;
use lastseen_shared::DeviceId;

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
