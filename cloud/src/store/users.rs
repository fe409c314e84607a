//! Users, their token cut-off, account deletion, and the deny list of single
//! revoked tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;
use uuid::Uuid;

use super::{StoreResult, UserRecord};

/// User storage.
///
/// Here and in every call below, a `tokens_valid_after` only moves forward:
/// an instant before the stored one leaves it, so no voided token comes back.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`super::StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>>;
    /// Replaces the password hash and voids every user token issued before
    /// `tokens_valid_after`, in one statement. False when the user does not exist.
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
}

/// The statements both backends run as written: SQLite's driver numbers `$N`
/// parameters as PostgreSQL does (see `device_state::sql`).
pub(super) mod sql {
    use crate::store::rows::user_columns;

    pub(in crate::store) const INSERT: &str = "INSERT INTO users \
         (id, username, password_hash, created_at, tokens_valid_after) \
         VALUES ($1, $2, $3, $4, $5)";

    pub(in crate::store) const BY_USERNAME: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE username = $1"
    );

    pub(in crate::store) const BY_ID: &str =
        concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");

    pub(in crate::store) const DELETE: &str = "DELETE FROM users WHERE id = $1";

    pub(in crate::store) const TOKEN_REVOKED: &str =
        "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)";

    pub(in crate::store) const PURGE_REVOCATIONS: &str =
        "DELETE FROM revoked_tokens WHERE expires_at < $1";
}

/// The [`UserStore`] of a backend: the calls run the same way on both, over
/// [`sql`] and the module's own `UPDATE_PASSWORD`, `SET_TOKENS_VALID_AFTER`
/// and `REVOKE_TOKEN` (which need the dialect's `max`) and `insert_user`.
/// Deleting a user differs in how each backend keeps new frames out
/// meanwhile, so that is the module's `delete_user`. The invoking module
/// imports what the body names.
macro_rules! user_store {
    ($store:ty) => {
        #[async_trait]
        impl UserStore for $store {
            async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
                insert_user(&self.pool, user).await
            }

            async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
                sqlx::query(sql::BY_USERNAME)
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| rows::user(&row))
                    .transpose()
            }

            async fn user_by_id(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
                sqlx::query(sql::BY_ID)
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .map(|row| rows::user(&row))
                    .transpose()
            }

            async fn update_password(
                &self,
                id: UserId,
                password_hash: &str,
                tokens_valid_after: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let updated = sqlx::query(UPDATE_PASSWORD)
                    .bind(password_hash)
                    .bind(micros(tokens_valid_after))
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(updated > 0)
            }

            async fn set_user_tokens_valid_after(
                &self,
                id: UserId,
                at: DateTime<Utc>,
            ) -> StoreResult<bool> {
                let updated = sqlx::query(SET_TOKENS_VALID_AFTER)
                    .bind(micros(at))
                    .bind(id.as_uuid())
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(updated > 0)
            }

            async fn delete_user(&self, id: UserId) -> StoreResult<Option<Vec<String>>> {
                delete_user(&self.pool, id).await
            }

            /// Revoking a token twice keeps the later expiry, so it is never forgotten early.
            async fn revoke_token(&self, jti: Uuid, expires_at: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query(REVOKE_TOKEN)
                    .bind(jti)
                    .bind(micros(expires_at))
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(())
            }

            /// True until purged, whatever `expires_at` says: expiry is the token check's job.
            async fn is_token_revoked(&self, jti: Uuid) -> StoreResult<bool> {
                sqlx::query_scalar(sql::TOKEN_REVOKED)
                    .bind(jti)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)
            }

            /// A token expiring exactly at `now` may still be accepted, so it stays.
            async fn purge_expired_revocations(&self, now: DateTime<Utc>) -> StoreResult<u64> {
                let purged = sqlx::query(sql::PURGE_REVOCATIONS)
                    .bind(micros(now))
                    .execute(&self.pool)
                    .await
                    .map_err(db)?
                    .rows_affected();
                Ok(purged)
            }
        }
    };
}
pub(super) use user_store;
