//! Devices: registration, reads, and the owner's changes to one device.
//!
//! Every change is a single `UPDATE ... WHERE id = ? AND owner_id = ?
//! RETURNING`, so another owner's device is neither changed nor revealed and
//! the record returned is exactly the row as committed. As for users,
//! `tokens_valid_after` only moves forward.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, UserId};
use sqlx::SqlitePool;

use super::SqliteStore;
use super::rows::{self, db, device_columns, micros};
use crate::store::devices::sql;
use crate::store::{DeviceRecord, DeviceStore, StoreError, StoreResult};

const SET_TOKENS_VALID_AFTER: &str = concat!(
    "UPDATE devices SET tokens_valid_after = max(tokens_valid_after, ?) \
     WHERE id = ? AND owner_id = ? RETURNING ",
    device_columns!()
);

/// The first revocation's time stays; the tokens are voided again either way.
const REVOKE: &str = concat!(
    "UPDATE devices SET revoked_at = coalesce(revoked_at, ?1), \
     tokens_valid_after = max(tokens_valid_after, ?1) \
     WHERE id = ?2 AND owner_id = ?3 RETURNING ",
    device_columns!()
);

/// The device's images, read through the `(device_id, seq)` key of `frames`.
pub(super) const DEVICE_BLOB_KEYS: &str =
    "SELECT blob_key FROM frames WHERE device_id = ? AND owner_id = ?";

/// Deleting the device row cascades to its frames and `last_seen` rows, and
/// from the frames to their detections. As in `delete_user`, the write lock
/// is held from the key read on.
async fn delete_device(
    pool: &SqlitePool,
    owner: UserId,
    id: DeviceId,
) -> StoreResult<Option<Vec<String>>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let keys: Vec<String> = sqlx::query_scalar(DEVICE_BLOB_KEYS)
        .bind(id.as_uuid())
        .bind(owner.as_uuid())
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
    let deleted = sqlx::query(sql::DELETE)
        .bind(id.as_uuid())
        .bind(owner.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    if deleted == 0 {
        tx.rollback().await.map_err(db)?;
        return Ok(None);
    }
    tx.commit().await.map_err(db)?;
    Ok(Some(keys))
}

crate::store::devices::device_store!(SqliteStore);
