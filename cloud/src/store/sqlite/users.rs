//! Users, their token cut-off, account deletion, and the deny list of single
//! revoked tokens.
//!
//! `tokens_valid_after` only ever moves forward (`max` in SQL): a call with an
//! earlier instant — a clock stepped back, two requests racing — must not
//! bring voided tokens back to life.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;
use sqlx::SqlitePool;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{self, db, micros};
use crate::store::users::sql;
use crate::store::{StoreError, StoreResult, UserRecord, UserStore};

/// The images of every frame of the user's devices: `devices_by_owner`, then
/// the `(device_id, seq)` key of `frames` (which has no index on `owner_id`).
pub(super) const USER_BLOB_KEYS: &str = "\
    SELECT f.blob_key FROM devices d JOIN frames f ON f.device_id = d.id \
    WHERE d.owner_id = ?";

const UPDATE_PASSWORD: &str = "UPDATE users SET password_hash = ?, tokens_valid_after = max(tokens_valid_after, ?) \
     WHERE id = ?";

const SET_TOKENS_VALID_AFTER: &str =
    "UPDATE users SET tokens_valid_after = max(tokens_valid_after, ?) WHERE id = ?";

const REVOKE_TOKEN: &str = "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) \
     ON CONFLICT (jti) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)";

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

/// On the pool, or inside a transaction (registration with an invite).
pub(super) async fn insert_user<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
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
/// `BEGIN IMMEDIATE` holds the write lock from the key read on, so no frame
/// can be stored in between and have its image forgotten.
async fn delete_user(pool: &SqlitePool, id: UserId) -> StoreResult<Option<Vec<String>>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let keys: Vec<String> = sqlx::query_scalar(USER_BLOB_KEYS)
        .bind(id.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    let deleted = sqlx::query(sql::DELETE)
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if deleted == 0 {
        tx.rollback().await.map_err(db)?;
        return Ok(None);
    }
    tx.commit().await.map_err(db)?;
    Ok(Some(keys))
}

crate::store::users::user_store!(SqliteStore);
