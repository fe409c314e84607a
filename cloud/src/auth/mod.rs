//! Accounts and credentials: registration, login with throttling, and turning
//! a presented bearer token into the user or device it speaks for.
//!
//! Revocation without storing every token: each user and device has a
//! `tokens_valid_after` instant (log out everywhere, password change, device
//! token rotation), and single logouts put the token's `jti` on a small deny
//! list until the token would have expired anyway. A token's issue time is the
//! millisecond timestamp inside its UUIDv7 `jti`, finer than the `iat` second.

pub mod config;
pub mod credentials;
pub mod device_key;
mod key_file;
mod limiter;
mod password;
pub mod policy;
pub mod registration;
pub mod token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lastseen_shared::token::{Claims, TokenKind};
use lastseen_shared::{DeviceId, DeviceKey, UserId};
use uuid::Uuid;

pub use config::{AuthConfig, MAX_INVITE_DAYS};
use credentials::{CredentialChange, CredentialEvents};
pub use device_key::DeviceKeys;
pub use key_file::KeyError;
pub use limiter::{LoginThrottle, RateBudget, ThrottleLimits};
pub use password::{HashError, PasswordHasher};
pub use policy::PolicyError;
pub use registration::{NewInvite, RegistrationMode, RegistrationPolicy};
pub use token::{SignError, TokenError, TokenKeys};

use crate::blob::{BlobKey, BlobStore};
use crate::bounded::{BoundedWork, Busy, WorkLoad};
use crate::store::{DeviceRecord, InvitedOutcome, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("that username is taken")]
    UsernameTaken,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("wrong password")]
    WrongPassword,
    #[error("too many attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("too many password checks at once; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    #[error("missing, invalid or expired token")]
    InvalidToken,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("a blocking task failed: {0}")]
    Task(String),
    #[error("registration is closed; the operator creates accounts")]
    RegistrationClosed,
    /// Unknown, expired, used or missing: one answer, so codes cannot be probed.
    #[error(
        "registration needs a valid invite code; this one is missing, unknown, expired or used"
    )]
    InviteInvalid,
    #[error("invite codes are not in use here")]
    InvitesDisabled,
    #[error("at most {0} unused invite codes at a time; wait for one to be used or to expire")]
    TooManyInvites(u32),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict("username") => AuthError::UsernameTaken,
            other => AuthError::Store(other),
        }
    }
}

impl From<Busy> for AuthError {
    fn from(busy: Busy) -> Self {
        AuthError::Busy {
            retry_after_secs: busy.retry_after_secs,
        }
    }
}

impl From<TokenError> for AuthError {
    fn from(_: TokenError) -> Self {
        AuthError::InvalidToken
    }
}

/// A user token as handed to a client.
#[derive(Clone, Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_in_secs: u64,
}

/// The verified user behind one request, and which token it came with.
#[derive(Clone, Copy, Debug)]
pub struct Session {
    pub user: UserId,
    pub jti: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// How much password work the accounts service takes on.
pub struct LoginLimits {
    pub throttle: ThrottleLimits,
    /// Registrations per client address per `register_window`.
    pub register_max_per_client: u32,
    pub register_window: Duration,
    /// Argon2 hashes computed at once (each takes `argon2_memory_kib`).
    pub max_concurrent_hashes: usize,
    /// How long a request waits for a hashing slot before 503.
    pub hash_wait: Duration,
}

pub struct Accounts {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    keys: Arc<TokenKeys>,
    hasher: PasswordHasher,
    access_ttl_secs: u64,
    throttle: LoginThrottle,
    registrations: RateBudget,
    hashing: BoundedWork,
    credentials: CredentialEvents,
    registration: RegistrationPolicy,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        keys: Arc<TokenKeys>,
        hasher: PasswordHasher,
        access_ttl_secs: u64,
        limits: LoginLimits,
        credentials: CredentialEvents,
    ) -> Self {
        Self {
            store,
            blobs,
            keys,
            hasher,
            access_ttl_secs,
            throttle: LoginThrottle::new(limits.throttle),
            registrations: RateBudget::new(limits.register_max_per_client, limits.register_window),
            hashing: BoundedWork::new(limits.max_concurrent_hashes, limits.hash_wait),
            credentials,
            registration: RegistrationPolicy::default(),
        }
    }

    /// Who may register, and the invite settings (open by default).
    pub fn with_registration(mut self, registration: RegistrationPolicy) -> Self {
        self.registration = registration;
        self
    }

    pub fn registration_mode(&self) -> RegistrationMode {
        self.registration.mode
    }

