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
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum InsertOutcome {
    Inserted,
    /// `(device, seq)` was stored before, as this frame.
    Duplicate(FrameId),
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
