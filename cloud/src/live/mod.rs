//! Live sightings: each newly stored frame, fanned out to its owner's open
//! browser sessions (`GET /api/v1/live`, `http/live.rs`).
//!
//! One bounded `broadcast` channel per user with at least one subscriber.
//! A subscriber that falls more than `capacity` events behind misses the
//! oldest ones (counted in [`LiveHub::missed`]) instead of growing memory.
//! Ingest feeds the hub through [`FrameObserver`] and knows nothing of it.
//! The hub also bounds the sessions: `live_max_sockets_per_user` per user
//! ([`LiveHub::try_subscribe`]) and `live_max_pending` not yet authenticated
//! ([`LiveHub::try_handshake`]), and keeps the sessions' timers ([`LiveConfig`]).

mod config;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use lastseen_shared::{Detection, DeviceId, FrameId, UserId};
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

pub use config::LiveConfig;

use crate::ingest::FrameObserver;
use crate::store::StoredFrame;

/// What the page shows for a new frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveFrame {
    pub frame_id: FrameId,
    pub device_id: DeviceId,
    pub device_name: String,
    pub captured_at: DateTime<Utc>,
    /// In score order, highest first.
    pub detections: Vec<Detection>,
}

impl From<&StoredFrame> for LiveFrame {
    fn from(stored: &StoredFrame) -> Self {
        Self {
            frame_id: stored.frame.id,
            device_id: stored.frame.device,
            device_name: stored.frame.device_name.clone(),
            captured_at: stored.frame.captured_at,
            detections: stored.detections.clone(),
        }
    }
}

/// What a subscriber receives next.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveEvent {
    Frame(Arc<LiveFrame>),
    /// The subscriber was too slow and this many frames were skipped.
    Missed(u64),
}

/// A live session the hub refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("this user has as many live sessions open as allowed")]
    TooManySockets,
    #[error("too many live sessions are waiting to authenticate")]
    TooManyPending,
}

/// A live session that has not authenticated yet; it counts against
/// `live_max_pending` until dropped.
pub struct Handshake {
    _slot: OwnedSemaphorePermit,
}

type Channels = HashMap<UserId, broadcast::Sender<Arc<LiveFrame>>>;

struct Shared {
    config: LiveConfig,
    pending: Arc<Semaphore>,
    channels: Mutex<Channels>,
    missed: AtomicU64,
}

impl Shared {
    // A panic while holding the map leaves it consistent (every operation is
    // a single insert/remove), so a poisoned lock is still usable.
    fn channels(&self) -> std::sync::MutexGuard<'_, Channels> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The per-user fan-out. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    shared: Arc<Shared>,
}

impl LiveHub {
    pub fn new(config: &LiveConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config: config.clone(),
                pending: Arc::new(Semaphore::new(
                    config.max_pending.min(Semaphore::MAX_PERMITS),
                )),
                channels: Mutex::new(HashMap::new()),
                missed: AtomicU64::new(0),
            }),
        }
    }

    /// The settings of the sessions, their timers included.
    pub fn config(&self) -> &LiveConfig {
        &self.shared.config
    }

    /// Events for `user` from now on, until the subscription is dropped.
    pub fn subscribe(&self, user: UserId) -> Subscription {
        let mut channels = self.shared.channels();
        let receiver = channels
            .entry(user)
            .or_insert_with(|| broadcast::channel(self.shared.config.channel_capacity.max(1)).0)
            .subscribe();
        Subscription {
            user,
            receiver,
            shared: self.shared.clone(),
        }
    }

    /// Like [`Self::subscribe`], unless `user` already has `live_max_sockets_per_user`
    /// subscriptions (checked and taken under one lock).
    pub fn try_subscribe(&self, user: UserId) -> Result<Subscription, LiveError> {
        let mut channels = self.shared.channels();
        let sender = channels
            .entry(user)
            .or_insert_with(|| broadcast::channel(self.shared.config.channel_capacity.max(1)).0);
        if sender.receiver_count() >= self.shared.config.max_sockets_per_user {
            return Err(LiveError::TooManySockets);
        }
        Ok(Subscription {
            user,
            receiver: sender.subscribe(),
            shared: self.shared.clone(),
        })
    }

    /// A place among the sessions waiting to authenticate, if one is free.
    pub fn try_handshake(&self) -> Result<Handshake, LiveError> {
        self.shared
            .pending
            .clone()
            .try_acquire_owned()
            .map(|slot| Handshake { _slot: slot })
            .map_err(|_| LiveError::TooManyPending)
    }

    /// Sends `frame` to `owner`'s subscribers; nothing happens without any.
    pub fn publish(&self, owner: UserId, frame: LiveFrame) {
        let channels = self.shared.channels();
        if let Some(sender) = channels.get(&owner) {
            // Err only when no receiver is left, and the last one leaving
            // removes the channel itself.
            let _ = sender.send(Arc::new(frame));
        }
    }

    /// Frames skipped by slow subscribers since start.
    pub fn missed(&self) -> u64 {
        self.shared.missed.load(Ordering::Relaxed)
    }

    /// Users with at least one subscriber.
    #[cfg(test)]
    fn users(&self) -> usize {
        self.shared.channels().len()
    }
}

