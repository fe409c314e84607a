//! The devices' settings.

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DevicesConfig {
    /// Lifetime of a device token; a device needs a new one after it.
    pub device_token_ttl_days: u64,
    pub max_devices_per_user: u32,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            device_token_ttl_days: 3650,
            max_devices_per_user: 100,
        }
    }
}

impl DevicesConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.device_token_ttl_days >= 1,
            "device_token_ttl_days must be at least 1",
        );
    }
}
