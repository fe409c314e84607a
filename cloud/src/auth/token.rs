//! Signing and checking the JWTs that users and devices present (HS256).

use std::path::Path;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lastseen_shared::DeviceId;
use lastseen_shared::token::{Claims, TokenKind};
use uuid::Uuid;

use super::AuthConfig;
use super::device_key::DeviceKeys;
use super::key_file::{KeyError, read_key_file, read_or_generate_key};

const GENERATED_KEY_FILE: &str = "jwt.key";

/// Why a presented token was refused. Callers answer all of them with 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is malformed, forged or expired")]
    Invalid,
    #[error("a {actual:?} token was used where a {expected:?} token is needed")]
    WrongKind {
        expected: TokenKind,
        actual: TokenKind,
    },
}

/// Clock skew tolerated on `exp` between cloud nodes.
pub const EXPIRY_LEEWAY_SECS: u64 = 5;

#[derive(Debug, thiserror::Error)]
#[error("cannot sign a token: {0}")]
pub struct SignError(String);

/// The token signing key, and the device MAC keys' master that device
/// tokens carry their key from (claim `mk`).
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    devices: DeviceKeys,
}

impl TokenKeys {
    /// Signs with `secret`; device keys come from a master derived from it.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self::with_device_keys(secret, DeviceKeys::derived_from_jwt_key(secret))
    }

    pub fn with_device_keys(secret: &[u8], devices: DeviceKeys) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = EXPIRY_LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            devices,
        }
    }

    /// The signing key from `jwt_secret`, else from `jwt_secret_file`, else
    /// one generated on first start and kept in `generated_key_dir`
    /// (owner-only); the device keys' master as [`DeviceKeys::load`] finds it.
    /// `generated_key_dir` is `None` when several nodes share the storage: a
    /// key generated on one of them would not verify tokens issued by another.
    pub fn load(config: &AuthConfig, generated_key_dir: Option<&Path>) -> Result<Self, KeyError> {
        let secret = if let Some(secret) = &config.jwt_secret {
            secret.expose().as_bytes().to_vec()
        } else if let Some(path) = &config.jwt_secret_file {
            read_key_file(path)?
        } else {
            let dir = generated_key_dir.ok_or(KeyError::Missing)?;
            read_or_generate_key(&dir.join(GENERATED_KEY_FILE))?
        };
        let devices = DeviceKeys::load(config, &secret)?;
        Ok(Self::with_device_keys(&secret, devices))
    }

    /// The device keys' master: the cloud derives a device's key from it
    /// to check its frames and sign what it sends the device.
    pub fn devices(&self) -> &DeviceKeys {
        &self.devices
    }

    /// A signed token and the claims inside it. Its `jti` timestamp (the
    /// issue time revocation compares) is never earlier than `valid_after`,
    /// the subject's current cut-off, so a token issued right after a
    /// revocation is valid even within the same millisecond. A device token
    /// carries the device's MAC key (`mk`), which `valid_after` (the device's
    /// `tokens_valid_after`) selects.
    pub fn issue(
        &self,
        kind: TokenKind,
        subject: Uuid,
        ttl_secs: u64,
        valid_after: chrono::DateTime<Utc>,
    ) -> Result<(String, Claims), SignError> {
        let now = Utc::now();
        let minted = now.max(valid_after);
        let seconds = u64::try_from(minted.timestamp())
            .map_err(|_| SignError("time before 1970".to_owned()))?;
        // Whole milliseconds only: given the sub-millisecond rest, `uuid`
        // rounds it into the timestamp, which could date a token up to 1 ms
        // later than it was minted and let it outlive a revocation.
        let whole_millis = minted.timestamp_subsec_millis() * 1_000_000;
        let jti = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            seconds,
            whole_millis,
        ));
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
        let iat = now.timestamp();
        let mk = (kind == TokenKind::Device).then(|| {
            self.devices
                .for_device(DeviceId::from_uuid(subject), valid_after)
                .to_claim()
        });
        let claims = Claims {
            sub: subject,
            kind,
            iat,
            exp: iat.saturating_add(ttl),
            jti,
            mk,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| SignError(e.to_string()))?;
        Ok((token, claims))
    }

    pub fn verify(&self, token: &str, expected: TokenKind) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.kind != expected {
            return Err(TokenError::WrongKind {
                expected,
                actual: data.claims.kind,
            });
        }
        Ok(data.claims)
    }
}

