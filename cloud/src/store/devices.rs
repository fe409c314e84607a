//! Devices: registration, reads, and the owner's changes to one device.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, UserId};

use super::{DeviceRecord, StoreResult};

/// Device storage. As for users, `tokens_valid_after` only moves forward.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()>;
    async fn device(&self, id: DeviceId) -> StoreResult<Option<DeviceRecord>>;
    /// The owner's devices, oldest first.
    async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>>;
    async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64>;

    /// The device-changing calls below act only on a device of `owner` and
    /// return the device as it is afterwards, or None when `owner` has no such device.
    async fn rename_device(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Voids the device's tokens issued before `at` (rotation).
    async fn set_device_tokens_valid_after(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Sets `revoked_at` (keeping an earlier one) and voids its tokens issued
    /// before `at`, as rotation does; history stays.
    async fn revoke_device(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>>;
    /// Deletes the device with its frames, detections and `last_seen` rows in
    /// one transaction; returns the blob keys of the deleted frames.
    async fn delete_device(&self, owner: UserId, id: DeviceId) -> StoreResult<Option<Vec<String>>>;
}
