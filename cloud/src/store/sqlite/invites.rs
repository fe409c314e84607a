//! [`InviteStore`] on SQLite: every write in one `BEGIN IMMEDIATE`
//! transaction, so the cap count and the use of a code see no other writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;
use sqlx::{Row, SqlitePool};
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{db, micros};
use super::users;
use crate::store::invites::sql;
use crate::store::rows::{ColumnReader, read_error};
use crate::store::{
    InviteRecord, InviteStore, InvitedOutcome, StoreError, StoreResult, UserRecord,
};

const OPEN_INVITES_OF: &str = "SELECT count(*) FROM invites \
     WHERE created_by = ? AND used_at IS NULL AND expires_at > ?";

const USE_INVITE: &str = "UPDATE invites SET used_at = ? \
     WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?";

fn invite_insert_error(error: sqlx::Error) -> StoreError {
    let taken = error
        .as_database_error()
        .is_some_and(|e| e.is_unique_violation() && e.message().contains("invites.code_hash"));
    if taken {
        StoreError::Conflict("invite")
    } else {
        db(error)
    }
}

async fn create_invite(
    pool: &SqlitePool,
    invite: &InviteRecord,
    max_open: Option<u32>,
) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    if let (Some(max), Some(creator)) = (max_open, invite.created_by) {
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

/// The write lock is held from the code's check to the commit, so a
/// second registration with the code waits and then finds it used.
async fn create_user_with_invite(
    pool: &SqlitePool,
    user: &UserRecord,
    code_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<InvitedOutcome> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let used = sqlx::query(USE_INVITE)
        .bind(micros(now))
        .bind(code_hash)
        .bind(micros(now))
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

crate::store::invites::invite_store!(SqliteStore);