impl FrameObserver for LiveHub {
    fn frame_stored(&self, owner: UserId, frame: &StoredFrame) {
        self.publish(owner, LiveFrame::from(frame));
    }
}

/// One browser session's view of the hub.
pub struct Subscription {
    user: UserId,
    receiver: broadcast::Receiver<Arc<LiveFrame>>,
    shared: Arc<Shared>,
}

impl Subscription {
    /// The next event. Pending until there is one.
    pub async fn next(&mut self) -> LiveEvent {
        match self.receiver.recv().await {
            Ok(frame) => LiveEvent::Frame(frame),
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                self.shared.missed.fetch_add(skipped, Ordering::Relaxed);
                LiveEvent::Missed(skipped)
            }
            // The sender lives in the map while this receiver exists.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.shared.channels();
        // This receiver still counts until the end of `drop`.
        if channels
            .get(&self.user)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            channels.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_shared::Label;

    fn frame(device_name: &str) -> LiveFrame {
        LiveFrame {
            frame_id: FrameId::new(),
            device_id: DeviceId::new(),
            device_name: device_name.to_owned(),
            captured_at: Utc::now(),
            detections: vec![Detection {
                label: Label::parse("cup").expect("label"),
                score: 0.9,
                bbox: [1.0, 2.0, 3.0, 4.0].into(),
            }],
        }
    }

    fn name_of(event: LiveEvent) -> String {
        match event {
            LiveEvent::Frame(frame) => frame.device_name.clone(),
            LiveEvent::Missed(n) => format!("missed {n}"),
        }
    }

    #[tokio::test]
    async fn a_frame_reaches_every_subscriber_of_its_owner_only() {
        let hub = LiveHub::new(&LiveConfig {
            channel_capacity: 8,
            ..LiveConfig::default()
        });
        let (alice, bob) = (UserId::new(), UserId::new());
        let mut alice_phone = hub.subscribe(alice);
        let mut alice_laptop = hub.subscribe(alice);
        let mut bob_phone = hub.subscribe(bob);
        hub.publish(alice, frame("kitchen"));
        hub.publish(bob, frame("garage"));
        assert_eq!(name_of(alice_phone.next().await), "kitchen");
        assert_eq!(name_of(alice_laptop.next().await), "kitchen");
        assert_eq!(name_of(bob_phone.next().await), "garage");
        // Nothing else is queued for Alice.
        let more = tokio::time::timeout(std::time::Duration::from_millis(20), alice_phone.next());
        assert!(more.await.is_err(), "alice got bob's frame");
    }

    #[tokio::test]
    async fn a_slow_subscriber_misses_the_oldest_frames_and_is_told_how_many() {
        let hub = LiveHub::new(&LiveConfig {
            channel_capacity: 2,
            ..LiveConfig::default()
        });
        let user = UserId::new();
        let mut slow = hub.subscribe(user);
        for name in ["1", "2", "3", "4", "5"] {
            hub.publish(user, frame(name));
        }
        assert_eq!(name_of(slow.next().await), "missed 3");
        assert_eq!(name_of(slow.next().await), "4");
        assert_eq!(name_of(slow.next().await), "5");
        assert_eq!(hub.missed(), 3);
    }

    #[test]
    fn publishing_without_subscribers_keeps_nothing() {
        let hub = LiveHub::new(&LiveConfig {
            channel_capacity: 4,
            ..LiveConfig::default()
        });
        hub.publish(UserId::new(), frame("nobody"));
        assert_eq!(hub.users(), 0);
    }

    #[test]
    fn the_last_subscription_dropped_removes_the_users_channel() {
        let hub = LiveHub::new(&LiveConfig {
            channel_capacity: 4,
            ..LiveConfig::default()
        });
        let user = UserId::new();
        let first = hub.subscribe(user);
        let second = hub.subscribe(user);
        drop(first);
        assert_eq!(hub.users(), 1);
        drop(second);
        assert_eq!(hub.users(), 0);
    }

    #[test]
    fn subscriptions_and_handshakes_are_bounded() {
        let hub = LiveHub::new(&LiveConfig {
            channel_capacity: 4,
            max_sockets_per_user: 2,
            max_pending: 1,
            ..LiveConfig::default()
        });
        let (alice, bob) = (UserId::new(), UserId::new());
        let first = hub.try_subscribe(alice).expect("first");
        let _second = hub.try_subscribe(alice).expect("second");
        assert_eq!(
            hub.try_subscribe(alice).err(),
            Some(LiveError::TooManySockets)
        );
        assert!(hub.try_subscribe(bob).is_ok(), "another user has room");
        drop(first);
        assert!(
            hub.try_subscribe(alice).is_ok(),
            "room again after one left"
        );
        let waiting = hub.try_handshake().expect("one pending");
        assert!(matches!(
            hub.try_handshake(),
            Err(LiveError::TooManyPending)
        ));
        drop(waiting);
        assert!(hub.try_handshake().is_ok());
    }

    #[test]
    fn the_frame_is_serialised_with_the_fields_the_page_reads() {
        let value = serde_json::to_value(frame("hall")).expect("serialises");
        for field in [
            "frame_id",
            "device_id",
            "device_name",
            "captured_at",
            "detections",
        ] {
            assert!(value.get(field).is_some(), "{field} missing in {value}");
        }
        assert_eq!(value["detections"][0]["label"], "cup");
    }
}
