//! Ingest: the one path every frame takes, whatever transport brought it.
//!
//! check the body -> dedupe `(device, seq)` -> admission (quota, fair share:
//! `admission`) -> queue for detection (bounded) -> blob put -> SQL rows in
//! one transaction -> answer. The blob is written
//! before the rows that point to it; a resent frame is answered from the
//! store and never detected or stored twice. A resend is the same frame: the
//! same `captured_at` and the same image (SHA-256; frames stored before
//! digests were kept compare on `captured_at` alone). Another frame under a
//! stored seq (a reflashed device, a restored backup) is refused as
//! [`IngestError::SeqConflict`] and nothing is stored. A frame showing the same scene
//! as the device's previous image points at that image instead of storing
//! its own (`unchanged`).

pub mod admission;
mod config;
mod error;
pub mod meta;
pub mod quota;
pub mod unchanged;

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use lastseen_shared::{DeviceId, FrameId, UserId};

pub use admission::{Admission, AdmissionSettings, Budget, OverBudget};
pub use config::IngestConfig;
pub use error::{IngestError, IngestErrorKind};
pub use meta::{FrameMeta, MetaError};
pub use quota::OverQuota;
pub use unchanged::UnchangedImages;

use crate::blob::{BlobKey, BlobStore};
use crate::detect::{DetectError, DetectorPool, sniff_jpeg};
use crate::metrics::{FrameOutcome, Metrics, Transport};
use crate::store::{
    DeviceRecord, FrameIdentity, FrameRecord, FrameStore, ImageDigest, InsertOutcome, NewFrame,
    StoreError, StoredFrame,
};

#[derive(Clone, Debug, PartialEq)]
pub enum IngestOutcome {
    /// First time this `(device, seq)` arrived: detected and stored now.
    Stored(StoredFrame),
    /// Seen before: the stored result, unchanged.
    Resent(StoredFrame),
}

impl IngestOutcome {
    pub fn frame(&self) -> &StoredFrame {
        match self {
            IngestOutcome::Stored(frame) | IngestOutcome::Resent(frame) => frame,
        }
    }
}

/// Told of every frame stored for the first time (never of a resend), right
/// after its rows are committed; e.g. the live feed. Must not block.
pub trait FrameObserver: Send + Sync {
    fn frame_stored(&self, owner: UserId, frame: &StoredFrame);
}

pub struct Ingest {
    store: Arc<dyn FrameStore>,
    blobs: Arc<dyn BlobStore>,
    detector: Arc<DetectorPool>,
    unchanged: UnchangedImages,
    observer: Option<Arc<dyn FrameObserver>>,
    admission: Admission,
}

impl Ingest {
    pub fn new(
        store: Arc<dyn FrameStore>,
        blobs: Arc<dyn BlobStore>,
        detector: Arc<DetectorPool>,
    ) -> Self {
        Self {
            store,
            blobs,
            detector,
            unchanged: UnchangedImages::OFF,
            observer: None,
            admission: Admission::unlimited(),
        }
    }

