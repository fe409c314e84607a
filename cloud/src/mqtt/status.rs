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
//!
//! Statuses wait in a [`StatusQueue`] that one task empties in turn: at most
//! one waiting status per device (a newer one replaces it, counted as
//! superseded) and at most `mqtt_status_queue` devices (a status past that
//! is dropped and counted). A flood of statuses costs neither tasks nor
//! memory beyond that, and each device ends with its latest status.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lastseen_shared::{DeviceId, DeviceState, DeviceStatus};
use tokio::sync::Notify;

use super::session::Session;

/// What became of a status offered to the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Offer {
    Queued,
    /// It took the place of the device's waiting status.
    Superseded,
    /// `mqtt_status_queue` devices already had one waiting.
    Full,
}

/// The statuses waiting to be recorded: the latest per device, in arrival
/// order of the devices.
pub(super) struct StatusQueue {
    capacity: usize,
    waiting: Mutex<Waiting>,
    wake: Notify,
}

#[derive(Default)]
struct Waiting {
    latest: HashMap<DeviceId, Bytes>,
    order: VecDeque<DeviceId>,
}

impl StatusQueue {
    /// At most `capacity` devices with a waiting status (at least 1).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            waiting: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// Queues `payload` as `device`'s latest status, and how many devices
    /// now have one waiting.
    pub(super) fn offer(&self, device: DeviceId, payload: Bytes) -> (Offer, usize) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let offer = if let Some(slot) = waiting.latest.get_mut(&device) {
            *slot = payload;
            Offer::Superseded
        } else if waiting.latest.len() >= self.capacity {
            Offer::Full
        } else {
            waiting.latest.insert(device, payload);
            waiting.order.push_back(device);
            self.wake.notify_one();
            Offer::Queued
        };
        (offer, waiting.latest.len())
    }

    /// The next device's latest status, waiting for one.
    pub(super) async fn next(&self) -> (DeviceId, Bytes) {
        loop {
            if let Some(next) = self.pop() {
                return next;
            }
            // A status offered since the pop left a permit: no lost wake-up.
            self.wake.notified().await;
        }
    }

    /// Devices with a status waiting.
    pub(super) fn len(&self) -> usize {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .latest
            .len()
    }

    fn pop(&self) -> Option<(DeviceId, Bytes)> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(device) = waiting.order.pop_front() {
            if let Some(payload) = waiting.latest.remove(&device) {
                return Some((device, payload));
            }
        }
        None
    }
}

/// Takes one status off the MQTT connection: queued for [`record`], or
/// dropped and counted. Never waits.
pub(super) fn offer(session: &Session, device: DeviceId, payload: Bytes) {
    let metrics = &session.state.metrics;
    if payload.len() > session.max_status_bytes {
        tracing::debug!(%device, bytes = payload.len(), "MQTT status too large");
        metrics.status_received(false);
        return;
    }
    let (offer, waiting) = session.statuses.offer(device, payload);
    metrics.set_statuses_waiting(waiting as u64);
    match offer {
        Offer::Queued => {}
        Offer::Superseded => metrics.status_skipped(crate::metrics::StatusSkip::Superseded),
        Offer::Full => {
            tracing::debug!(%device, "MQTT status dropped: the status queue is full");
            metrics.status_skipped(crate::metrics::StatusSkip::QueueFull);
        }
    }
}

/// The one task that records queued statuses, in turn, for the life of
/// the process.
pub(super) async fn record(session: Arc<Session>) {
    loop {
        let (device, payload) = session.statuses.next().await;
        let waiting = session.statuses.len() as u64;
        session.state.metrics.set_statuses_waiting(waiting);
        intake(&session, device, &payload).await;
    }
}

async fn intake(session: &Session, device: DeviceId, payload: &[u8]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[tokio::test]
    async fn keeps_the_latest_per_device_in_arrival_order_within_its_devices() {
        let queue = StatusQueue::new(2);
        let (a, b, c) = (DeviceId::new(), DeviceId::new(), DeviceId::new());
        assert_eq!(queue.offer(a, status("a1")), (Offer::Queued, 1));
        assert_eq!(queue.offer(b, status("b1")), (Offer::Queued, 2));
        assert_eq!(queue.offer(a, status("a2")), (Offer::Superseded, 2));
        // A third device finds the queue full; the others still replace theirs.
        assert_eq!(queue.offer(c, status("c1")), (Offer::Full, 2));
        assert_eq!(queue.offer(b, status("b2")), (Offer::Superseded, 2));
        assert_eq!(queue.next().await, (a, status("a2")));
        assert_eq!(queue.next().await, (b, status("b2")));
        assert_eq!(queue.len(), 0);
        // Room again.
        assert_eq!(queue.offer(c, status("c2")), (Offer::Queued, 1));
        assert_eq!(queue.next().await, (c, status("c2")));
    }

    #[tokio::test]
    async fn next_waits_for_a_status() {
        let queue = Arc::new(StatusQueue::new(4));
        let device = DeviceId::new();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        queue.offer(device, status("online"));
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert_eq!(next, (device, status("online")));
    }
}
