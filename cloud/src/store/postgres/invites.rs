//! [`InviteStore`] on PostgreSQL.
//!
//! Using a code is one `UPDATE ... WHERE used_at IS NULL`: a second
//! transaction with the same code waits for the first one's row lock, and
//! under READ COMMITTED re-checks the condition on the committed row, so it
//! finds the code used (or unused again, if the first rolled back). The cap
//! on a user's open codes is counted under a lock on the user's row.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::PgStore;
use super::rows::{db, micros};
use super::users;
use crate::store::invites::sql;
use crate::store::rows::{ColumnReader, read_error};
use crate::store::{
    InviteRecord, InviteStore, InvitedOutcome, StoreError, StoreResult, UserRecord,
};

/// Serialises the cap check of one user's concurrent requests.
const LOCK_CREATOR: &str = "SELECT id FROM users WHERE id = $1 FOR UPDATE";

const OPEN_INVITES_OF: &str = "SELECT count(*) FROM invites \
     WHERE created_by = $1 AND used_at IS NULL AND expires_at > $2";

const USE_INVITE: &str = "UPDATE invites SET used_at = $1 \
     WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1";

/// The primary key of `invites`, as PostgreSQL names it.
const CODE_HASH_KEY: &str = "invites_pkey";

fn invite_insert_error(error: sqlx::Error) -> StoreError {
    let taken = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.constraint() == Some(CODE_HASH_KEY));
    if taken {
        StoreError::Conflict("invite")
    } else {
        db(error)
    }
}

async fn create_invite(
    pool: &PgPool,
    invite: &InviteRecord,
    max_open: Option<u32>,
) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db)?;
    if let (Some(max), Some(creator)) = (max_open, invite.created_by) {
        sqlx::query(LOCK_CREATOR)
            .bind(creator.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let open: i64 = sqlx::query_scalar(OPEN_INVITES_OF)
            .bind(creator.as_uuid())
            .bind(micros(invite.created_at))
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if open >= i64::from(max) {
            tx.rollback().await.map_err(db)?;
            return Ok(false);
        }
    }
    sqlx::query(sql::INSERT_INVITE)
        .bind(&invite.code_hash)
        .bind(invite.created_by.map(|u| u.as_uuid()))
        .bind(micros(invite.created_at))
        .bind(micros(invite.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(invite_insert_error)?;
    tx.commit().await.map_err(db)?;
    Ok(true)
}

async fn create_user_with_invite(
    pool: &PgPool,
    user: &UserRecord,
    code_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<InvitedOutcome> {
    let mut tx = pool.begin().await.map_err(db)?;
    let used = sqlx::query(USE_INVITE)
        .bind(micros(now))
        .bind(code_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if used == 0 {
        tx.rollback().await.map_err(db)?;
        return Ok(InvitedOutcome::InviteInvalid);
    }
    // A taken username returns here; dropping `tx` rolls the use back.
    users::insert_user(&mut *tx, user).await?;
    sqlx::query(sql::SET_USED_BY)
        .bind(user.id.as_uuid())
        .bind(code_hash)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(InvitedOutcome::Created)
}

crate::store::invites::invite_store!(PgStore);