    /// Quota, fair share of the detectors, clock-skew flag (see `admission`).
    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }

    /// Tells `observer` of each newly stored frame.
    pub fn with_observer(mut self, observer: Arc<dyn FrameObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Lets frames of an unchanged scene share the previous image.
    pub fn with_unchanged_images(mut self, unchanged: UnchangedImages) -> Self {
        self.unchanged = unchanged;
        self
    }

    /// [`Ingest::ingest`], counted on `metrics` under `transport`: the one
    /// place where the outcome of a frame that reached ingest is counted,
    /// for both adapters (each counts only what it refused before).
    pub async fn ingest_counted(
        &self,
        metrics: &Metrics,
        transport: Transport,
        device: &DeviceRecord,
        meta: FrameMeta,
        jpeg: Bytes,
    ) -> Result<IngestOutcome, IngestError> {
        let result = self.ingest(device, meta, jpeg).await;
        let outcome = match &result {
            Ok(IngestOutcome::Stored(_)) => FrameOutcome::Stored,
            Ok(IngestOutcome::Resent(_)) => FrameOutcome::Resent,
            Err(error) => error.kind().frame_outcome(),
        };
        metrics.frame(transport, outcome);
        result
    }

    #[tracing::instrument(skip_all, fields(device = %device.id, seq = meta.seq))]
    pub async fn ingest(
        &self,
        device: &DeviceRecord,
        meta: FrameMeta,
        jpeg: Bytes,
    ) -> Result<IngestOutcome, IngestError> {
        sniff_jpeg(&jpeg)?;
        let digest = ImageDigest::of(&jpeg);
        if let Some(existing) = self.stored_as(device, &meta, &digest).await? {
            return Ok(IngestOutcome::Resent(existing));
        }
        let mut ticket = self.admission.admit(device, &jpeg).await?;
        let Ok(answer) = self.detector.try_submit(jpeg.clone()) else {
            ticket.queue_full();
            return Err(IngestError::Overloaded);
        };
        let analysis = answer
            .await
            .map_err(|_| IngestError::Detect(DetectError::Stopped))??;

        // The digest is in the key: two different frames racing under one
        // seq never write over each other's image (the loser's is an orphan).
        let key = BlobKey::for_frame(device.id, meta.seq, &digest);
        let received_at = Utc::now();
        let mut frame = NewFrame {
            id: FrameId::new(),
            device: device.id,
            owner: device.owner,
            seq: meta.seq,
            captured_at: meta.captured_at,
            received_at,
            blob_key: key.as_str().to_owned(),
            bytes: jpeg.len() as u64,
            width: analysis.width,
            height: analysis.height,
            detections: analysis.detections,
            shares_image: false,
            clock_skewed: self.admission.clock_skewed(meta.captured_at, received_at),
            image_sha256: Some(digest),
        };
        match self.unchanged_image(device.id, &frame).await? {
            Some(image) => {
                frame.blob_key = image.blob_key;
                frame.bytes = image.bytes;
                frame.shares_image = true;
            }
            None => self.blobs.put(&key, jpeg.clone()).await?,
        }
        let mut outcome = self.store.insert_frame(&frame).await?;
        if outcome == InsertOutcome::ImageGone {
            // Retention deleted the earlier image meanwhile: store this one.
            self.blobs.put(&key, jpeg.clone()).await?;
            frame.blob_key = key.as_str().to_owned();
            frame.bytes = jpeg.len() as u64;
            frame.shares_image = false;
            outcome = self.store.insert_frame(&frame).await?;
        }
        match outcome {
            InsertOutcome::Inserted => {
                ticket.stored(if frame.shares_image { 0 } else { frame.bytes });
                tracing::debug!(frame = %frame.id, detections = frame.detections.len(), shares_image = frame.shares_image, "frame stored");
                let stored = stored(frame, &device.name);
                if let Some(observer) = &self.observer {
                    observer.frame_stored(device.owner, &stored);
                }
                Ok(IngestOutcome::Stored(stored))
            }
            // The seq was stored while this frame was in the detector: by
            // the same frame (a resend; the blob key is shared) or by
            // another one (a conflict; its image has a key of its own).
            InsertOutcome::Duplicate(_) => match self.stored_as(device, &meta, &digest).await? {
                Some(existing) => Ok(IngestOutcome::Resent(existing)),
                None => Err(StoreError::Corrupt("a duplicate frame vanished".to_owned()).into()),
            },
            InsertOutcome::ImageGone => Err(StoreError::Corrupt(
                "a frame with an image of its own was refused as sharing one".to_owned(),
            )
            .into()),
        }
    }

    /// The stored frame if this `(device, seq)` was stored as this very frame
    /// (a resend); `None` if the seq is free; [`IngestError::SeqConflict`]
    /// if another frame has it.
    async fn stored_as(
        &self,
        device: &DeviceRecord,
        meta: &FrameMeta,
        digest: &ImageDigest,
    ) -> Result<Option<StoredFrame>, IngestError> {
        let Some(identity) = self.store.frame_identity(device.id, meta.seq).await? else {
            return Ok(None);
        };
        if !same_frame(&identity, meta, digest) {
            let highest_seq = self.store.highest_seq(device.id).await?;
            tracing::warn!(
                seq = meta.seq,
                ?highest_seq,
                "a seq sent again for another frame"
            );
            return Err(IngestError::SeqConflict {
                seq: meta.seq,
                highest_seq,
            });
        }
        // `None` if retention deleted it meanwhile: it is stored again.
        Ok(self.store.frame_by_seq(device.id, meta.seq).await?)
    }

    /// The previous image of the device when `frame` shows the same scene
    /// (and has the same size), so `frame` can point at it.
    async fn unchanged_image(
        &self,
        device: DeviceId,
        frame: &NewFrame,
    ) -> Result<Option<FrameRecord>, StoreError> {
        if !self.unchanged.enabled {
            return Ok(None);
        }
        let Some(previous) = self.store.previous_image(device, frame.seq).await? else {
            return Ok(None);
        };
        let same_size =
            (previous.frame.width, previous.frame.height) == (frame.width, frame.height);
        let min_iou = self.unchanged.min_iou;
        let same_scene = unchanged::same_scene(&previous.detections, &frame.detections, min_iou);
        Ok((same_size && same_scene).then_some(previous.frame))
    }

    /// The device's highest stored seq: an agent continues above it.
    pub async fn highest_seq(&self, device: DeviceId) -> Result<Option<u64>, IngestError> {
        Ok(self.store.highest_seq(device).await?)
    }

    /// Frames waiting for a detector, and how many may wait.
    pub fn queue(&self) -> (usize, usize) {
        (self.detector.queue_len(), self.detector.capacity())
    }

    /// How long detection takes per frame, for the metrics.
    pub fn detection_latency(&self) -> &crate::metrics::Histogram {
        self.detector.latency()
    }
}

