//! The production [`Store`](super::Store): PostgreSQL, shared by every cloud node.
//!
//! Invariants:
//! - Migrations (`migrations/postgres`) run at connect, under sqlx's advisory
//!   lock, so nodes starting together apply each one exactly once.
//! - All writes of one frame happen in one transaction. Each deletion of a
//!   user or device first locks the rows that new frames need (their foreign
//!   key checks), so the blob keys it returns are those of every frame deleted.
//! - Timestamps are `timestamptz`, whole microseconds (UTC), rounded down as
//!   the SQLite backend does.
//! - Values read back are checked; a row that does not fit its Rust type is
//!   [`StoreError::Corrupt`], never a panic (timestamps included, see `rows`).
//! - SQL text is static or built with `QueryBuilder`; every value is bound.
//!   Queries are checked at run time (no `query!`), against this module's
//!   tests on a real server.

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

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Ping, StoreError, StoreResult};
use rows::db;

/// Shown in `pg_stat_activity` unless the URL names another.
const APPLICATION_NAME: &str = "lastseen-cloud";

/// A [`Store`](super::Store) backed by a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://` or `postgresql://`,
    /// with any of libpq's parameters such as `sslmode`) and applies pending
    /// migrations. The database itself must exist.
    ///
    /// `max_connections` is clamped to at least 1. Fails when the server
    /// cannot be reached, so a misconfigured node stops at startup.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let mut options = PgConnectOptions::from_str(url).map_err(db)?;
        if options.get_application_name().is_none() {
            options = options.application_name(APPLICATION_NAME);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await
            .map_err(db)?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Ping for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }
}
