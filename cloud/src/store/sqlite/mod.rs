//! The embedded [`Store`]: one SQLite file in WAL mode.
//!
//! Invariants:
//! - Every connection runs with `foreign_keys = ON`, so cascades and the
//!   `(device, owner)` consistency keys in the schema are enforced.
//! - All writes of one frame happen in one `BEGIN IMMEDIATE` transaction.
//! - Timestamps are stored as integer microseconds (UTC): anything finer is
//!   truncated, exactly as Postgres `timestamptz` would.
//! - Values read back are checked; a row that does not fit its Rust type is
//!   [`StoreError::Corrupt`], never a panic.
//! - SQL text is static or built with `QueryBuilder`; every value is bound.

mod ingest;
mod reads;
mod rows;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use lastseen_shared::{DeviceId, FrameId, Label, UserId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{
    DetectionQuery, DetectionRow, DeviceRecord, InsertOutcome, NewFrame, Sighting, Store,
    StoreError, StoreResult, StoredFrame, UserRecord,
};
use rows::{db, micros};

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

/// A taken username is the one unique violation the domain must tell apart.
fn user_insert_error(error: sqlx::Error) -> StoreError {
    let taken = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.message().contains("users.username"));
    if taken {
        StoreError::Conflict("username")
    } else {
        db(error)
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
        sqlx::query(
            "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(user.id.as_uuid())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(micros(user.created_at))
        .execute(&self.pool)
        .await
        .map_err(user_insert_error)?;
        Ok(())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, created_at FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| rows::user(&row))
            .transpose()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, created_at FROM users WHERE id = ?")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| rows::user(&row))
            .transpose()
    }

    async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO devices (id, owner_id, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(device.id.as_uuid())
            .bind(device.owner.as_uuid())
            .bind(&device.name)
            .bind(micros(device.created_at))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn device(&self, id: DeviceId) -> StoreResult<Option<DeviceRecord>> {
        sqlx::query("SELECT id, owner_id, name, created_at FROM devices WHERE id = ?")
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .map(|row| rows::device(&row))
            .transpose()
    }

    async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>> {
        sqlx::query(
            "SELECT id, owner_id, name, created_at FROM devices WHERE owner_id = ? \
             ORDER BY created_at, id",
        )
        .bind(owner.as_uuid())
        .fetch_all(&self.pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::device)
        .collect()
    }

    async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE owner_id = ?")
            .bind(owner.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("device count {count}")))
    }

    async fn frame_by_seq(&self, device: DeviceId, seq: u64) -> StoreResult<Option<StoredFrame>> {
        reads::frame_by_seq(&self.pool, device, seq).await
    }

    async fn insert_frame(&self, frame: &NewFrame) -> StoreResult<InsertOutcome> {
        ingest::insert_frame(&self.pool, frame).await
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
}
