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
