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

/// The statements both backends run as written: SQLite's driver numbers `$N`
/// parameters as PostgreSQL does (see `device_state::sql`).
pub(super) mod sql {
    use crate::store::rows::device_columns;

    pub(in crate::store) const CREATE: &str = "INSERT INTO devices \
         (id, owner_id, name, kind, created_at, tokens_valid_after, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)";

    pub(in crate::store) const DEVICE: &str =
        concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1");

    pub(in crate::store) const DEVICES_OF: &str = concat!(
        "SELECT ",
        device_columns!(),
        " FROM devices WHERE owner_id = $1 ORDER BY created_at, id"
    );

    pub(in crate::store) const COUNT_OF: &str = "SELECT COUNT(*) FROM devices WHERE owner_id = $1";

    pub(in crate::store) const RENAME: &str = concat!(
        "UPDATE devices SET name = $1 WHERE id = $2 AND owner_id = $3 RETURNING ",
        device_columns!()
    );

    pub(in crate::store) const DELETE: &str = "DELETE FROM devices WHERE id = $1 AND owner_id = $2";
}

/// The [`DeviceStore`] of a backend: the calls run the same way on both, over
/// [`sql`] and the module's own `SET_TOKENS_VALID_AFTER` and `REVOKE` (which
/// need the dialect's `max`). Deleting a device differs in how each backend
/// keeps new frames out meanwhile, so that is the module's `delete_device`.
/// The invoking module imports what the body names.
macro_rules! device_store {
    ($store:ty) => {
        #[async_trait]
        impl DeviceStore for $store {
            async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()> {
                sqlx::query(sql::CREATE)
                    .bind(device.id.as_uuid())
                    .bind(device.owner.as_uuid())
                    .bind(&device.name)
                    .bind(&device.kind)
                    .bind(micros(device.created_at))
                    .bind(micros(device.tokens_valid_after))
                    .bind(device.revoked_at.map(micros))
                    .execute(&self.pool)
                    .await
                    .map_err(db)?;
                Ok(())
            }

            async fn device(&self, id: DeviceId) -> StoreResult<Option<DeviceRecord>> {
                sqlx::query(sql::DEVICE)
                    .bind(id.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .as_ref()
                    .map(rows::device)
                    .transpose()
            }

            async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>> {
                sqlx::query(sql::DEVICES_OF)
                    .bind(owner.as_uuid())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?
                    .iter()
                    .map(rows::device)
                    .collect()
            }

            async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64> {
                let count: i64 = sqlx::query_scalar(sql::COUNT_OF)
                    .bind(owner.as_uuid())
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db)?;
                u64::try_from(count)
                    .map_err(|_| StoreError::Corrupt(format!("device count {count}")))
            }

            async fn rename_device(
                &self,
                owner: UserId,
                id: DeviceId,
                name: &str,
            ) -> StoreResult<Option<DeviceRecord>> {
                sqlx::query(sql::RENAME)
                    .bind(name)
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .as_ref()
                    .map(rows::device)
                    .transpose()
            }

            async fn set_device_tokens_valid_after(
                &self,
                owner: UserId,
                id: DeviceId,
                at: DateTime<Utc>,
            ) -> StoreResult<Option<DeviceRecord>> {
                sqlx::query(SET_TOKENS_VALID_AFTER)
                    .bind(micros(at))
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .as_ref()
                    .map(rows::device)
                    .transpose()
            }

            async fn revoke_device(
                &self,
                owner: UserId,
                id: DeviceId,
                at: DateTime<Utc>,
            ) -> StoreResult<Option<DeviceRecord>> {
                sqlx::query(REVOKE)
                    .bind(micros(at))
                    .bind(id.as_uuid())
                    .bind(owner.as_uuid())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?
                    .as_ref()
                    .map(rows::device)
                    .transpose()
            }

            async fn delete_device(
                &self,
                owner: UserId,
                id: DeviceId,
            ) -> StoreResult<Option<Vec<String>>> {
                delete_device(&self.pool, owner, id).await
            }
        }
    };
}
pub(super) use device_store;
