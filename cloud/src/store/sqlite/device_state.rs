//! [`DeviceStateStore`] on SQLite: one upsert per write, one read per device
//! or per owner.

use async_trait::async_trait;
use lastseen_shared::{DeviceId, FrameId, GateSettings, UserId};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::rows::{db, micros};
use crate::store::device_state::{from_json, reported, to_json};
use crate::store::rows::{ColumnReader, read_error};
use crate::store::{DeviceStateStore, ReportedStatus, StoreResult};

const PUT_SETTINGS: &str = "INSERT INTO device_state (device_id, settings) VALUES (?, ?) \
     ON CONFLICT (device_id) DO UPDATE SET settings = excluded.settings";

const RECORD_STATUS: &str = "INSERT INTO device_state (device_id, status, status_received_at) \
     VALUES (?, ?, ?) ON CONFLICT (device_id) DO UPDATE \
     SET status = excluded.status, status_received_at = excluded.status_received_at";

const STATUSES_OF: &str = "SELECT s.device_id, s.status, s.status_received_at \
     FROM device_state s JOIN devices d ON d.id = s.device_id \
     WHERE d.owner_id = ? AND s.status IS NOT NULL";

/// Each device with its highest-`seq` frame, through the `(device_id, seq)`
/// unique index; devices without frames drop out of the join.
pub(super) const LAST_FRAMES_OF: &str = "SELECT d.id AS device_id, f.id AS frame_id \
     FROM devices d JOIN frames f ON f.id = \
     (SELECT l.id FROM frames l WHERE l.device_id = d.id ORDER BY l.seq DESC LIMIT 1) \
     WHERE d.owner_id = ?";

fn status_of(row: &SqliteRow) -> StoreResult<Option<ReportedStatus>> {
    let status: Option<String> = row.try_get("status").map_err(|e| read_error("status", e))?;
    reported(status, row.optional_time("status_received_at")?)
}

#[async_trait]
impl DeviceStateStore for SqliteStore {
    async fn device_settings(&self, device: DeviceId) -> StoreResult<Option<GateSettings>> {
        let settings: Option<Option<String>> =
            sqlx::query_scalar("SELECT settings FROM device_state WHERE device_id = ?")
                .bind(device.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| read_error("settings", e))?;
        settings
            .flatten()
            .map(|text| from_json("settings", &text))
            .transpose()
    }

    async fn put_device_settings(
        &self,
        device: DeviceId,
        settings: &GateSettings,
    ) -> StoreResult<()> {
        sqlx::query(PUT_SETTINGS)
            .bind(device.as_uuid())
            .bind(to_json(settings)?)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn record_device_status(
        &self,
        device: DeviceId,
        status: &ReportedStatus,
    ) -> StoreResult<()> {
        sqlx::query(RECORD_STATUS)
            .bind(device.as_uuid())
            .bind(to_json(&status.status)?)
            .bind(micros(status.received_at))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn device_status(&self, device: DeviceId) -> StoreResult<Option<ReportedStatus>> {
        let row =
            sqlx::query("SELECT status, status_received_at FROM device_state WHERE device_id = ?")
                .bind(device.as_uuid())
                .fetch_optional(&self.pool)
                .await
                .map_err(db)?;
        Ok(row.as_ref().map(status_of).transpose()?.flatten())
    }

    async fn device_statuses_of(
        &self,
        owner: UserId,
    ) -> StoreResult<Vec<(DeviceId, ReportedStatus)>> {
        let rows = sqlx::query(STATUSES_OF)
            .bind(owner.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        let mut statuses = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(status) = status_of(row)? {
                statuses.push((DeviceId::from_uuid(row.uuid("device_id")?), status));
            }
        }
        Ok(statuses)
    }

    async fn last_frames_of(&self, owner: UserId) -> StoreResult<Vec<(DeviceId, FrameId)>> {
        let rows = sqlx::query(LAST_FRAMES_OF)
            .bind(owner.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok((
                    DeviceId::from_uuid(row.uuid("device_id")?),
                    FrameId::from_uuid(row.uuid("frame_id")?),
                ))
            })
            .collect()
    }
}
