//! Metadata storage: users, devices, frames, detections and the `last_seen` index.
//!
//! [`Store`] is the one seam between the domain and SQL. Each backend lives in
//! its own module with its own migrations; the same conformance tests run
//! against every backend so they cannot drift. Timestamps are UTC; ids are
//! UUIDs; `(device, seq)` is unique, which is what makes ingest idempotent.

#[cfg(test)]
mod conformance;
mod device_state;
mod invites;
mod postgres;
mod records;
mod rows;
mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, FrameId, Label, UserId};
use uuid::Uuid;

pub use device_state::{DeviceStateStore, ReportedStatus};
pub use invites::{InviteRecord, InviteStore, InvitedOutcome};
pub use postgres::PgStore;
pub use records::{
    AgedFrame, Cursor, DetectionQuery, DetectionRow, DeviceRecord, FrameIdentity, FrameRecord,
    ImageDigest, InsertOutcome, NewFrame, RetentionLimits, RetentionSubject, Sighting, StoredFrame,
    UserRecord,
};
pub use sqlite::SqliteStore;

/// Fresh stores for tests outside this module (each with its guard).
#[cfg(test)]
pub(crate) mod testing {
    pub(crate) use super::postgres::tests::fresh as fresh_postgres;
    pub(crate) use super::sqlite::tests::fresh as fresh_sqlite;
}

/// What can go wrong in a store, as the domain needs to tell it apart.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint other than `(device, seq)` was violated (e.g. a taken username).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// A value read back from the database does not fit its type (corruption or a bug).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence for everything but image bytes (those go to the blob store).
/// Device settings and status are in [`DeviceStateStore`], invite codes in
/// [`InviteStore`].
#[async_trait]
pub trait Store: DeviceStateStore + InviteStore + Send + Sync + 'static {
    /// Cheap round trip used by the health check.
    async fn ping(&self) -> StoreResult<()>;

    /// Fails with [`StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;

    async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()>;
    async fn device(&self, id: DeviceId) -> StoreResult<Option<DeviceRecord>>;
    /// The owner's devices, oldest first.
    async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>>;
    async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64>;

    /// Replaces the password hash and voids every user token issued before
    /// `tokens_valid_after`, in one statement. False when the user does not exist.
    ///
    /// Here and in every call below, a `tokens_valid_after` only moves forward:
    /// an instant before the stored one leaves it, so no voided token comes back.
    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        tokens_valid_after: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Voids every user token issued before `at`. False when the user does not exist.
    async fn set_user_tokens_valid_after(&self, id: UserId, at: DateTime<Utc>)
    -> StoreResult<bool>;
    /// Deletes the user with their devices, frames, detections and `last_seen`
    /// rows, in one transaction, and returns the blob keys of the deleted
    /// frames so the caller can delete the images. None when no such user.
    async fn delete_user(&self, id: UserId) -> StoreResult<Option<Vec<String>>>;

    /// Remembers a single revoked token (logout) until it would expire anyway.
    async fn revoke_token(&self, jti: Uuid, expires_at: DateTime<Utc>) -> StoreResult<()>;
    async fn is_token_revoked(&self, jti: Uuid) -> StoreResult<bool>;
    /// Forgets revocations whose tokens have expired (`expires_at < now`; one
    /// expiring at `now` stays); returns how many. Revoking again keeps the later expiry.
    async fn purge_expired_revocations(&self, now: DateTime<Utc>) -> StoreResult<u64>;

    /// The device-changing calls below act only on a device of `owner` and
    /// return the device as it is afterwards, or None when `owner` has no such device.
    async fn rename_device(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Voids the device's tokens issued before `at` (rotation).
    async fn set_device_tokens_valid_after(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Sets `revoked_at` (keeping an earlier one) and voids its tokens issued
    /// before `at`, as rotation does; history stays.
    async fn revoke_device(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Deletes the device with its frames, detections and `last_seen` rows in
    /// one transaction; returns the blob keys of the deleted frames.
    async fn delete_device(&self, owner: UserId, id: DeviceId) -> StoreResult<Option<Vec<String>>>;

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

    /// Stores the frame row, its detections and the `last_seen` updates in one
    /// transaction. A frame whose `(device, seq)` exists already is not stored
    /// again: the existing frame's id is returned as [`InsertOutcome::Duplicate`].
    /// `last_seen` only moves forward in `captured_at`, so frames that arrive
    /// late (from a device's spool) never hide a newer sighting.
    ///
    /// A frame that [`NewFrame::shares_image`] is stored only if another frame
    /// of its device points at that image when the transaction commits (else
    /// [`InsertOutcome::ImageGone`]); a concurrent [`Store::delete_frames`]
    /// either sees the new frame or makes this insert fail that way, so no
    /// frame is ever left pointing at a deleted image.
    async fn insert_frame(&self, frame: &NewFrame) -> StoreResult<InsertOutcome>;

    /// The frame whose image the device's newest frame before `seq` shows:
    /// the earliest remaining frame pointing at that frame's image (itself,
    /// unless it shares an earlier frame's image). Unchanged scenes are
    /// compared against it, so a shared image never drifts from its boxes.
    async fn previous_image(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>>;

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

    /// The newest sighting per label over the owner's devices (one row per
    /// label, newest first), or only for `label` when given.
    async fn last_seen(&self, owner: UserId, label: Option<&Label>) -> StoreResult<Vec<Sighting>>;

    /// Detections matching the query, newest first (`captured_at`, then id),
    /// strictly after the cursor when one is given, at most `query.limit` rows.
    async fn detections(&self, query: &DetectionQuery) -> StoreResult<Vec<DetectionRow>>;

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
    /// Up to `limit` of the owner's frames, oldest first (`captured_at`, then
    /// id), only those captured before `before` when given.
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
