//! Devices: the cameras a user registers, each with its own token.
//!
//! Every call is scoped to the owner: another user's device is "not found".
//! [`settings`] holds the gate settings pushed to devices and the status
//! they report back.

mod config;
pub mod settings;

use std::sync::Arc;

use chrono::Utc;
use lastseen_shared::token::TokenKind;
use lastseen_shared::{DeviceId, Secret, UserId};

pub use config::DevicesConfig;

use crate::auth::credentials::{CredentialChange, CredentialEvents};
use crate::auth::{SignError, TokenKeys, delete_blobs, revocation_cut};
use crate::blob::BlobStore;
use crate::store::{DeviceRecord, DeviceStore, StoreError};

pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_KIND_CHARS: usize = 32;
pub const DEFAULT_KIND: &str = "camera";

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("a device name is 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error("a device kind is 1 to {MAX_KIND_CHARS} lowercase letters, digits or '-'")]
    InvalidKind,
    #[error("a user may have at most {0} devices")]
    TooMany(u32),
    #[error("no such device")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// A device and a token for it; the token is shown once.
#[derive(Clone, Debug)]
pub struct DeviceWithToken {
    pub device: DeviceRecord,
    pub token: String,
}

pub struct Devices {
    store: Arc<dyn DeviceStore>,
    blobs: Arc<dyn BlobStore>,
    keys: Arc<TokenKeys>,
    token_ttl_secs: u64,
    max_per_user: u32,
    events: CredentialEvents,
}

impl Devices {
    pub fn new(
        store: Arc<dyn DeviceStore>,
        blobs: Arc<dyn BlobStore>,
        keys: Arc<TokenKeys>,
        config: &DevicesConfig,
        events: CredentialEvents,
    ) -> Self {
        Self {
            store,
            blobs,
            keys,
            token_ttl_secs: config.device_token_ttl_days.saturating_mul(86_400),
            max_per_user: config.max_devices_per_user,
            events,
        }
    }

    /// How long a device token is valid after it is issued.
    pub fn token_ttl_secs(&self) -> u64 {
        self.token_ttl_secs
    }

    pub async fn create(
        &self,
        owner: UserId,
        name: &str,
        kind: Option<&str>,
    ) -> Result<DeviceWithToken, DeviceError> {
        let name = validate_name(name)?;
        let kind = validate_kind(kind.unwrap_or(DEFAULT_KIND))?;
        if self.store.count_devices_of(owner).await? >= u64::from(self.max_per_user) {
            return Err(DeviceError::TooMany(self.max_per_user));
        }
        let now = Utc::now();
        let device = DeviceRecord {
            id: DeviceId::new(),
            owner,
            name,
            kind,
            created_at: now,
            tokens_valid_after: now,
            revoked_at: None,
        };
        self.store.create_device(&device).await?;
        tracing::info!(device = %device.id, owner = %owner, "device created");
        self.with_token(device, false)
    }

    pub async fn list(&self, owner: UserId) -> Result<Vec<DeviceRecord>, DeviceError> {
        Ok(self.store.devices_of(owner).await?)
    }

    pub async fn get(&self, owner: UserId, id: DeviceId) -> Result<DeviceRecord, DeviceError> {
        self.store
            .device(id)
            .await?
            .filter(|device| device.owner == owner)
            .ok_or(DeviceError::NotFound)
    }

    pub async fn rename(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
    ) -> Result<DeviceRecord, DeviceError> {
        let name = validate_name(name)?;
        self.store
            .rename_device(owner, id, &name)
            .await?
            .ok_or(DeviceError::NotFound)
    }

    /// A new token; every earlier token of the device stops working at once.
    pub async fn rotate_token(
        &self,
        owner: UserId,
        id: DeviceId,
    ) -> Result<DeviceWithToken, DeviceError> {
        let device = self
            .store
            .set_device_tokens_valid_after(owner, id, revocation_cut())
            .await?
            .ok_or(DeviceError::NotFound)?;
        tracing::info!(device = %id, "device token rotated");
        self.with_token(device, true)
    }

    /// The device can no longer send; its history stays until it is deleted.
    pub async fn revoke(&self, owner: UserId, id: DeviceId) -> Result<DeviceRecord, DeviceError> {
        let device = self
            .store
            .revoke_device(owner, id, Utc::now())
            .await?
            .ok_or(DeviceError::NotFound)?;
        tracing::info!(device = %id, "device revoked");
        self.events
            .announce(CredentialChange::Revoked { device: id });
        Ok(device)
    }

    /// The device and its whole history: rows first, then images.
    pub async fn delete(&self, owner: UserId, id: DeviceId) -> Result<(), DeviceError> {
        let blob_keys = self
            .store
            .delete_device(owner, id)
            .await?
            .ok_or(DeviceError::NotFound)?;
        self.events
            .announce(CredentialChange::Deleted { device: id });
        delete_blobs(self.blobs.as_ref(), blob_keys).await;
        tracing::info!(device = %id, "device deleted");
        Ok(())
    }

    fn with_token(
        &self,
        device: DeviceRecord,
        rotated: bool,
    ) -> Result<DeviceWithToken, DeviceError> {
        let (token, _) = self.keys.issue(
            TokenKind::Device,
            device.id.as_uuid(),
            self.token_ttl_secs,
            device.tokens_valid_after,
        )?;
        self.events.announce(CredentialChange::Issued {
            device: device.id,
            token: Secret::new(token.clone()),
            rotated,
        });
        Ok(DeviceWithToken { device, token })
    }
}

/// Names are shown in the UI and in reports: trimmed, bounded, printable.
fn validate_name(name: &str) -> Result<String, DeviceError> {
    let name = name.trim();
    let length = name.chars().count();
    if (1..=MAX_NAME_CHARS).contains(&length) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(DeviceError::InvalidName)
    }
}

fn validate_kind(kind: &str) -> Result<String, DeviceError> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if (1..=MAX_KIND_CHARS).contains(&kind.len()) && kind.chars().all(allowed) {
        Ok(kind.to_owned())
    } else {
        Err(DeviceError::InvalidKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Kitchen  ").unwrap(), "Kitchen");
        assert_eq!(validate_name("Küche 🍳").unwrap(), "Küche 🍳");
        assert!(validate_name("   ").is_err());
        assert!(validate_name("bad\nname").is_err());
        assert!(validate_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn kinds_are_short_lowercase_words() {
        for good in ["camera", "pi", "hololens-2"] {
            assert!(validate_kind(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Camera",
            "pi zero",
            "<script>",
            &"a".repeat(MAX_KIND_CHARS + 1),
        ] {
            assert!(validate_kind(bad).is_err(), "{bad}");
        }
    }
}
