//! Per-device documents beside the device row: the gate settings its owner
//! set and the status it last reported.
//!
//! Both are kept as the JSON of their wire types ([`GateSettings`],
//! [`DeviceStatus`]), so the store never needs to follow a field added to
//! them. A document that no longer parses is [`StoreError::Corrupt`]. Rows
//! go with their device (`ON DELETE CASCADE`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, DeviceStatus, FrameId, GateSettings, UserId};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, StoreResult};

/// A status as the cloud received it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportedStatus {
    pub status: DeviceStatus,
    /// When the cloud received it; the device's own clock is in `status.at`.
    pub received_at: DateTime<Utc>,
}

/// Settings and status storage; every [`super::Store`] implements it.
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
pub(super) fn reported(
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
