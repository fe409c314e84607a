//! Remote control of devices: the gate settings their owner edits in the
//! cloud, and the status the devices report back.
//!
//! A settings change is stored, then announced on a broadcast channel; the
//! MQTT adapter (when on) listens and publishes it retained on the device's
//! config topic. HTTPS agents poll for it instead.

use std::sync::Arc;

use chrono::Utc;
use lastseen_shared::messages::SettingsError;
use lastseen_shared::{DeviceId, DeviceStatus, FrameId, GateSettings, UserId};
use tokio::sync::broadcast;

use crate::store::{DeviceRecord, ReportedStatus, Store, StoreError};

/// Settings changes not yet taken by a slow listener; beyond this the
/// listener is told it lagged (and republishes from the store).
const CHANGES_BUFFER: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no such device")]
    NotFound,
    #[error("invalid settings: {0}")]
    InvalidSettings(#[from] SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// New settings for one device, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingsChange {
    pub device: DeviceId,
    pub settings: GateSettings,
}

/// A device with the status it last reported and its newest frame, if any.
#[derive(Clone, Debug)]
pub struct DeviceOverview {
    pub device: DeviceRecord,
    pub status: Option<ReportedStatus>,
    pub last_frame: Option<FrameId>,
}

pub struct DeviceControl {
    store: Arc<dyn Store>,
    changes: broadcast::Sender<SettingsChange>,
}

impl DeviceControl {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            changes: broadcast::channel(CHANGES_BUFFER).0,
        }
    }

    /// Every settings change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SettingsChange> {
        self.changes.subscribe()
    }

    /// The owner's view of a device's settings (the defaults until set).
    pub async fn settings(
        &self,
        owner: UserId,
        id: DeviceId,
    ) -> Result<GateSettings, ControlError> {
        self.owned(owner, id).await?;
        self.current_settings(id).await
    }

    /// Validates and stores the settings, then announces them.
    pub async fn put_settings(
        &self,
        owner: UserId,
        id: DeviceId,
        settings: GateSettings,
    ) -> Result<GateSettings, ControlError> {
        settings.validate()?;
        self.owned(owner, id).await?;
        self.store.put_device_settings(id, &settings).await?;
        tracing::info!(device = %id, "gate settings changed");
        // No listener (MQTT off) is fine: devices poll over HTTPS.
        let _ = self.changes.send(SettingsChange {
            device: id,
            settings: settings.clone(),
        });
        Ok(settings)
    }

    /// The settings a device should apply now (the defaults until set).
    pub async fn current_settings(&self, device: DeviceId) -> Result<GateSettings, ControlError> {
        Ok(self
            .store
            .device_settings(device)
            .await?
            .unwrap_or_default())
    }

    /// Records what an authenticated device reported, received now.
    pub async fn report_status(
        &self,
        device: DeviceId,
        status: DeviceStatus,
    ) -> Result<ReportedStatus, ControlError> {
        let reported = ReportedStatus {
            status,
            received_at: Utc::now(),
        };
        self.store.record_device_status(device, &reported).await?;
        Ok(reported)
    }

    /// Records a status that came without a token (the MQTT status topic,
    /// whose broker authenticated the connection but not the topic): only
    /// for an existing device that is not revoked.
    pub async fn report_status_of(
        &self,
        id: DeviceId,
        status: DeviceStatus,
    ) -> Result<ReportedStatus, ControlError> {
        self.store
            .device(id)
            .await?
            .filter(|device| device.revoked_at.is_none())
            .ok_or(ControlError::NotFound)?;
        self.report_status(id, status).await
    }

    /// A device of the owner with its last status and newest frame.
    pub async fn overview(&self, device: DeviceRecord) -> Result<DeviceOverview, ControlError> {
        let status = self.store.device_status(device.id).await?;
        let last_frame = self
            .store
            .last_frames_of(device.owner)
            .await?
            .into_iter()
            .find_map(|(id, frame)| (id == device.id).then_some(frame));
        Ok(DeviceOverview {
            device,
            status,
            last_frame,
        })
    }

    /// The owner's devices (as listed by [`crate::devices::Devices::list`])
    /// with their last statuses and newest frames, in two reads.
    pub async fn overviews(
        &self,
        owner: UserId,
        devices: Vec<DeviceRecord>,
    ) -> Result<Vec<DeviceOverview>, ControlError> {
        let mut statuses: std::collections::HashMap<_, _> = self
            .store
            .device_statuses_of(owner)
            .await?
            .into_iter()
            .collect();
        let mut last_frames: std::collections::HashMap<_, _> = self
            .store
            .last_frames_of(owner)
            .await?
            .into_iter()
            .collect();
        Ok(devices
            .into_iter()
            .map(|device| DeviceOverview {
                status: statuses.remove(&device.id),
                last_frame: last_frames.remove(&device.id),
                device,
            })
            .collect())
    }

    async fn owned(&self, owner: UserId, id: DeviceId) -> Result<DeviceRecord, ControlError> {
        self.store
            .device(id)
            .await?
            .filter(|device| device.owner == owner)
            .ok_or(ControlError::NotFound)
    }
}
