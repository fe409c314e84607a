//! Devices: the cameras a user registers, each with its own token.

use std::sync::Arc;

use chrono::Utc;
use lastseen_shared::token::TokenKind;
use lastseen_shared::{DeviceId, UserId};

use crate::auth::{SignError, TokenKeys};
use crate::store::{DeviceRecord, Store, StoreError};

pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("a device name is 1 to {MAX_NAME_CHARS} characters without control characters")]
    InvalidName,
    #[error("a user may have at most {0} devices")]
    TooMany(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// A new device and the token it authenticates with; the token is shown once.
#[derive(Clone, Debug)]
pub struct NewDevice {
    pub device: DeviceRecord,
    pub token: String,
}

pub struct Devices {
    store: Arc<dyn Store>,
    keys: Arc<TokenKeys>,
    token_ttl_secs: u64,
    max_per_user: u32,
}

impl Devices {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<TokenKeys>,
        token_ttl_days: u64,
        max_per_user: u32,
    ) -> Self {
        Self {
            store,
            keys,
            token_ttl_secs: token_ttl_days.saturating_mul(86_400),
            max_per_user,
        }
    }

    pub async fn create(&self, owner: UserId, name: &str) -> Result<NewDevice, DeviceError> {
        let name = validate_name(name)?;
        if self.store.count_devices_of(owner).await? >= u64::from(self.max_per_user) {
            return Err(DeviceError::TooMany(self.max_per_user));
        }
        let device = DeviceRecord {
            id: DeviceId::new(),
            owner,
            name,
            created_at: Utc::now(),
        };
        self.store.create_device(&device).await?;
        let (token, _) =
            self.keys
                .issue(TokenKind::Device, device.id.as_uuid(), self.token_ttl_secs)?;
        tracing::info!(device = %device.id, owner = %owner, "device created");
        Ok(NewDevice { device, token })
    }

    pub async fn list(&self, owner: UserId) -> Result<Vec<DeviceRecord>, DeviceError> {
        Ok(self.store.devices_of(owner).await?)
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
}