    /// `client` is the caller's address: registrations are limited per
    /// client, those with a wrong invite code included. `invite` is needed
    /// in invite mode and ignored in open mode; closed mode refuses all.
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        invite: Option<&str>,
        client: &str,
    ) -> Result<UserId, AuthError> {
        let mode = self.registration.mode;
        if mode == RegistrationMode::Closed {
            return Err(AuthError::RegistrationClosed);
        }
        policy::check_username(username)?;
        policy::check_password(password)?;
        self.registrations
            .take(client, Instant::now())
            .map_err(|wait| AuthError::Throttled {
                retry_after_secs: wait.as_secs().max(1),
            })?;
        let invite = match mode {
            RegistrationMode::Invite => {
                let hash = invite
                    .and_then(registration::code_hash)
                    .ok_or(AuthError::InviteInvalid)?;
                // Before the costly hash; the transaction below decides.
                if !self.store.invite_is_usable(&hash, Utc::now()).await? {
                    return Err(AuthError::InviteInvalid);
                }
                Some(hash)
            }
            _ => None,
        };
        let password_hash = self.hash(password).await?;
        let user = registration::new_user(username, password_hash);
        match invite {
            Some(hash) => {
                let outcome = self
                    .store
                    .create_user_with_invite(&user, &hash, Utc::now())
                    .await?;
                if outcome == InvitedOutcome::InviteInvalid {
                    return Err(AuthError::InviteInvalid);
                }
            }
            None => self.store.create_user(&user).await?,
        }
        tracing::info!(user = %user.id, invited = (mode == RegistrationMode::Invite), "user registered");
        Ok(user.id)
    }

    /// A code for someone else to register with, valid for
    /// `invite_ttl_days`; only in invite mode, and within the user's cap.
    pub async fn invite_for(&self, user: UserId) -> Result<NewInvite, AuthError> {
        let max = self.registration.max_invites_per_user;
        if self.registration.mode != RegistrationMode::Invite || max == 0 {
            return Err(AuthError::InvitesDisabled);
        }
        let invite = registration::store_invite(
            self.store.as_ref(),
            Some(user),
            self.registration.invite_ttl_days,
            Some(max),
        )
        .await?
        .ok_or(AuthError::TooManyInvites(max))?;
        tracing::info!(user = %user, "invite code made");
        Ok(invite)
    }

    /// `client` is the caller's address (or another per-client key); attempts
    /// are throttled per (client, username), per client and per username
    /// before any password is checked (see [`LoginThrottle`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: &str,
    ) -> Result<AccessToken, AuthError> {
        let attempt = self
            .throttle
            .begin(client, username, Instant::now())
            .map_err(|wait| AuthError::Throttled {
                retry_after_secs: wait.as_secs().max(1),
            })?;
        let user = self.store.user_by_username(username).await?;
        let verified = self
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let Some(user) = user.filter(|_| verified) else {
            return Err(AuthError::InvalidCredentials);
        };
        self.throttle.succeeded(attempt);
        self.issue(user.id, user.tokens_valid_after)
    }

    pub fn hashing_load(&self) -> WorkLoad {
        self.hashing.load()
    }

    /// The user a bearer token speaks for: the signature and expiry hold, the
    /// user still exists, and the token was neither logged out nor issued
    /// before the user's `tokens_valid_after`.
    pub async fn authenticate_user(&self, bearer: &str) -> Result<Session, AuthError> {
        let claims = self.keys.verify(bearer, TokenKind::User)?;
        let user = self
            .store
            .user_by_id(UserId::from_uuid(claims.sub))
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if !issued_after(&claims, user.tokens_valid_after)
            || self.store.is_token_revoked(claims.jti).await?
        {
            return Err(AuthError::InvalidToken);
        }
        let expires_at = DateTime::from_timestamp(claims.exp, 0).ok_or(AuthError::InvalidToken)?;
        Ok(Session {
            user: user.id,
            jti: claims.jti,
            expires_at,
        })
    }

    /// The device a device token speaks for: it exists, is not revoked, and
    /// the token was issued after its last rotation.
    pub async fn authenticate_device(&self, bearer: &str) -> Result<DeviceRecord, AuthError> {
        let claims = self.keys.verify(bearer, TokenKind::Device)?;
        let device = self
            .store
            .device(DeviceId::from_uuid(claims.sub))
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if device.revoked_at.is_some() || !issued_after(&claims, device.tokens_valid_after) {
            return Err(AuthError::InvalidToken);
        }
        Ok(device)
    }

    /// The MAC key of a device that may send: it exists and is not revoked
    /// (`None` otherwise). Derived from its record, so a rotation changes it.
    pub async fn device_key(
        &self,
        device: DeviceId,
    ) -> Result<Option<(DeviceRecord, DeviceKey)>, AuthError> {
        Ok(self
            .store
            .device(device)
            .await?
            .filter(|record| record.revoked_at.is_none())
            .map(|record| {
                let key = self.keys.devices().for_record(&record);
                (record, key)
            }))
    }

    /// This token stops working at once; the user's other sessions go on.
    pub async fn logout(&self, session: &Session) -> Result<(), AuthError> {
        self.store
            .revoke_token(session.jti, session.expires_at)
            .await?;
        Ok(())
    }

    /// Every user token issued until now stops working.
    pub async fn logout_everywhere(&self, user: UserId) -> Result<(), AuthError> {
        self.store
            .set_user_tokens_valid_after(user, revocation_cut())
            .await?;
        Ok(())
    }

    /// Requires the current password; ends every other session and returns a
    /// fresh token for the caller.
    pub async fn change_password(
        &self,
        user: UserId,
        old: &str,
        new: &str,
    ) -> Result<AccessToken, AuthError> {
        self.require_password(user, old).await?;
        policy::check_password(new)?;
        let hash = self.hash(new).await?;
        let cut = revocation_cut();
        self.store.update_password(user, &hash, cut).await?;
        tracing::info!(user = %user, "password changed");
        self.issue(user, cut)
    }

    /// Requires the password. Removes the user's rows in one transaction,
    /// then the images those rows pointed at.
    pub async fn delete_account(&self, user: UserId, password: &str) -> Result<(), AuthError> {
        self.require_password(user, password).await?;
        let devices = self.store.devices_of(user).await?;
        let blob_keys = self
            .store
            .delete_user(user)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        for device in devices {
            self.credentials
                .announce(CredentialChange::Deleted { device: device.id });
        }
        delete_blobs(self.blobs.as_ref(), blob_keys).await;
        tracing::info!(user = %user, "account deleted");
        Ok(())
    }

    /// Forgets logged-out tokens that have expired anyway, allowing for the
    /// leeway token checks give expiry, so a purged token cannot come back.
    pub async fn purge_revocations(&self) -> Result<u64, AuthError> {
        let margin = chrono::Duration::seconds(token::EXPIRY_LEEWAY_SECS as i64 + 1);
        Ok(self
            .store
            .purge_expired_revocations(Utc::now() - margin)
            .await?)
    }

    fn issue(&self, user: UserId, valid_after: DateTime<Utc>) -> Result<AccessToken, AuthError> {
        let (token, _) = self.keys.issue(
            TokenKind::User,
            user.as_uuid(),
            self.access_ttl_secs,
            valid_after,
        )?;
        Ok(AccessToken {
            token,
            expires_in_secs: self.access_ttl_secs,
        })
    }

    async fn require_password(&self, user: UserId, password: &str) -> Result<(), AuthError> {
        let record = self
            .store
            .user_by_id(user)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if self.verify(password, Some(record.password_hash)).await? {
            Ok(())
        } else {
            Err(AuthError::WrongPassword)
        }
    }

    async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let slot = self.hashing.acquire().await.map_err(AuthError::from)?;
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        Ok(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            hasher.hash(&password)
        })
        .await
        .map_err(|e| AuthError::Task(e.to_string()))??)
    }

    /// Hashing runs even without a stored hash, so an unknown username costs
    /// as much time as a wrong password.
    async fn verify(&self, password: &str, stored_hash: Option<String>) -> Result<bool, AuthError> {
        if password.len() > policy::MAX_PASSWORD_BYTES {
            return Ok(false);
        }
        let slot = self.hashing.acquire().await.map_err(AuthError::from)?;
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            match stored_hash {
                Some(hash) => hasher.verify(&password, &hash),
                None => hasher.verify_decoy(&password),
            }
        })
        .await
        .map_err(|e| AuthError::Task(e.to_string()))
    }
}

/// The cut-off a revocation sets: the next millisecond, so every token issued
/// until now (UUIDv7 `jti`s carry milliseconds) falls before it, and tokens
/// issued from now on are minted at or after it (see [`TokenKeys::issue`]).
pub fn revocation_cut() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::milliseconds(1)
}

/// Whether the token was issued at or after `valid_after`, to the millisecond.
fn issued_after(claims: &Claims, valid_after: DateTime<Utc>) -> bool {
    token::issued_at(claims)
        .is_some_and(|issued| issued.timestamp_millis() >= valid_after.timestamp_millis())
}

/// Images are deleted after the rows that pointed at them, so no row ever
/// points at a missing image; a failure here leaves an orphan for the sweep.
pub async fn delete_blobs(blobs: &dyn BlobStore, mut keys: Vec<String>) {
    // Frames of an unchanged scene share one image; they belong to one
    // device, so they are all deleted together and the image goes once.
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        if let Err(error) = blobs.delete(&BlobKey::from_stored(key)).await {
            tracing::warn!(%error, "an image outlived its rows");
        }
    }
}
