//! The master key behind every device's MAC key (`k_dev`, see
//! `lastseen_shared::device_key`).
//!
//! `k_dev = HMAC-SHA256(master, "lastseen device key v1" || device uuid ||
//! tokens_valid_after as i64 milliseconds, big-endian)`: derived from the
//! device's record whenever it is needed, so no device secret is stored, and
//! rotating the device's token (which moves `tokens_valid_after`) rotates its
//! key. The master comes from `device_key_secret` / `device_key_secret_file`;
//! without either it is derived from the token signing key with HKDF-SHA256
//! under a label of its own, so the two keys never coincide and every node
//! that shares the token key derives the same device keys.

use std::fmt;

use chrono::{DateTime, Utc};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use lastseen_shared::DeviceId;
use lastseen_shared::device_key::{DeviceKey, KEY_LEN};
use sha2::Sha256;

use super::AuthConfig;
use super::key_file::{KeyError, read_key_file};
use crate::store::DeviceRecord;

/// What `k_dev` is computed over, first; a new derivation gets a new label.
const DEVICE_KEY_LABEL: &[u8] = b"lastseen device key v1";
/// HKDF `info` for a master derived from the token signing key.
const MASTER_FROM_JWT_LABEL: &[u8] = b"lastseen device key master v1";

/// The master key. Its `Debug` hides it.
#[derive(Clone)]
pub struct DeviceKeys {
    master: Vec<u8>,
}

impl DeviceKeys {
    /// A master used as it is (from `device_key_secret`).
    pub fn from_master(master: &[u8]) -> Self {
        Self {
            master: master.to_vec(),
        }
    }

    /// A master derived from the token signing key.
    pub fn derived_from_jwt_key(jwt_key: &[u8]) -> Self {
        let mut master = [0u8; KEY_LEN];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: cannot fail.
        Hkdf::<Sha256>::new(None, jwt_key)
            .expand(MASTER_FROM_JWT_LABEL, &mut master)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 length"));
        Self {
            master: master.to_vec(),
        }
    }

    /// `device_key_secret`, else `device_key_secret_file`, else derived from
    /// `jwt_key` (the token signing key in force).
    pub fn load(config: &AuthConfig, jwt_key: &[u8]) -> Result<Self, KeyError> {
        if let Some(secret) = &config.device_key_secret {
            return Ok(Self::from_master(secret.expose().as_bytes()));
        }
        if let Some(path) = &config.device_key_secret_file {
            return Ok(Self::from_master(&read_key_file(path)?));
        }
        Ok(Self::derived_from_jwt_key(jwt_key))
    }

    /// The key of `device` while its tokens are valid after `tokens_valid_after`.
    pub fn for_device(&self, device: DeviceId, tokens_valid_after: DateTime<Utc>) -> DeviceKey {
        // HMAC takes keys of any length: cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.master)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(DEVICE_KEY_LABEL);
        mac.update(device.as_uuid().as_bytes());
        mac.update(&tokens_valid_after.timestamp_millis().to_be_bytes());
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(&mac.finalize().into_bytes());
        DeviceKey::from_bytes(key)
    }

    pub fn for_record(&self, device: &DeviceRecord) -> DeviceKey {
        self.for_device(device.id, device.tokens_valid_after)
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKeys(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn the_key_follows_the_contract() {
        let master = b"a master key that is long enough, 32+";
        let device = DeviceId::new();
        let ms = 1_763_900_000_123i64;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(master).unwrap();
        mac.update(b"lastseen device key v1");
        mac.update(device.as_uuid().as_bytes());
        mac.update(&ms.to_be_bytes());
        let expected = mac.finalize().into_bytes();
        let key = DeviceKeys::from_master(master).for_device(device, at(ms));
        assert_eq!(&key.as_bytes()[..], &expected[..]);
    }

    #[test]
    fn keys_differ_per_device_rotation_and_master() {
        let keys = DeviceKeys::from_master(&[1; 32]);
        let (a, b) = (DeviceId::new(), DeviceId::new());
        let key = |keys: &DeviceKeys, device, ms| *keys.for_device(device, at(ms)).as_bytes();
        assert_eq!(key(&keys, a, 1000), key(&keys, a, 1000));
        // Sub-millisecond differences (a store keeps microseconds) do not count.
        assert_eq!(
            *keys
                .for_device(a, at(1000) + chrono::Duration::microseconds(999))
                .as_bytes(),
            key(&keys, a, 1000)
        );
        assert_ne!(key(&keys, a, 1000), key(&keys, b, 1000));
        assert_ne!(key(&keys, a, 1000), key(&keys, a, 1001));
        assert_ne!(
            key(&keys, a, 1000),
            key(&DeviceKeys::from_master(&[2; 32]), a, 1000)
        );
    }

    #[test]
    fn a_master_derived_from_the_token_key_is_not_the_token_key() {
        let jwt_key = [7u8; 32];
        let derived = DeviceKeys::derived_from_jwt_key(&jwt_key);
        assert_ne!(derived.master, jwt_key);
        assert_eq!(derived.master.len(), KEY_LEN);
        let device = DeviceId::new();
        assert_ne!(
            derived.for_device(device, at(5)).as_bytes(),
            DeviceKeys::from_master(&jwt_key)
                .for_device(device, at(5))
                .as_bytes()
        );
        // Deterministic: every node sharing the token key agrees.
        assert_eq!(
            DeviceKeys::derived_from_jwt_key(&jwt_key).master,
            derived.master
        );
    }

    #[test]
    fn the_configured_secret_wins_over_the_derived_one() {
        let config = AuthConfig {
            device_key_secret: Some(lastseen_shared::Secret::new("d".repeat(40))),
            ..AuthConfig::default()
        };
        let loaded = DeviceKeys::load(&config, &[7; 32]).unwrap();
        assert_eq!(loaded.master, "d".repeat(40).into_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        std::fs::write(&path, format!("{}\n", "f".repeat(40))).unwrap();
        let config = AuthConfig {
            device_key_secret_file: Some(path.clone()),
            ..AuthConfig::default()
        };
        assert_eq!(
            DeviceKeys::load(&config, &[7; 32]).unwrap().master,
            "f".repeat(40).into_bytes()
        );
        std::fs::write(&path, "short").unwrap();
        assert!(matches!(
            DeviceKeys::load(&config, &[7; 32]),
            Err(KeyError::TooShort(_))
        ));
        assert_eq!(
            DeviceKeys::load(&AuthConfig::default(), &[7; 32])
                .unwrap()
                .master,
            DeviceKeys::derived_from_jwt_key(&[7; 32]).master
        );
    }
}
