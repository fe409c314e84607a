//! Invite codes for invite-only registration, beside the users table.
//!
//! The store sees only the hash of a code (the domain makes and hashes codes,
//! see `crate::auth::registration`). Using a code and creating the account it
//! admits happen in one transaction, so two registrations racing with one
//! code create exactly one account, and a refused account (taken username)
//! leaves the code unused.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::UserId;

use super::{StoreResult, UserRecord};

/// One invite code, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InviteRecord {
    /// SHA-256 of the code, 64 lowercase hex digits.
    pub code_hash: String,
    /// The user who made it; None for the operator's codes.
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    /// The code admits nobody at or after this instant.
    pub expires_at: DateTime<Utc>,
    /// When it admitted an account; a code is used at most once.
    pub used_at: Option<DateTime<Utc>>,
    /// The account it admitted, while that account exists.
    pub used_by: Option<UserId>,
}

/// What became of a registration with an invite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitedOutcome {
    /// The account exists and the code is used up.
    Created,
    /// Unknown, expired or already used: nothing was written.
    InviteInvalid,
}

/// Invite storage; every [`super::Store`] implements it.
#[async_trait]
pub trait InviteStore: Send + Sync {
    /// Stores a new, unused invite. With `max_open`, and a `created_by`, the
    /// invite is stored only while its maker has fewer than `max_open` codes
    /// that are unused and expire after `invite.created_at` (counted and
    /// inserted atomically, so concurrent requests cannot pass the cap);
    /// false when it was not stored. Fails with [`super::StoreError::Conflict`]
    /// when the hash exists already.
    async fn create_invite(
        &self,
        invite: &InviteRecord,
        max_open: Option<u32>,
    ) -> StoreResult<bool>;
    async fn invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>>;
    /// True when the code exists, is unused and expires after `now`. A hint
    /// for skipping work: only [`InviteStore::create_user_with_invite`] decides.
    async fn invite_is_usable(&self, code_hash: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// In one transaction: marks the invite used by `user` at `now` if it is
    /// unused and expires after `now`, and creates `user`. When the code does
    /// not qualify nothing is written ([`InvitedOutcome::InviteInvalid`]);
    /// when the username is taken it fails with
    /// [`super::StoreError::Conflict`] and the code stays unused.
    async fn create_user_with_invite(
        &self,
        user: &UserRecord,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<InvitedOutcome>;
}

/// The statements both backends run as written: SQLite's driver numbers `$N`
/// parameters as PostgreSQL does (see `device_state::sql`).
pub(super) mod sql {
    pub(in crate::store) const INVITE_BY_HASH: &str = "SELECT code_hash, created_by, created_at, \
         expires_at, used_at, used_by FROM invites WHERE code_hash = $1";

    pub(in crate::store) const INVITE_USABLE: &str = "SELECT EXISTS (SELECT 1 FROM invites \
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2)";

    pub(in crate::store) const INSERT_INVITE: &str = "INSERT INTO invites \
         (code_hash, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4)";

    pub(in crate::store) const SET_USED_BY: &str =
        "UPDATE invites SET used_by = $1 WHERE code_hash = $2";
}

/// The [`InviteStore`] of a backend: the reads run the same way on both, over
/// [`sql`]. The writes differ in how each backend keeps other writers out
/// (row locks on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so those are the
/// module's `create_invite` and `create_user_with_invite`. The invoking module
/// imports what the body names.
macro_rules! invite_store {
    ($store:ty) => {
        #[async_trait]
        impl InviteStore for $store {
            async fn create_invite(
                &self,
                invite: &InviteRecord,
                max_open: Option<u32>,
            ) -> StoreResult<bool> {
                create_invite(&self.pool, invite, max_open).await
            }

            async fn invite(&self, code_hash: &str) -> StoreResult<Option<InviteRecord>> {
                let Some(row) = sqlx::query(sql::INVITE_BY_HASH)
                    .bind(code_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                else {
                    return Ok(None);
                };
                let optional_user = |column: &str| -> StoreResult<Option<UserId>> {
                    let id: Option<Uuid> =
                        row.try_get(column).map_err(|e| read_error(column, e))?;
                    Ok(id.map(UserId::from_uuid))
                };
                Ok(Some(InviteRecord {
                    code_hash: row.text("code_hash")?,
                    created_by: optional_user("created_by")?,
                    created_at: row.time("created_at")?,
                    expires_at: row.time("expires_at")?,
                    used_at: row.optional_time("used_at")?,
                    used_by: optional_user("used_by")?,
                }))
            }

            async fn invite_is_usable(
                &self,
                code_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<bool> {
                sqlx::query_scalar(sql::INVITE_USABLE)
                    .bind(code_hash)
                    .bind(micros(now))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)
            }

            async fn create_user_with_invite(
                &self,
                user: &UserRecord,
                code_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<InvitedOutcome> {
                create_user_with_invite(&self.pool, user, code_hash, now).await
            }
        }
    };
}
pub(super) use invite_store;