/// A resend: the same capture time (to the microsecond the store keeps) and,
/// where the stored frame has a digest, the same image.
fn same_frame(stored: &FrameIdentity, meta: &FrameMeta, digest: &ImageDigest) -> bool {
    stored.captured_at.timestamp_micros() == meta.captured_at.timestamp_micros()
        && stored.image_sha256.is_none_or(|stored| stored == *digest)
}

fn stored(frame: NewFrame, device_name: &str) -> StoredFrame {
    StoredFrame {
        frame: FrameRecord {
            id: frame.id,
            device: frame.device,
            device_name: device_name.to_owned(),
            seq: frame.seq,
            captured_at: frame.captured_at,
            received_at: frame.received_at,
            blob_key: frame.blob_key,
            bytes: frame.bytes,
            width: frame.width,
            height: frame.height,
            clock_skewed: frame.clock_skewed,
        },
        detections: frame.detections,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};

    use super::*;

    fn at(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    #[test]
    fn a_resend_has_the_same_time_and_image_and_rows_without_a_digest_compare_on_time() {
        let image = ImageDigest::of(b"the first jpeg");
        let other = ImageDigest::of(b"another jpeg");
        let meta = FrameMeta {
            seq: 7,
            captured_at: at(1_763_900_000_123_000),
        };
        let stored = |image_sha256| FrameIdentity {
            captured_at: meta.captured_at,
            image_sha256,
        };
        assert!(same_frame(&stored(Some(image)), &meta, &image));
        assert!(!same_frame(&stored(Some(image)), &meta, &other));
        // Stored before digests were kept: the time decides.
        assert!(same_frame(&stored(None), &meta, &other));
        let later = FrameMeta {
            captured_at: meta.captured_at + Duration::milliseconds(1),
            ..meta
        };
        assert!(!same_frame(&stored(Some(image)), &later, &image));
        assert!(!same_frame(&stored(None), &later, &image));
        // Below the microsecond the store keeps, times are equal.
        let finer = FrameMeta {
            captured_at: meta.captured_at + Duration::nanoseconds(400),
            ..meta
        };
        assert!(same_frame(&stored(Some(image)), &finer, &image));
    }
}
