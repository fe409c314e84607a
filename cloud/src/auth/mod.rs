//! Accounts and credentials: registration, login, and turning a presented
//! bearer token into the user or device it speaks for.

mod password;
pub mod token;

use std::sync::Arc;

use chrono::Utc;
use lastseen_shared::UserId;
use lastseen_shared::token::TokenKind;

pub use password::{HashError, PasswordHasher};
pub use token::{KeyError, SignError, TokenError, TokenKeys};

use crate::store::{DeviceRecord, Store, StoreError, UserRecord};

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Hashing cost grows with length; nobody types more than this.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "a username is 3 to 32 characters: lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidUsername,
    #[error("a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes long")]
    WeakPassword,
    #[error("that username is taken")]
    UsernameTaken,
    #[error("wrong username or password")]
    InvalidCredentials,
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
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(_) => AuthError::UsernameTaken,
            other => AuthError::Store(other),
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

pub struct Accounts {
    store: Arc<dyn Store>,
    keys: Arc<TokenKeys>,
    hasher: PasswordHasher,
    access_ttl_secs: u64,
}

impl Accounts {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<TokenKeys>,
        hasher: PasswordHasher,
        access_ttl_secs: u64,
    ) -> Self {
        Self {
            store,
            keys,
            hasher,
            access_ttl_secs,
        }
    }

    pub async fn register(&self, username: &str, password: &str) -> Result<UserId, AuthError> {
        validate_username(username)?;
        validate_password(password)?;
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        let password_hash = tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|e| AuthError::Task(e.to_string()))??;
        let user = UserRecord {
            id: UserId::new(),
            username: username.to_owned(),
            password_hash,
            created_at: Utc::now(),
        };
        self.store.create_user(&user).await?;
        tracing::info!(user = %user.id, "user registered");
        Ok(user.id)
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<AccessToken, AuthError> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(AuthError::InvalidCredentials);
        }
        let user = self.store.user_by_username(username).await?;
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
        let verified = tokio::task::spawn_blocking(move || match stored_hash {
            Some(hash) => hasher.verify(&password, &hash),
            None => hasher.verify_decoy(&password),
        })
        .await
        .map_err(|e| AuthError::Task(e.to_string()))?;
        let Some(user) = user.filter(|_| verified) else {
            return Err(AuthError::InvalidCredentials);
        };
        let (token, _) =
            self.keys
                .issue(TokenKind::User, user.id.as_uuid(), self.access_ttl_secs)?;
        Ok(AccessToken {
            token,
            expires_in_secs: self.access_ttl_secs,
        })
    }

    /// The user a bearer token speaks for; the user must still exist.
    pub async fn authenticate_user(&self, bearer: &str) -> Result<UserId, AuthError> {
        let claims = self.keys.verify(bearer, TokenKind::User)?;
        let id = UserId::from_uuid(claims.sub);
        match self.store.user_by_id(id).await? {
            Some(_) => Ok(id),
            None => Err(AuthError::InvalidToken),
        }
    }

    /// The device a device token speaks for; the device must still exist.
    pub async fn authenticate_device(&self, bearer: &str) -> Result<DeviceRecord, AuthError> {
        let claims = self.keys.verify(bearer, TokenKind::Device)?;
        let id = lastseen_shared::DeviceId::from_uuid(claims.sub);
        self.store.device(id).await?.ok_or(AuthError::InvalidToken)
    }
}

fn validate_username(username: &str) -> Result<(), AuthError> {
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
    let starts_well = username
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if USERNAME_CHARS.contains(&username.len()) && starts_well && username.chars().all(allowed) {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername)
    }
}

fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() >= MIN_PASSWORD_CHARS && password.len() <= MAX_PASSWORD_BYTES {
        Ok(())
    } else {
        Err(AuthError::WeakPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rules() {
        for good in ["alice", "bob.smith", "c3po", "x_y-z"] {
            assert!(validate_username(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "ab",
            "Alice",
            "-alice",
            "alice smith",
            "al'ice",
            "ålice",
            &"a".repeat(33),
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_ten_characters() {
        assert!(validate_password("123456789").is_err());
        assert!(validate_password("1234567890").is_ok());
        assert!(validate_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
