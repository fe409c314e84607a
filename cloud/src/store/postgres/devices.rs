//! Devices: registration, reads, and the owner's changes to one device.
//!
//! Every change is a single `UPDATE ... WHERE id = $ AND owner_id = $
//! RETURNING`, so another owner's device is neither changed nor revealed and
//! the record returned is exactly the row as committed. As for users,
//! `tokens_valid_after` only moves forward.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, UserId};
use sqlx::postgres::PgRow;

use super::PgStore;
use super::rows::{self, db, device_columns, micros};
use crate::store::{DeviceRecord, DeviceStore, StoreError, StoreResult};

const DEVICE: &str = concat!("SELECT ", device_columns!(), " FROM devices WHERE id = $1");

const DEVICES_OF: &str = concat!(
    "SELECT ",
    device_columns!(),
    " FROM devices WHERE owner_id = $1 ORDER BY created_at, id"
);

const RENAME: &str = concat!(
    "UPDATE devices SET name = $1 WHERE id = $2 AND owner_id = $3 RETURNING ",
    device_columns!()
);

const SET_TOKENS_VALID_AFTER: &str = concat!(
    "UPDATE devices SET tokens_valid_after = GREATEST(tokens_valid_after, $1) \
     WHERE id = $2 AND owner_id = $3 RETURNING ",
    device_columns!()
);

/// The first revocation's time stays; the tokens are voided again either way.
const REVOKE: &str = concat!(
    "UPDATE devices SET revoked_at = COALESCE(revoked_at, $1), \
     tokens_valid_after = GREATEST(tokens_valid_after, $1) \
     WHERE id = $2 AND owner_id = $3 RETURNING ",
    device_columns!()
);

/// Waits for the frames of the device being stored right now and keeps new
/// ones out until the deletion commits: their foreign key check takes a
/// `KEY SHARE` lock on the device row, which conflicts with `FOR UPDATE`.
const LOCK_DEVICE: &str = "SELECT id FROM devices WHERE id = $1 AND owner_id = $2 FOR UPDATE";

/// The device's images, read through the `(device_id, seq) INCLUDE (blob_key)`
/// key of `frames`.
pub(super) const DEVICE_BLOB_KEYS: &str =
    "SELECT blob_key FROM frames WHERE device_id = $1 AND owner_id = $2";

fn one(row: Option<PgRow>) -> StoreResult<Option<DeviceRecord>> {
    row.map(|row| rows::device(&row)).transpose()
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn create_device(&self, device: &DeviceRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO devices \
             (id, owner_id, name, kind, created_at, tokens_valid_after, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
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
        let row = sqlx::query(DEVICE)
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        one(row)
    }

    async fn devices_of(&self, owner: UserId) -> StoreResult<Vec<DeviceRecord>> {
        sqlx::query(DEVICES_OF)
            .bind(owner.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(rows::device)
            .collect()
    }

    async fn count_devices_of(&self, owner: UserId) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE owner_id = $1")
            .bind(owner.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt(format!("device count {count}")))
    }

    async fn rename_device(
        &self,
        owner: UserId,
        id: DeviceId,
        name: &str,
    ) -> StoreResult<Option<DeviceRecord>> {
        let row = sqlx::query(RENAME)
            .bind(name)
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        one(row)
    }

    async fn set_device_tokens_valid_after(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>> {
        let row = sqlx::query(SET_TOKENS_VALID_AFTER)
            .bind(micros(at))
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        one(row)
    }

    async fn revoke_device(
        &self,
        owner: UserId,
        id: DeviceId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceRecord>> {
        let row = sqlx::query(REVOKE)
            .bind(micros(at))
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?;
        one(row)
    }

    /// Deleting the device row cascades to its frames and `last_seen` rows, and
    /// from the frames to their detections. The device is locked first (see
    /// `LOCK_DEVICE`), so the key read sees every frame the cascade deletes.
    async fn delete_device(&self, owner: UserId, id: DeviceId) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.pool.begin().await.map_err(db)?;
        let found = sqlx::query(LOCK_DEVICE)
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        if found.is_none() {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        }
        let keys: Vec<String> = sqlx::query_scalar(DEVICE_BLOB_KEYS)
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
        sqlx::query("DELETE FROM devices WHERE id = $1 AND owner_id = $2")
            .bind(id.as_uuid())
            .bind(owner.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(keys))
    }
}
