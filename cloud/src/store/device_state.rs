//! Per-device documents beside the device row: the gate settings its owner
//! set and the status it last reported.
//!
//! Both are kept as the JSON of their wire types ([`GateSettings`],
//! [`DeviceStatus`]), so the store never needs to follow a field added to
//! them. A document that no longer parses is [`StoreError::Corrupt`]. Rows
//! go with their device (`ON DELETE CASCADE`).
//!
//! The backends' tables are alike here, so the statements ([`sql`]) and the
//! row decoding are written once below; each backend only runs them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, DeviceStatus, FrameId, GateSettings, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::rows::ColumnReader;
use super::{StoreError, StoreResult};

/// A status as the cloud received it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedStatus {
    pub status: DeviceStatus,
    /// When the cloud received it; the device's own clock is in `status.at`.
    pub received_at: DateTime<Utc>,
}

/// Settings and status storage.
#[async_trait]
pub trait DeviceStateStore: Send + Sync {
    /// The stored settings, or None when the owner never set any (the
    /// defaults apply).
    async fn device_settings(&self, device: DeviceId) -> StoreResult<Option<GateSettings>>;
    /// Replaces the device's settings. The device must exist.
    async fn put_device_settings(
        &self,
        device: DeviceId,
        settings: &GateSettings,
    ) -> StoreResult<()>;
    /// Replaces the device's last status. The device must exist.
    async fn record_device_status(
        &self,
        device: DeviceId,
        status: &ReportedStatus,
    ) -> StoreResult<()>;
    async fn device_status(&self, device: DeviceId) -> StoreResult<Option<ReportedStatus>>;
    /// The last status of each of the owner's devices that ever reported one.
    async fn device_statuses_of(
        &self,
        owner: UserId,
    ) -> StoreResult<Vec<(DeviceId, ReportedStatus)>>;
    /// The newest frame (highest `seq`) of each of the owner's devices that
    /// has any; one index seek per device.
    async fn last_frames_of(&self, owner: UserId) -> StoreResult<Vec<(DeviceId, FrameId)>>;
}

/// The statements of both backends: SQLite's driver numbers `$N` parameters
/// as PostgreSQL does, so one text serves both.
pub(super) mod sql {
    pub(in crate::store) const SETTINGS: &str =
        "SELECT settings FROM device_state WHERE device_id = $1";

    pub(in crate::store) const PUT_SETTINGS: &str = "INSERT INTO device_state (device_id, settings) VALUES ($1, $2) \
         ON CONFLICT (device_id) DO UPDATE SET settings = excluded.settings";

    pub(in crate::store) const RECORD_STATUS: &str = "INSERT INTO device_state (device_id, status, status_received_at) \
         VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE \
         SET status = excluded.status, status_received_at = excluded.status_received_at";

    pub(in crate::store) const STATUS: &str =
        "SELECT status, status_received_at FROM device_state WHERE device_id = $1";

    pub(in crate::store) const STATUSES_OF: &str = "SELECT s.device_id, s.status, s.status_received_at \
         FROM device_state s JOIN devices d ON d.id = s.device_id \
         WHERE d.owner_id = $1 AND s.status IS NOT NULL";

    /// Each device with its highest-`seq` frame, through the `(device_id, seq)`
    /// unique index; devices without frames drop out of the join.
    pub(in crate::store) const LAST_FRAMES_OF: &str = "SELECT d.id AS device_id, f.id AS frame_id \
         FROM devices d JOIN frames f ON f.id = \
         (SELECT l.id FROM frames l WHERE l.device_id = d.id ORDER BY l.seq DESC LIMIT 1) \
         WHERE d.owner_id = $1";
}

/// The [`DeviceStateStore`] of a backend whose `super::rows` has `db` and
/// `micros`: both backends run the same statements ([`sql`]) and read the
/// same columns, so the implementation is written once.
macro_rules! device_state_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use lastseen_shared::{DeviceId, FrameId, GateSettings, UserId};

        use super::rows::{db, micros};
        use $crate::store::device_state::{from_json, last_frame_of, sql, status_of, to_json};
        use $crate::store::rows::{ColumnReader, read_error};
        use $crate::store::{DeviceStateStore, ReportedStatus, StoreResult};

        #[async_trait]
        impl DeviceStateStore for $store {
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
    };
}
pub(super) use device_state_store;

/// The status columns of a [`sql::STATUS`] or [`sql::STATUSES_OF`] row.
pub(super) fn status_of(row: &impl ColumnReader) -> StoreResult<Option<ReportedStatus>> {
    reported(
        row.optional_text("status")?,
        row.optional_time("status_received_at")?,
    )
}

/// A row of [`sql::LAST_FRAMES_OF`].
pub(super) fn last_frame_of(row: &impl ColumnReader) -> StoreResult<(DeviceId, FrameId)> {
    Ok((
        DeviceId::from_uuid(row.uuid("device_id")?),
        FrameId::from_uuid(row.uuid("frame_id")?),
    ))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::Database(sqlx::Error::Encode(
            format!("cannot encode a device document: {e}").into(),
        ))
    })
}

pub(super) fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("column {column}: not the expected JSON: {e}")))
}

/// A status column pair read back: both set, or the device never reported.
fn reported(
    status: Option<String>,
    received_at: Option<DateTime<Utc>>,
) -> StoreResult<Option<ReportedStatus>> {
    match (status, received_at) {
        (Some(status), Some(received_at)) => Ok(Some(ReportedStatus {
            status: from_json("status", &status)?,
            received_at,
        })),
        (None, None) => Ok(None),
        _ => Err(StoreError::Corrupt(
            "status and status_received_at must be set together".to_owned(),
        )),
    }
}
