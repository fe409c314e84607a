//! What the cloud publishes to devices: gate settings (retained, signed with
//! the device's key, again with the new key when a device's token is
//! rotated), the ack with a device's highest stored seq, and the answers
//! to frames (signed when the frame was).

use std::sync::Arc;

use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{Ack, DeviceId, DeviceKey, GateSettings};
use rumqttc::QoS;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::Session;
use crate::auth::credentials::CredentialChange;
use crate::devices::settings::SettingsChange;

/// Publishes each settings change on its device's config topic.
pub(super) async fn publish_changes(session: Arc<Session>, mut changes: Receiver<SettingsChange>) {
    loop {
        match changes.recv().await {
            Ok(change) => {
                session
                    .publish_settings(change.device, &change.settings)
                    .await;
            }
            Err(RecvError::Lagged(missed)) => {
                // The changes are in the store: a device gets them the next
                // time it comes online, or from GET /device/settings.
                tracing::warn!(missed, "settings changes not published: too many at once");
                session.configured.forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// After a device's token is rotated, its retained settings are signed with
/// the old key, which its agent (once it has the new token) refuses: publish
/// them again with the new one, whether the device is online or not (the
/// node that issued the token is the one that hears of it, and an offline
/// device finds them retained when it comes back).
pub(super) async fn publish_on_rotation(
    session: Arc<Session>,
    mut changes: Receiver<CredentialChange>,
) {
    loop {
        match changes.recv().await {
            Ok(CredentialChange::Issued {
                device,
                rotated: true,
                ..
            }) => match session.state.control.current_settings(device).await {
                Ok(settings) => session.publish_settings(device, &settings).await,
                Err(error) => {
                    tracing::warn!(%device, %error, "cannot read settings to sign again");
                }
            },
            // A new device gets its settings when it first reports online.
            Ok(CredentialChange::Issued { .. }) => {}
            Ok(CredentialChange::Revoked { device } | CredentialChange::Deleted { device }) => {
                session.configured.forget(device);
            }
            Err(RecvError::Lagged(missed)) => {
                // Each device gets its settings again when it next comes online.
                tracing::warn!(
                    missed,
                    "credential changes missed: settings are signed again at the next online status"
                );
                session.configured.forget_all();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Session {
    pub(super) async fn publish_settings(&self, device: DeviceId, settings: &GateSettings) {
        let body = match serde_json::to_vec(settings) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "cannot encode gate settings");
                return;
            }
        };
        let key = match self.state.accounts.device_key(device).await {
            Ok(Some((_, key))) => key,
            Ok(None) => {
                tracing::debug!(%device, "no settings for an unknown or revoked device");
                return;
            }
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's key to sign its settings");
                self.configured.forget(device);
                return;
            }
        };
        let payload = signed::seal(&key, SignedKind::Config, device, &body);
        match self
            .client
            .publish(self.topics.config(device), QoS::AtLeastOnce, true, payload)
            .await
        {
            Ok(()) => {
                self.configured.published(device);
                self.state.metrics.config_published();
            }
            Err(error) => tracing::warn!(%error, %device, "cannot queue gate settings"),
        }
    }

    /// An ack with only the device's highest stored seq (signed with its
    /// key; nothing for a device without frames, or without a key: a legacy
    /// token cannot check it, and learns the seq from its first
    /// `seq_conflict` instead).
    pub(super) async fn publish_highest_seq(&self, device: DeviceId) {
        let highest_seq = match self.state.ingest.highest_seq(device).await {
            Ok(Some(seq)) => seq,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's highest seq");
                return;
            }
        };
        let key = match self.state.accounts.device_key(device).await {
            Ok(Some((_, key))) => key,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's key to sign its highest seq");
                return;
            }
        };
        let ack = Ack {
            highest_seq: Some(highest_seq),
            ..Default::default()
        };
        let Ok(body) = serde_json::to_vec(&ack) else {
            return;
        };
        let payload = signed::seal(&key, SignedKind::Ack, device, &body);
        match self
            .client
            .publish(self.topics.ack(device), QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => self.state.metrics.ack_sent(),
            Err(error) => tracing::warn!(%error, %device, "cannot queue the highest seq"),
        }
    }

    /// The answer to one frame: signed with the device's key when the frame
    /// was (a v1 sender cannot check a signature: it gets the plain body).
    pub(super) async fn publish_answer(&self, device: DeviceId, ack: &Ack, key: Option<DeviceKey>) {
        let body = match serde_json::to_vec(ack) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "cannot encode an ack");
                return;
            }
        };
        let payload = match key {
            Some(key) => signed::seal(&key, SignedKind::Ack, device, &body),
            None => body,
        };
        match self
            .client
            .publish(self.topics.ack(device), QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => self.state.metrics.ack_sent(),
            Err(error) => tracing::warn!(%error, "cannot queue an ack"),
        }
    }
}
