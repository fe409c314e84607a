//! Status bookkeeping, without I/O (the session does that, in
//! `session/statuses.rs`): a device's retained status (and its last will)
//! becomes its `status` in the REST API; a device coming online gets its
//! settings (signed with its key) and an ack with its highest stored seq, so
//! an agent that lost its spool resumes above it. [`ConfiguredDevices`]
//! says when.
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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use lastseen_shared::{DeviceId, DeviceState};
use tokio::sync::Notify;

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

/// What to do for a device after its status was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StatusAction {
    /// Online for the first time since this process published its settings
    /// (or ever): publish them and its highest seq.
    Publish,
    /// Offline: forgotten, so it gets its settings again when it comes back.
    Forget,
    /// Online again, settings already published.
    Nothing,
}

/// Devices whose settings this process has published since the device
/// last came online; the broker may have lost earlier retained messages.
#[derive(Default)]
pub(super) struct ConfiguredDevices(Mutex<HashSet<DeviceId>>);

impl ConfiguredDevices {
    /// Notes a recorded status of `device`. A device that goes offline is
    /// forgotten: the next time it connects it may meet a broker that lost
    /// the retained settings (an embedded broker restarts with the cloud).
    /// Coming online, it counts as configured at once, so a second status
    /// in the meantime does not publish twice.
    pub(super) fn on_status(&self, device: DeviceId, state: DeviceState) -> StatusAction {
        let mut configured = self.lock();
        if state != DeviceState::Online {
            configured.remove(&device);
            StatusAction::Forget
        } else if configured.insert(device) {
            StatusAction::Publish
        } else {
            StatusAction::Nothing
        }
    }

    /// The device's settings were published.
    pub(super) fn published(&self, device: DeviceId) {
        self.lock().insert(device);
    }

    /// The device gets its settings again the next time it comes online.
    pub(super) fn forget(&self, device: DeviceId) {
        self.lock().remove(&device);
    }

    /// Every device gets its settings again the next time it comes online.
    pub(super) fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<DeviceId>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_device_gets_its_settings_once_per_time_online() {
        let configured = ConfiguredDevices::default();
        let (a, b) = (DeviceId::new(), DeviceId::new());
        assert_eq!(
            configured.on_status(a, DeviceState::Online),
            StatusAction::Publish
        );
        assert_eq!(
            configured.on_status(a, DeviceState::Online),
            StatusAction::Nothing
        );
        assert_eq!(
            configured.on_status(b, DeviceState::Online),
            StatusAction::Publish
        );
        // Offline, then back: its settings are published again.
        assert_eq!(
            configured.on_status(a, DeviceState::Offline),
            StatusAction::Forget
        );
        assert_eq!(
            configured.on_status(a, DeviceState::Online),
            StatusAction::Publish
        );
        // A failed publish (forget) or a missed change (forget_all) retries.
        configured.forget(a);
        assert_eq!(
            configured.on_status(a, DeviceState::Online),
            StatusAction::Publish
        );
        configured.forget_all();
        assert_eq!(
            configured.on_status(b, DeviceState::Online),
            StatusAction::Publish
        );
        // Published without a status first (a settings change): no second time.
        let c = DeviceId::new();
        configured.published(c);
        assert_eq!(
            configured.on_status(c, DeviceState::Online),
            StatusAction::Nothing
        );
    }

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
