//! The embedded [`Store`]: one SQLite file in WAL mode.
//!
//! Invariants:
//! - Every connection runs with `foreign_keys = ON`, so cascades and the
//!   `(device, owner)` consistency keys in the schema are enforced.
//! - All writes of one frame happen in one `BEGIN IMMEDIATE` transaction, and
//!   so does each deletion of a user or device with the read of its blob keys.
//! - Timestamps are stored as integer microseconds (UTC): anything finer is
//!   truncated, exactly as Postgres `timestamptz` would.
//! - Values read back are checked; a row that does not fit its Rust type is
//!   [`StoreError::Corrupt`], never a panic.
//! - SQL text is static or built with `QueryBuilder`; every value is bound.

mod accounts;
mod device_state;
mod devices;
mod ingest;
mod invites;
mod reads;
mod retention;
mod rows;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_accounts;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, FrameId, Label, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use uuid::Uuid;

use super::{
    AgedFrame, DetectionQuery, DetectionRow, DeviceRecord, FrameIdentity, FrameRecord,
    InsertOutcome, NewFrame, RetentionLimits, RetentionSubject, Sighting, Store, StoreError,
    StoreResult, StoredFrame, UserRecord,
};
use rows::db;

/// How long a connection waits for another one's write lock before failing
/// with `SQLITE_BUSY`. Writes are short, so this only trips under real overload.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// File name used by [`SqliteStore::open_in`].
const FILE_NAME: &str = "lastseen.sqlite3";

/// Pool size used by [`SqliteStore::open_in`]: WAL lets readers run beside
/// the single writer, and more connections than that buys nothing on SQLite.
const DEFAULT_MAX_CONNECTIONS: u32 = 4;

