//! [`DeviceStateStore`] on PostgreSQL, running the statements both backends
//! share: one upsert per write, one read per device or per owner.

use async_trait::async_trait;
use lastseen_shared::{DeviceId, FrameId, GateSettings, UserId};

use super::PgStore;
use super::rows::{db, micros};
use crate::store::device_state::{from_json, last_frame_of, sql, status_of, to_json};
use crate::store::rows::{ColumnReader, read_error};
use crate::store::{DeviceStateStore, ReportedStatus, StoreResult};

#[async_trait]
impl DeviceStateStore for PgStore {
    async fn device_settings(&self, device: DeviceId) -> StoreResult<Option<GateSettings>> {
        let settings: Option<Option<String>> = sqlx::query_scalar(sql::SETTINGS)
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
        sqlx::query(sql::PUT_SETTINGS)
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
        sqlx::query(sql::RECORD_STATUS)
            .bind(device.as_uuid())
            .bind(to_json(&status.status)?)
            .bind(micros(status.received_at))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn device_status(&self, device: DeviceId) -> StoreResult<Option<ReportedStatus>> {
        let row = sqlx::query(sql::STATUS)
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
        let rows = sqlx::query(sql::STATUSES_OF)
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
        sqlx::query(sql::LAST_FRAMES_OF)
            .bind(owner.as_uuid())
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
            .iter()
            .map(last_frame_of)
            .collect()
    }
}
