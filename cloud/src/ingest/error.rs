//! Why ingest refused a frame, and what kind of refusal that is for any
//! transport: [`IngestError::kind`] gives the stable code, whether the
//! device must give the frame up, and how long to wait before sending it
//! again. `http/error.rs` maps the kind to a status; the MQTT adapter
//! answers or drops by it.

use crate::blob::BlobError;
use crate::detect::{DetectError, ImageError};
use crate::metrics::FrameOutcome;
use crate::store::StoreError;

use super::admission::{OverBudget, Scope};
use super::quota::{OverQuota, QuotaError};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the detection queue is full")]
    Overloaded,
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
    #[error(transparent)]
    OverQuota(#[from] OverQuota),
    #[error(transparent)]
    Detect(DetectError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The device already stored another frame (another `captured_at` or
    /// image) under this seq.
    #[error("seq {seq} is already stored for another frame of this device; continue above its highest stored seq ({})", highest_seq.map_or_else(|| "none".to_owned(), |s| s.to_string()))]
    SeqConflict {
        seq: u64,
        /// The device's highest stored seq when the conflict was found.
        highest_seq: Option<u64>,
    },
}

impl From<QuotaError> for IngestError {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::Over(over) => IngestError::OverQuota(over),
            QuotaError::Store(store) => IngestError::Store(store),
        }
    }
}

impl From<DetectError> for IngestError {
    fn from(error: DetectError) -> Self {
        match error {
            DetectError::Image(image) => IngestError::Image(image),
            other => IngestError::Detect(other),
        }
    }
}

/// What kind of refusal an [`IngestError`] is, the same for every transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestErrorKind {
    /// The body is not a JPEG.
    NotJpeg,
    /// The image has more pixels than `max_image_pixels`.
    ImageTooLarge,
    /// A truncated or corrupt JPEG.
    UnprocessableImage,
    /// Another frame of the device is stored under this seq.
    SeqConflict,
    /// The detection queue is full.
    Overloaded,
    /// The device used up its share of the detectors (`admit_device_*`).
    OverDeviceBudget { retry_after_secs: u32 },
    /// The device's account used up its share (`admit_owner_*`).
    OverOwnerBudget { retry_after_secs: u32 },
    /// The account's images would go past `user_quota_bytes`.
    QuotaExceeded,
    /// The store or the blob store failed.
    StorageUnavailable,
    /// The detector failed on this frame.
    DetectorFailed,
}

impl IngestErrorKind {
    /// Every kind, for tests that walk them all.
    pub const ALL: [IngestErrorKind; 10] = [
        Self::NotJpeg,
        Self::ImageTooLarge,
        Self::UnprocessableImage,
        Self::SeqConflict,
        Self::Overloaded,
        Self::OverDeviceBudget {
            retry_after_secs: 1,
        },
        Self::OverOwnerBudget {
            retry_after_secs: 1,
        },
        Self::QuotaExceeded,
        Self::StorageUnavailable,
        Self::DetectorFailed,
    ];

    /// The stable error code a client sees (REST error body, MQTT
    /// `Ack.rejected`).
    pub fn code(self) -> &'static str {
        match self {
            Self::NotJpeg => "unsupported_media_type",
            Self::ImageTooLarge => "image_too_large",
            Self::UnprocessableImage => "unprocessable_image",
            Self::SeqConflict => "seq_conflict",
            // A budget refusal reads like a full queue: send it again later.
            Self::Overloaded | Self::OverDeviceBudget { .. } | Self::OverOwnerBudget { .. } => {
                "overloaded"
            }
            Self::QuotaExceeded => "quota_exceeded",
            Self::StorageUnavailable => "storage_unavailable",
            // Our fault, not the frame's: the client learns nothing more.
            Self::DetectorFailed => "internal",
        }
    }

    /// Refused for good: the device gives the frame up (a `seq_conflict`
    /// is renumbered instead). Anything else is "not now": the device keeps
    /// the frame and sends it again.
    pub fn is_permanent(self) -> bool {
        matches!(
            self,
            Self::NotJpeg | Self::ImageTooLarge | Self::UnprocessableImage | Self::SeqConflict
        )
    }

    /// How long the refusal itself says to wait, when it knows.
    pub fn retry_after_secs(self) -> Option<u32> {
        match self {
            Self::OverDeviceBudget { retry_after_secs }
            | Self::OverOwnerBudget { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        }
    }

    /// The `reason` label of a frame not taken now on `/metrics`: the code,
    /// unless that says too little.
    pub fn reason(self) -> &'static str {
        match self {
            Self::OverDeviceBudget { .. } => "over_device_budget",
            Self::OverOwnerBudget { .. } => "over_owner_budget",
            Self::DetectorFailed => "detector_failed",
            other => other.code(),
        }
    }

    /// How the frame is counted on `/metrics`.
    pub fn frame_outcome(self) -> FrameOutcome {
        if self.is_permanent() {
            FrameOutcome::Rejected(self.code())
        } else {
            FrameOutcome::Dropped(self.reason())
        }
    }
}

impl IngestError {
    pub fn kind(&self) -> IngestErrorKind {
        match self {
            IngestError::Image(ImageError::NotJpeg) => IngestErrorKind::NotJpeg,
            IngestError::Image(ImageError::TooLarge { .. }) => IngestErrorKind::ImageTooLarge,
            IngestError::Image(_) => IngestErrorKind::UnprocessableImage,
            IngestError::Overloaded => IngestErrorKind::Overloaded,
            IngestError::OverBudget(over) => {
                let retry_after_secs = over.retry_after_secs;
                match over.scope {
                    Scope::Device => IngestErrorKind::OverDeviceBudget { retry_after_secs },
                    Scope::Owner => IngestErrorKind::OverOwnerBudget { retry_after_secs },
                }
            }
            IngestError::OverQuota(_) => IngestErrorKind::QuotaExceeded,
            IngestError::Store(_) | IngestError::Blob(_) => IngestErrorKind::StorageUnavailable,
            IngestError::Detect(_) => IngestErrorKind::DetectorFailed,
            IngestError::SeqConflict { .. } => IngestErrorKind::SeqConflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bad_frame_or_a_taken_seq_is_refused_for_good() {
        let permanent: Vec<_> = IngestErrorKind::ALL
            .into_iter()
            .filter(|kind| kind.is_permanent())
            .map(IngestErrorKind::code)
            .collect();
        assert_eq!(
            permanent,
            [
                "unsupported_media_type",
                "image_too_large",
                "unprocessable_image",
                "seq_conflict"
            ]
        );
    }

    #[test]
    fn budget_refusals_carry_their_wait_and_a_label_of_their_own() {
        let over = IngestError::OverBudget(OverBudget {
            scope: Scope::Owner,
            retry_after_secs: 7,
        });
        let kind = over.kind();
        assert_eq!(kind.code(), "overloaded");
        assert_eq!(kind.retry_after_secs(), Some(7));
        assert_eq!(
            kind.frame_outcome(),
            FrameOutcome::Dropped("over_owner_budget")
        );
        assert_eq!(IngestError::Overloaded.kind().retry_after_secs(), None);
    }
}
