//! The embedded [`Store`](super::Store): one SQLite file in WAL mode.
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

mod device_state;
mod devices;
mod frames;
mod invites;
mod retention;
mod rows;
mod sightings;
#[cfg(test)]
pub(crate) mod tests;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Ping, StoreError, StoreResult};
use rows::db;

/// How long a connection waits for another one's write lock before failing
/// with `SQLITE_BUSY`. Writes are short, so this only trips under real overload.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// File name used by [`SqliteStore::open_in`].
const FILE_NAME: &str = "lastseen.sqlite3";

/// Pool size used by [`SqliteStore::open_in`]: WAL lets readers run beside
/// the single writer, and more connections than that buys nothing on SQLite.
const DEFAULT_MAX_CONNECTIONS: u32 = 4;

/// A [`Store`](super::Store) backed by one SQLite database file.
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
impl Ping for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
