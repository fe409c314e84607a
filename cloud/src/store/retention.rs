//! Retention: per-user limits, usage, the oldest frames, their deletion with
//! the `last_seen` repair, and which images no frame points at any more.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{FrameId, UserId};

use super::{AgedFrame, RetentionLimits, RetentionSubject, StoreResult};

/// Storage behind the retention sweep and the storage quota.
#[async_trait]
pub trait RetentionStore: Send + Sync {
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
    /// Up to `limit` of the owner's frames, oldest first by arrival
    /// (`received_at`, then id), only those received before `before` when given.
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

/// The statements both backends run as written: SQLite's driver numbers `$N`
/// parameters as PostgreSQL does (see `device_state::sql`).
pub(super) mod sql {
    pub(in crate::store) const RETENTION_OF: &str =
        "SELECT max_age_days, max_bytes FROM retention_overrides WHERE user_id = $1";

    /// Inserts nothing for a missing user, so that is told apart without a
    /// foreign key error.
    pub(in crate::store) const SET_RETENTION: &str = "\
        INSERT INTO retention_overrides (user_id, max_age_days, max_bytes) \
        SELECT id, $1, $2 FROM users WHERE id = $3 \
        ON CONFLICT (user_id) DO UPDATE SET \
            max_age_days = excluded.max_age_days, max_bytes = excluded.max_bytes";

    pub(in crate::store) const CLEAR_RETENTION: &str =
        "DELETE FROM retention_overrides WHERE user_id = $1";

    pub(in crate::store) const USER_EXISTS: &str =
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)";
}

/// The [`RetentionStore`] of a backend: the limits and usage calls run the
/// same way on both, over [`sql`] and the module's own `SUBJECTS` and
/// `STORED_BYTES`. Finding, deleting and checking frames and images differs
/// (one statement over arrays on PostgreSQL, bounded `IN` lists on SQLite),
/// so those are the module's `oldest_frames`, `delete_frames` and
/// `unreferenced_blob_keys`. The invoking module imports what the body names.
macro_rules! retention_store {
    ($store:ty) => {
        #[async_trait]
        impl RetentionStore for $store {
            async fn retention_of(&self, user: UserId) -> StoreResult<Option<RetentionLimits>> {
                sqlx::query(sql::RETENTION_OF)
                    .bind(user.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| rows::retention_limits(&row))
                    .transpose()
            }

            async fn set_retention_of(
                &self,
                user: UserId,
                limits: Option<RetentionLimits>,
            ) -> StoreResult<bool> {
                let Some(limits) = limits else {
                    sqlx::query(sql::CLEAR_RETENTION)
                        .bind(user.as_uuid())
                        .execute(&self.pool)
                        .await
                        .map_err(db)?;
                    return sqlx::query_scalar(sql::USER_EXISTS)
                        .bind(user.as_uuid())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db);
                };
                let max_bytes = limits
                    .max_bytes
                    .map(|bytes| to_sql_int("max_bytes", bytes))
                    .transpose()?;
                let stored = sqlx::query(sql::SET_RETENTION)
                    .bind(limits.max_age_days.map(i64::from))
                    .bind(max_bytes)
                    .bind(user.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(stored > 0)
            }

            async fn retention_subjects(
                &self,
                after: Option<UserId>,
                limit: u32,
            ) -> StoreResult<Vec<RetentionSubject>> {
                // The nil UUID sorts before every id the service hands out.
                let after = after.map_or(Uuid::nil(), |user| user.as_uuid());
                sqlx::query(SUBJECTS)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(|row| {
                        Ok(RetentionSubject {
                            user: UserId::from_uuid(row.uuid("id")?),
                            limits: if row.int("has_limits")? != 0 {
                                Some(rows::retention_limits(row)?)
                            } else {
                                None
                            },
                        })
                    })
                    .collect()
            }

            async fn stored_bytes(&self, owner: UserId) -> StoreResult<u64> {
                let total: i64 = sqlx::query_scalar(STORED_BYTES)
                    .bind(owner.as_uuid())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                u64::try_from(total)
                    .map_err(|_| StoreError::Corrupt(format!("stored bytes {total}")))
            }

            async fn oldest_frames(
                &self,
                owner: UserId,
                before: Option<DateTime<Utc>>,
                limit: u32,
            ) -> StoreResult<Vec<AgedFrame>> {
                oldest_frames(&self.pool, owner, before, limit).await
            }

            async fn delete_frames(
                &self,
                owner: UserId,
                ids: &[FrameId],
            ) -> StoreResult<Vec<String>> {
                delete_frames(&self.pool, owner, ids).await
            }

            async fn unreferenced_blob_keys(&self, keys: &[String]) -> StoreResult<Vec<String>> {
                unreferenced_blob_keys(&self.pool, keys).await
            }
        }
    };
}
pub(super) use retention_store;
