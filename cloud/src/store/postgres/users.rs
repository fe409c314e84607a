//! Users, their token cut-off, account deletion, and the deny list of single
//! revoked tokens.
//!
//! `tokens_valid_after` only ever moves forward (`GREATEST` in SQL): a call
//! with an earlier instant — a clock stepped back, two requests racing — must
//! not bring voided tokens back to life.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;
use sqlx::PgPool;
use uuid::Uuid;

use super::PgStore;
use super::rows::{self, db, micros};
use crate::store::users::sql;
use crate::store::{StoreError, StoreResult, UserRecord, UserStore};

/// Locks the user row against new devices (their foreign key check takes a
/// `KEY SHARE` lock on it), then every device of the user against new frames
/// (same on the device row), waiting for the frames being stored right now.
const LOCK_USER: &str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";

const LOCK_USER_DEVICES: &str = "SELECT id FROM devices WHERE owner_id = $1 FOR UPDATE";

/// The images of every frame of the user's devices: `devices_by_owner`, then
/// the `(device_id, seq) INCLUDE (blob_key)` key of `frames` (which has no
/// index on `owner_id`).
pub(super) const USER_BLOB_KEYS: &str = "\
    SELECT f.blob_key FROM devices d JOIN frames f ON f.device_id = d.id \
    WHERE d.owner_id = $1";

const UPDATE_PASSWORD: &str = "UPDATE users SET password_hash = $1, \
     tokens_valid_after = GREATEST(tokens_valid_after, $2) WHERE id = $3";

const SET_TOKENS_VALID_AFTER: &str =
    "UPDATE users SET tokens_valid_after = GREATEST(tokens_valid_after, $1) WHERE id = $2";

const REVOKE_TOKEN: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) \
     ON CONFLICT (jti) DO UPDATE \
     SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)";

/// The unique constraint on `users.username`, named in the migration.
const USERNAME_KEY: &str = "users_username_key";

/// A taken username (SQLSTATE 23505 on [`USERNAME_KEY`]) is the one unique
/// violation the domain must tell apart.
fn user_insert_error(error: sqlx::Error) -> StoreError {
    let taken = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.constraint() == Some(USERNAME_KEY));
    if taken {
        StoreError::Conflict("username")
    } else {
        db(error)
    }
}

/// On the pool, or inside a transaction (registration with an invite).
pub(super) async fn insert_user<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: &UserRecord,
) -> StoreResult<()> {
    sqlx::query(sql::INSERT)
        .bind(user.id.as_uuid())
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(micros(user.created_at))
        .bind(micros(user.tokens_valid_after))
        .execute(executor)
        .await
        .map_err(user_insert_error)?;
    Ok(())
}

/// Deleting the user row cascades through the schema: devices, then their
/// frames and `last_seen` rows, then the frames' detections and sightings.
///
/// Under READ COMMITTED a frame committed between the key read and the
/// DELETE would be cascaded away with its image forgotten, so the user and
/// their devices are locked first (see `LOCK_USER`); the key read, a new
/// statement, then sees every frame there will ever be.
async fn delete_user(pool: &PgPool, id: UserId) -> StoreResult<Option<Vec<String>>> {
    let mut tx = pool.begin().await.map_err(db)?;
    let found = sqlx::query(LOCK_USER)
        .bind(id.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
    if found.is_none() {
        tx.rollback().await.map_err(db)?;
        return Ok(None);
    }
    sqlx::query(LOCK_USER_DEVICES)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let keys: Vec<String> = sqlx::query_scalar(USER_BLOB_KEYS)
        .bind(id.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(sql::DELETE)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Some(keys))
}

crate::store::users::user_store!(PgStore);