/// A [`Store`] backed by one SQLite database file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url_or_path` — either a
    /// `sqlite:` URL or a plain file path — and applies pending migrations.
    ///
    /// `max_connections` is clamped to at least 1. An in-memory URL gives each
    /// connection its own database, so use a file for anything but one connection.
    pub async fn connect(url_or_path: &str, max_connections: u32) -> StoreResult<Self> {
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path).map_err(db)?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        Self::connect_with(options, max_connections).await
    }

    /// Opens (creating if missing) `lastseen.sqlite3` inside `dir`, creating `dir` too.
    pub async fn open_in(dir: &Path) -> StoreResult<Self> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| db(sqlx::Error::Io(e)))?;
        let options = SqliteConnectOptions::new().filename(dir.join(FILE_NAME));
        Self::connect_with(options, DEFAULT_MAX_CONNECTIONS).await
    }

    async fn connect_with(
        options: SqliteConnectOptions,
        max_connections: u32,
    ) -> StoreResult<Self> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL syncs at checkpoints, not at every commit: the
            // database can never be corrupted, but a power loss (not a process
            // crash) may roll back the last few committed transactions. Agents
            // resend frames until acknowledged and ingest is idempotent, so the
            // worst case is re-storing a frame that was already acknowledged.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await
            .map_err(db)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        accounts::create_user(&self.pool, user).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        accounts::user_by_username(&self.pool, username).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        accounts::user_by_id(&self.pool, id).await
    }

    async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        devices::create_device(&self.pool, device).await
    }

    async fn device(&self, id: DeviceId) -> StoreResult<Option<DeviceRecord>> {
        devices::device(&self.pool, id).await
    }

    async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>> {
        devices::devices_of(&self.pool, owner).await
    }

    async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64> {
        devices::count_devices_of(&self.pool, owner).await
    }

    async fn update_password(
        &self,
        id: UserId,
        password_hash: &str,
        tokens_valid_after: DateTime<Utc>,
    ) -> StoreResult<bool> {
        accounts::update_password(&self.pool, id, password_hash, tokens_valid_after).await
    }

    async fn set_user_tokens_valid_after(
        &self,
        id: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        accounts::set_user_tokens_valid_after(&self.pool, id, at).await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<Option<Vec<String>>> {
        accounts::delete_user(&self.pool, id).await
    }

    async fn revoke_token(&self, jti: Uuid, expires_at: DateTime<Utc>) -> StoreResult<()> {
        accounts::revoke_token(&self.pool, jti, expires_at).await
    }

    async fn is_token_revoked(&self, jti: Uuid) -> StoreResult<bool> {
        accounts::is_token_revoked(&self.pool, jti).await
    }

    async fn purge_expired_revocations(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        accounts::purge_expired_revocations(&self.pool, now).await
    }

    async fn rename_device(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
    ) -> StoreResult<Option<DeviceRecord>> {
        devices::rename_device(&self.pool, owner, id, name).await
    }

    async fn set_device_tokens_valid_after(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>> {
        devices::set_device_tokens_valid_after(&self.pool, owner, id, at).await
    }

    async fn revoke_device(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>> {
        devices::revoke_device(&self.pool, owner, id, at).await
    }

    async fn delete_device(&self, owner: UserId, id: DeviceId) -> StoreResult<Option<Vec<String>>> {
        devices::delete_device(&self.pool, owner, id).await
    }

    async fn frame_by_seq(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>> {
        reads::frame_by_seq(&self.pool, device, seq).await
    }

    async fn frame_identity(
        &self,
        device: DeviceId,
        seq: u64,
    ) -> StoreResult<Option<FrameIdentity>> {
        reads::frame_identity(&self.pool, device, seq).await
    }

    async fn highest_seq(&self, device: DeviceId) -> StoreResult<Option<u64>> {
        reads::highest_seq(&self.pool, device).await
    }

    async fn insert_frame(&self, frame: &NewFrame) -> StoreResult<InsertOutcome> {
        ingest::insert_frame(&self.pool, frame).await
    }

    async fn frames_of_device(
        &self,
        owner: UserId,
        device: DeviceId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<FrameRecord>> {
        reads::frames_of_device(&self.pool, owner, device, after_seq, limit).await
    }

    async fn frame_of_owner(&self, owner: UserId, id: FrameId) -> StoreResult<Option<StoredFrame>> {
        reads::frame_of_owner(&self.pool, owner, id).await
    }

    async fn last_seen(&self, owner: UserId, label: Option<&Label>) -> StoreResult<Vec<Sighting>> {
        reads::last_seen(&self.pool, owner, label).await
    }

    async fn detections(&self, query: &DetectionQuery) -> StoreResult<Vec<DetectionRow>> {
        reads::detections(&self.pool, query).await
    }

    async fn previous_image(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>> {
        reads::previous_image(&self.pool, device, seq).await
    }

    async fn retention_of(&self, user: UserId) -> StoreResult<Option<RetentionLimits>> {
        retention::retention_of(&self.pool, user).await
    }

    async fn set_retention_of(
        &self,
        user: UserId,
        limits: Option<RetentionLimits>,
    ) -> StoreResult<bool> {
        retention::set_retention_of(&self.pool, user, limits).await
    }

    async fn retention_subjects(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<RetentionSubject>> {
        retention::retention_subjects(&self.pool, after, limit).await
    }

    async fn stored_bytes(&self, owner: UserId) -> StoreResult<u64> {
        retention::stored_bytes(&self.pool, owner).await
    }

    async fn oldest_frames(
        &self,
        owner: UserId,
        before: Option<DateTime<Utc>>,
        limit: u32,
    ) -> StoreResult<Vec<AgedFrame>> {
        retention::oldest_frames(&self.pool, owner, before, limit).await
    }

    async fn delete_frames(&self, owner: UserId, ids: &[FrameId]) -> StoreResult<Vec<String>> {
        retention::delete_frames(&self.pool, owner, ids).await
    }

    async fn unreferenced_blob_keys(&self, keys: &[String]) -> StoreResult<Vec<String>> {
        retention::unreferenced_blob_keys(&self.pool, keys).await
    }
}
