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
