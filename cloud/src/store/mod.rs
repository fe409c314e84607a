//! Metadata storage: users, devices, frames, detections and the `last_seen` index.
//!
//! [`Store`] is the one seam between the domain and SQL, made of one narrow
//! trait per area: [`UserStore`], [`DeviceStore`], [`FrameStore`] (ingest),
//! [`SightingStore`] (queries), [`RetentionStore`], [`DeviceStateStore`] and
//! [`InviteStore`]. A service depends on the area traits it uses. Each area
//! has the same file name here, in each backend (`sqlite/`, `postgres/`, each
//! with its own migrations) and in `conformance/`, whose tests run against
//! every backend so they cannot drift. Timestamps are UTC; ids are
//! UUIDs; `(device, seq)` is unique, which is what makes ingest idempotent.

mod config;
#[cfg(test)]
mod conformance;
mod device_state;
mod devices;
mod frames;
mod invites;
mod postgres;
mod records;
mod retention;
mod rows;
mod sightings;
mod sqlite;
mod users;

use async_trait::async_trait;

pub use config::StoreConfig;
pub use device_state::{DeviceStateStore, ReportedStatus};
pub use devices::DeviceStore;
pub use frames::FrameStore;
pub use invites::{InviteRecord, InviteStore, InvitedOutcome};
pub use postgres::PgStore;
pub use records::{
    AgedFrame, Cursor, DetectionQuery, DetectionRow, DeviceRecord, FrameIdentity, FrameRecord,
    ImageDigest, InsertOutcome, NewFrame, RetentionLimits, RetentionSubject, Sighting, StoredFrame,
    UserRecord,
};
pub use retention::RetentionStore;
pub use sightings::SightingStore;
pub use sqlite::SqliteStore;
pub use users::UserStore;

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

/// Cheap round trip used by the health check.
#[async_trait]
pub trait Ping: Send + Sync {
    async fn ping(&self) -> StoreResult<()>;
}

/// Persistence for everything but image bytes (those go to the blob store),
/// one narrow trait per area. Each backend implements every area trait in the
/// file of that name; this blanket impl makes it a `Store`.
pub trait Store:
    Ping
    + UserStore
    + DeviceStore
    + FrameStore
    + SightingStore
    + RetentionStore
    + DeviceStateStore
    + InviteStore
    + 'static
{
}

impl<T> Store for T where
    T: Ping
        + UserStore
        + DeviceStore
        + FrameStore
        + SightingStore
        + RetentionStore
        + DeviceStateStore
        + InviteStore
        + 'static
{
}
