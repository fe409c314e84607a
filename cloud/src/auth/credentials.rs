//! Changes to what a device may log in with, announced to whoever holds
//! live sessions or broker accounts for devices: the embedded broker's
//! authorizing layer ends sessions whose token no longer verifies, and the
//! external broker's provisioner sets or deletes the device's broker login.
//!
//! Announcements are best effort (a lagging listener misses some), so every
//! listener also re-checks on its own schedule; the store stays the truth.

use lastseen_shared::{DeviceId, Secret};
use tokio::sync::broadcast;

/// Announcements buffered per listener before the oldest are dropped.
const CAPACITY: usize = 1024;

/// One change to a device's credentials.
#[derive(Clone, Debug)]
pub enum CredentialChange {
    /// A device was created (`rotated` false) or its token rotated: `token`
    /// is the only one that works from now on (earlier ones stop at once).
    Issued {
        device: DeviceId,
        token: Secret,
        rotated: bool,
    },
    /// The device was revoked: no token of it works any more.
    Revoked { device: DeviceId },
    /// The device is gone, with its owner's account or on its own.
    Deleted { device: DeviceId },
}

impl CredentialChange {
    pub fn device(&self) -> DeviceId {
        match self {
            CredentialChange::Issued { device, .. }
            | CredentialChange::Revoked { device }
            | CredentialChange::Deleted { device } => *device,
        }
    }
}

/// The channel the device and account services announce changes on.
#[derive(Clone)]
pub struct CredentialEvents {
    sender: broadcast::Sender<CredentialChange>,
}

impl Default for CredentialEvents {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl CredentialEvents {
    pub fn subscribe(&self) -> broadcast::Receiver<CredentialChange> {
        self.sender.subscribe()
    }

    /// Nobody listening (MQTT off) is fine: HTTPS checks every request.
    pub fn announce(&self, change: CredentialChange) {
        let _ = self.sender.send(change);
    }
}
