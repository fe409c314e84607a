//! What comes in on the cloud's subscriptions: a frame goes to its own task
//! (at most `mqtt_max_in_flight` at once), a status to the bounded queue
//! that one task records in turn.

use std::sync::Arc;

use bytes::Bytes;
use lastseen_shared::{DeviceId, DeviceStatus, TopicKind};
use tokio::sync::Semaphore;

use super::Session;
use crate::metrics::{FrameOutcome, StatusSkip, Transport};
use crate::mqtt::frames::{self, Dropped, Verdict};
use crate::mqtt::status::{Offer, StatusAction};

impl Session {
    /// One message off the connection. The loop never waits for room: it
    /// must go on answering the broker's pings. A frame beyond
    /// `mqtt_max_in_flight` gets no ack and is sent again by its device,
    /// like one refused by a full queue; a status goes to the bounded queue.
    pub(super) fn take(
        self: &Arc<Self>,
        topic: String,
        payload: Bytes,
        in_flight: &Arc<Semaphore>,
    ) {
        match self.topics.parse(&topic) {
            Some((device, TopicKind::Frames)) => {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    self.state.metrics.frame(
                        Transport::Mqtt,
                        FrameOutcome::Dropped(Dropped::Overloaded.as_str()),
                    );
                    return;
                };
                let session = self.clone();
                tokio::spawn(async move {
                    session.frame(device, payload).await;
                    drop(permit);
                });
            }
            Some((device, TopicKind::Status)) => self.offer_status(device, payload),
            // Only frames and status are subscribed to; anything else is a
            // broker delivering more than asked.
            _ => tracing::debug!(%topic, "MQTT message on an unexpected topic"),
        }
    }

    async fn frame(&self, device: DeviceId, payload: Bytes) {
        let state = &self.state;
        match frames::handle(
            &state.accounts,
            &state.ingest,
            &state.metrics,
            device,
            payload,
        )
        .await
        {
            Verdict::Answer { device, ack, key } => self.publish_answer(device, &ack, key).await,
            Verdict::Drop(reason) => {
                tracing::debug!(%device, reason = reason.as_str(), "MQTT frame dropped");
            }
        }
    }

    /// Takes one status off the MQTT connection: queued for
    /// [`Session::record_statuses`], or dropped and counted. Never waits.
    fn offer_status(&self, device: DeviceId, payload: Bytes) {
        let metrics = &self.state.metrics;
        if payload.len() > self.max_status_bytes {
            tracing::debug!(%device, bytes = payload.len(), "MQTT status too large");
            metrics.status_received(false);
            return;
        }
        let (offer, waiting) = self.statuses.offer(device, payload);
        metrics.set_statuses_waiting(waiting as u64);
        match offer {
            Offer::Queued => {}
            Offer::Superseded => metrics.status_skipped(StatusSkip::Superseded),
            Offer::Full => {
                tracing::debug!(%device, "MQTT status dropped: the status queue is full");
                metrics.status_skipped(StatusSkip::QueueFull);
            }
        }
    }

    /// The one task that records queued statuses, in turn, for the life of
    /// the process.
    pub(super) async fn record_statuses(self: Arc<Self>) {
        loop {
            let (device, payload) = self.statuses.next().await;
            let waiting = self.statuses.len() as u64;
            self.state.metrics.set_statuses_waiting(waiting);
            self.record_status(device, &payload).await;
        }
    }

    /// Only a well-formed status of an existing, unrevoked device is
    /// recorded; a device coming online then gets its settings and its
    /// highest seq.
    async fn record_status(&self, device: DeviceId, payload: &[u8]) {
        let state = &self.state;
        let Ok(status) = serde_json::from_slice::<DeviceStatus>(payload) else {
            tracing::debug!(%device, "MQTT status is not a DeviceStatus");
            state.metrics.status_received(false);
            return;
        };
        let reported = status.state;
        if let Err(error) = state.control.report_status_of(device, status).await {
            tracing::debug!(%device, %error, "MQTT status not recorded");
            state.metrics.status_received(false);
            return;
        }
        state.metrics.status_received(true);
        if self.configured.on_status(device, reported) != StatusAction::Publish {
            return;
        }
        match state.control.current_settings(device).await {
            Ok(settings) => self.publish_settings(device, &settings).await,
            Err(error) => {
                // Retried on its next "online" status.
                self.configured.forget(device);
                tracing::warn!(%device, %error, "cannot read settings to publish");
            }
        }
        self.publish_highest_seq(device).await;
    }
}
