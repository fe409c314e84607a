//! Status intake: a device's retained status (and its last will) becomes its
//! `status` in the REST API; a device coming online gets its settings
//! (signed with its key, see `session::publish_settings`) and an ack with
//! its highest stored seq, so an agent that lost its spool resumes above it
//! (`session::publish_highest_seq`).
//!
//! A status carries no token: the broker authenticated the connection, not
//! the topic (rumqttd has no per-topic ACL). So only a well-formed
//! [`DeviceStatus`] for an existing, unrevoked device is recorded; the rest
//! is dropped and counted.

use lastseen_shared::{DeviceId, DeviceState, DeviceStatus};

use super::session::Session;

pub(super) async fn intake(session: &Session, device: DeviceId, payload: &[u8]) {
    let state = &session.state;
    let Ok(status) = serde_json::from_slice::<DeviceStatus>(payload) else {
        tracing::debug!(%device, "MQTT status is not a DeviceStatus");
        state.metrics.status_received(false);
        return;
    };
    let online = status.state == DeviceState::Online;
    if let Err(error) = state.control.report_status_of(device, status).await {
        tracing::debug!(%device, %error, "MQTT status not recorded");
        state.metrics.status_received(false);
        return;
    }
    state.metrics.status_received(true);
    let first_time = {
        let mut configured = session.configured.lock().unwrap_or_else(|p| p.into_inner());
        if !online {
            // The next time it connects it may meet a broker that lost the
            // retained settings (an embedded broker restarts with the cloud).
            configured.remove(&device);
            return;
        }
        configured.insert(device)
    };
    if first_time {
        match state.control.current_settings(device).await {
            Ok(settings) => session.publish_settings(device, &settings).await,
            Err(error) => {
                // Retried on its next "online" status.
                session.forget_configured(device);
                tracing::warn!(%device, %error, "cannot read settings to publish");
            }
        }
        session.publish_highest_seq(device).await;
    }
}
