//! Plain rows exchanged with a [`super::Store`].

use chrono::{DateTime, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    /// Argon2id PHC string; never leaves the auth module.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// User tokens issued before this instant are void ("log out everywhere",
    /// password change). Starts at `created_at`.
    pub tokens_valid_after: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub owner: UserId,
    pub name: String,
    /// What sort of device it is (`camera`, `pi`, `hololens`, ...), validated by the domain.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// Device tokens issued before this instant are void (token rotation). Starts at `created_at`.
    pub tokens_valid_after: DateTime<Utc>,
    /// A revoked device can no longer send; its history stays.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A frame about to be stored. Its image is already in the blob store under `blob_key`.
#[derive(Clone, Debug, PartialEq)]
pub struct NewFrame {
    pub id: FrameId,
    pub device: DeviceId,
    pub owner: UserId,
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub blob_key: String,
    /// Size of the image at `blob_key`.
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
    /// `blob_key` is the image of an earlier frame of the device (the scene
    /// did not change), not one written for this frame. Such a frame is only
    /// stored while another frame still points at that image; otherwise the
    /// image may be on its way out, and the insert is
    /// [`InsertOutcome::ImageGone`].
    pub shares_image: bool,
    /// `captured_at` was further from `received_at` than the configured
    /// `clock_skew_flag_secs`: the device's clock is probably wrong.
    pub clock_skewed: bool,
    /// SHA-256 of the JPEG the device sent (not of a shared image), so a
    /// `(device, seq)` sent again can be told apart from a different frame.
    pub image_sha256: Option<ImageDigest>,
}

/// SHA-256 of a frame's JPEG as the device sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ImageDigest(pub [u8; 32]);

impl ImageDigest {
    pub fn of(jpeg: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(jpeg).into())
    }

    /// Reads a stored digest; `None` unless it has exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What tells one frame of a device from another sent under the same seq.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameIdentity {
    pub captured_at: DateTime<Utc>,
    /// `None` for frames stored before digests were kept.
    pub image_sha256: Option<ImageDigest>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    Inserted,
    /// `(device, seq)` was stored before, as this frame.
    Duplicate(FrameId),
    /// Nothing stored: the frame shares an image that no frame points at any
    /// more (retention deleted them). Store the frame's own image instead.
    ImageGone,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FrameRecord {
    pub id: FrameId,
    pub device: DeviceId,
    pub device_name: String,
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub blob_key: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    /// See [`NewFrame::clock_skewed`].
    pub clock_skewed: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StoredFrame {
    pub frame: FrameRecord,
    /// In score order, highest first.
    pub detections: Vec<Detection>,
}

/// The newest sighting of one label on one of the owner's devices.
#[derive(Clone, Debug, PartialEq)]
pub struct Sighting {
    pub label: Label,
    pub device: DeviceId,
    pub device_name: String,
    pub captured_at: DateTime<Utc>,
    pub frame: FrameId,
    pub score: f32,
    pub bbox: BBox,
}

/// Position in a newest-first listing of detections: the last row returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub captured_at: DateTime<Utc>,
    pub detection_id: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DetectionQuery {
    pub owner: UserId,
    pub label: Option<Label>,
    pub device: Option<DeviceId>,
    /// Inclusive lower bound on `captured_at`.
    pub since: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `captured_at`.
    pub until: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DetectionRow {
    pub id: i64,
    pub frame: FrameId,
    pub device: DeviceId,
    pub device_name: String,
    pub captured_at: DateTime<Utc>,
    pub detection: Detection,
}

/// Retention limits: the server's (`retention_days`, `retention_max_bytes`)
/// or a user's own. `None` is "no limit" in that dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionLimits {
    /// Frames received more than this many days ago are deleted (by the
    /// server's clock: `received_at`, never the device's `captured_at`).
    pub max_age_days: Option<u32>,
    /// The oldest frames are deleted while their images take more than this.
    pub max_bytes: Option<u64>,
}

impl RetentionLimits {
    /// A user's own limits under the server's: each is the stricter of the
    /// two, so a user can lower the operator's limits but never lift them.
    pub fn within(self, server: RetentionLimits) -> RetentionLimits {
        fn stricter<T: Ord>(own: Option<T>, server: Option<T>) -> Option<T> {
            match (own, server) {
                (Some(own), Some(server)) => Some(own.min(server)),
                (own, server) => own.or(server),
            }
        }
        RetentionLimits {
            max_age_days: stricter(self.max_age_days, server.max_age_days),
            max_bytes: stricter(self.max_bytes, server.max_bytes),
        }
    }
}

/// A user as the retention sweep walks them: id order, with their own limits
/// when they set some.
#[derive(Clone, Debug, PartialEq)]
pub struct RetentionSubject {
    pub user: UserId,
    pub limits: Option<RetentionLimits>,
}

/// A frame as retention sees it, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct AgedFrame {
    pub id: FrameId,
    /// Retention goes by the server's clock, never the device's.
    pub received_at: DateTime<Utc>,
    pub blob_key: String,
    /// Size of the image at `blob_key`.
    pub bytes: u64,
    /// How many frames (this one included) point at `blob_key`.
    pub blob_refs: u64,
}

#[cfg(test)]
mod tests {
    use super::RetentionLimits;

    fn limits(days: Option<u32>, bytes: Option<u64>) -> RetentionLimits {
        RetentionLimits {
            max_age_days: days,
            max_bytes: bytes,
        }
    }

    #[test]
    fn a_user_can_lower_the_servers_limits_but_not_lift_them() {
        let server = limits(Some(30), Some(1_000));
        // "No limit" and looser limits stay at the server's.
        assert_eq!(limits(None, None).within(server), server);
        assert_eq!(limits(Some(90), Some(5_000)).within(server), server);
        // Stricter ones apply.
        assert_eq!(
            limits(Some(7), Some(500)).within(server),
            limits(Some(7), Some(500))
        );
        // Without server limits the user's own apply as they are.
        assert_eq!(
            limits(Some(7), None).within(RetentionLimits::default()),
            limits(Some(7), None)
        );
        assert_eq!(
            limits(None, Some(9)).within(limits(Some(30), None)),
            limits(Some(30), Some(9))
        );
    }
}
