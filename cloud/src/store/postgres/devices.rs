//! Devices: registration, reads, and the owner's changes to one device.
//!
//! Every change is a single `UPDATE ... WHERE id = $ AND owner_id = $
//! RETURNING`, so another owner's device is neither changed nor revealed and
//! the record returned is exactly the row as committed. As for users,
//! `tokens_valid_after` only moves forward.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, UserId};
use sqlx::PgPool;

use super::PgStore;
use super::rows::{self, db, device_columns, micros};
use crate::store::devices::sql;
use crate::store::{DeviceRecord, DeviceStore, StoreError, StoreResult};

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

/// Deleting the device row cascades to its frames and `last_seen` rows, and
/// from the frames to their detections. The device is locked first (see
/// `LOCK_DEVICE`), so the key read sees every frame the cascade deletes.
async fn delete_device(
    pool: &PgPool,
    owner: UserId,
    id: DeviceId,
) -> StoreResult<Option<Vec<String>>> {
    let mut tx = pool.begin().await.map_err(db)?;
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
    sqlx::query(sql::DELETE)
        .bind(id.as_uuid())
        .bind(owner.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Some(keys))
}

crate::store::devices::device_store!(PgStore);
