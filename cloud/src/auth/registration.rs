//! Who may create an account (`registration`), invite codes, and the
//! operator's way in (`lastseen-cloud add-user` / `invite`).
//!
//! An invite code is 128 random bits written as 32 lowercase hex digits.
//! Only its SHA-256 is stored: the codes have full entropy, so a fast hash
//! is enough, and a copy of the database holds no working code. A code is
//! used at most once, in the transaction that creates its account, and not
//! at or after its expiry. Unknown, expired and used codes are refused alike
//! (`AuthError::InviteInvalid`), so codes cannot be told apart by probing.

use chrono::{DateTime, Duration, Utc};
use lastseen_shared::UserId;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{AuthError, PasswordHasher, policy};
use crate::store::{InviteRecord, Store, UserRecord};

pub use super::config::RegistrationMode;

/// Random bytes in a code.
const CODE_BYTES: usize = 16;

/// Anything longer is no code of ours; refused without a lookup.
const MAX_CODE_LEN: usize = 128;

/// The registration settings of one cloud node.
#[derive(Clone, Copy, Debug)]
pub struct RegistrationPolicy {
    pub mode: RegistrationMode,
    /// Days a code made by a user stays usable.
    pub invite_ttl_days: u32,
    /// Unused, unexpired codes one user may hold; 0: users make none.
    pub max_invites_per_user: u32,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            mode: RegistrationMode::Open,
            invite_ttl_days: 7,
            max_invites_per_user: 5,
        }
    }
}

/// A code just made: shown once, never stored as it is.
#[derive(Clone, Debug)]
pub struct NewInvite {
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// A fresh code: 32 lowercase hex digits.
pub fn new_code() -> String {
    let mut bytes = [0u8; CODE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the store keeps of `code`: the SHA-256 of the code as typed, without
/// surrounding spaces and in lowercase. None for what cannot be a code.
pub fn code_hash(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_lowercase();
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return None;
    }
    Some(hex(&Sha256::digest(code.as_bytes())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes and stores a code valid for `days`. With `cap`, a user's code is
/// stored only while they hold fewer than that many open codes (None then).
pub(super) async fn store_invite(
    store: &dyn Store,
    created_by: Option<UserId>,
    days: u32,
    cap: Option<u32>,
) -> Result<Option<NewInvite>, AuthError> {
    let now = Utc::now();
    let expires_at = now + Duration::days(i64::from(days));
    let code = new_code();
    let record = InviteRecord {
        code_hash: code_hash(&code).ok_or(AuthError::InviteInvalid)?,
        created_by,
        created_at: now,
        expires_at,
        used_at: None,
        used_by: None,
    };
    let stored = store.create_invite(&record, cap).await?;
    Ok(stored.then_some(NewInvite { code, expires_at }))
}

/// A new user's record, created now.
pub(super) fn new_user(username: &str, password_hash: String) -> UserRecord {
    let now = Utc::now();
    UserRecord {
        id: UserId::new(),
        username: username.to_owned(),
        password_hash,
        created_at: now,
        tokens_valid_after: now,
    }
}

/// `lastseen-cloud add-user`: creates an account whatever the registration
/// mode, with the same username and password rules as registration.
pub async fn add_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    username: &str,
    password: &str,
) -> Result<UserId, AuthError> {
    policy::check_username(username)?;
    policy::check_password(password)?;
    let hasher = hasher.clone();
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || hasher.hash(&password))
        .await
        .map_err(|e| AuthError::Task(e.to_string()))??;
    let user = new_user(username, password_hash);
    store.create_user(&user).await?;
    tracing::info!(user = %user.id, "user added by the operator");
    Ok(user.id)
}

/// `lastseen-cloud invite`: a code valid for `days`, made by nobody in
/// particular, so no user's cap applies.
pub async fn operator_invite(store: &dyn Store, days: u32) -> Result<NewInvite, AuthError> {
    store_invite(store, None, days, None)
        .await?
        .ok_or_else(|| AuthError::Task("an uncapped invite was not stored".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_32_hex_digits_and_differ() {
        let (a, b) = (new_code(), new_code());
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_code_is_hashed_as_typed_give_or_take_spaces_and_case() {
        let code = new_code();
        let hash = code_hash(&code).unwrap();
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, code);
        assert_eq!(
            code_hash(&format!("  {}\n", code.to_uppercase())),
            Some(hash)
        );
        assert_eq!(code_hash("   "), None);
        assert_eq!(code_hash(&"a".repeat(MAX_CODE_LEN + 1)), None);
    }
}