/// When the token was minted, to the millisecond: the timestamp of its UUIDv7 `jti`.
pub fn issued_at(claims: &Claims) -> Option<chrono::DateTime<Utc>> {
    let (secs, nanos) = claims.jti.get_timestamp()?.to_unix();
    chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_secret(&[7u8; 32])
    }

    #[test]
    fn a_token_verifies_with_the_key_that_signed_it() {
        let subject = Uuid::now_v7();
        let (token, claims) = keys()
            .issue(TokenKind::User, subject, 60, Utc::now())
            .unwrap();
        assert_eq!(keys().verify(&token, TokenKind::User), Ok(claims));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let (token, _) = TokenKeys::from_secret(&[8u8; 32])
            .issue(TokenKind::User, Uuid::now_v7(), 60, Utc::now())
            .unwrap();
        assert_eq!(
            keys().verify(&token, TokenKind::User),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_device_token_carries_its_device_key_and_a_user_token_none() {
        let keys = keys();
        let device = Uuid::now_v7();
        let valid_after = Utc::now() - chrono::Duration::minutes(5);
        let (token, claims) = keys
            .issue(TokenKind::Device, device, 60, valid_after)
            .unwrap();
        let expected = keys
            .devices()
            .for_device(DeviceId::from_uuid(device), valid_after);
        assert_eq!(claims.mk, Some(expected.to_claim()));
        let read = lastseen_shared::DeviceKey::from_token(&token).unwrap();
        assert_eq!(read.as_bytes(), expected.as_bytes());
        let (user_token, claims) = keys
            .issue(TokenKind::User, Uuid::now_v7(), 60, Utc::now())
            .unwrap();
        assert_eq!(claims.mk, None);
        assert!(lastseen_shared::DeviceKey::from_token(&user_token).is_none());
    }

    #[test]
    fn a_device_token_is_not_a_user_token() {
        let (token, _) = keys()
            .issue(TokenKind::Device, Uuid::now_v7(), 60, Utc::now())
            .unwrap();
        assert!(matches!(
            keys().verify(&token, TokenKind::User),
            Err(TokenError::WrongKind { .. })
        ));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = keys();
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: Uuid::now_v7(),
            kind: TokenKind::User,
            iat: now - 100,
            exp: now - 60,
            jti: Uuid::now_v7(),
            mk: None,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(
            keys.verify(&token, TokenKind::User),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn an_unsigned_alg_none_token_is_refused() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = Utc::now().timestamp();
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(format!(
            r#"{{"sub":"{}","kind":"user","iat":{now},"exp":{},"jti":"{}"}}"#,
            Uuid::now_v7(),
            now + 600,
            Uuid::now_v7()
        ));
        assert_eq!(
            keys().verify(&format!("{header}.{body}."), TokenKind::User),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthConfig::default();
        let (token, _) = TokenKeys::load(&config, Some(dir.path()))
            .unwrap()
            .issue(TokenKind::User, Uuid::now_v7(), 60, Utc::now())
            .unwrap();
        assert!(
            TokenKeys::load(&config, Some(dir.path()))
                .unwrap()
                .verify(&token, TokenKind::User)
                .is_ok()
        );
    }

    #[test]
    fn production_storage_without_a_key_refuses_to_start() {
        assert!(matches!(
            TokenKeys::load(&AuthConfig::default(), None),
            Err(KeyError::Missing)
        ));
    }

    #[test]
    fn a_short_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "short").unwrap();
        let config = AuthConfig {
            jwt_secret_file: Some(path),
            ..AuthConfig::default()
        };
        assert!(matches!(
            TokenKeys::load(&config, Some(dir.path())),
            Err(KeyError::TooShort(_))
        ));
    }
}
