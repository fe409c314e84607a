//! The live device sessions of the guard, by device, each with the token it
//! logged in with, so that a credential change (or the periodic re-check in
//! `recheck`) can end exactly the sessions whose token no longer verifies.
//!
//! A connection registers *before* its token is verified: a revocation that
//! lands between the check and the registration would otherwise find no
//! session to end. Registered-but-unverified sessions do not count as live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use lastseen_shared::{DeviceId, Secret};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

struct Entry {
    token: Secret,
    /// Fired (or dropped) to end the connection.
    kick: oneshot::Sender<()>,
    /// The token verified and the CONNECT went upstream.
    live: bool,
}

#[derive(Default)]
struct Registry {
    devices: HashMap<DeviceId, HashMap<u64, Entry>>,
    live: u64,
}

pub(crate) struct Sessions {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// One registered connection; dropping it unregisters it.
pub(crate) struct SessionHandle {
    sessions: Arc<Sessions>,
    device: DeviceId,
    id: u64,
    /// Resolves when the session is to end.
    pub(crate) kicked: oneshot::Receiver<()>,
}

/// A session to re-check: its device, its id and its token.
pub(crate) struct Held {
    pub(crate) device: DeviceId,
    pub(crate) id: u64,
    pub(crate) token: Secret,
}

impl Sessions {
    pub(crate) fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            registry: Mutex::default(),
            next_id: AtomicU64::new(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn register(self: &Arc<Self>, device: DeviceId, token: Secret) -> SessionHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (kick, kicked) = oneshot::channel();
        self.lock().devices.entry(device).or_default().insert(
            id,
            Entry {
                token,
                kick,
                live: false,
            },
        );
        SessionHandle {
            sessions: self.clone(),
            device,
            id,
            kicked,
        }
    }

    /// The session's token verified: it counts as live from now on.
    pub(crate) fn mark_live(&self, handle: &SessionHandle) {
        let mut registry = self.lock();
        let entry = registry
            .devices
            .get_mut(&handle.device)
            .and_then(|sessions| sessions.get_mut(&handle.id));
        if let Some(entry) = entry
            && !entry.live
        {
            entry.live = true;
            registry.live += 1;
            self.metrics.set_mqtt_device_sessions(registry.live);
        }
    }

    /// The sessions of one device, or of every device.
    pub(crate) fn held(&self, device: Option<DeviceId>) -> Vec<Held> {
        fn collect(held: &mut Vec<Held>, device: DeviceId, sessions: &HashMap<u64, Entry>) {
            held.extend(sessions.iter().map(|(&id, entry)| Held {
                device,
                id,
                token: entry.token.clone(),
            }));
        }
        let registry = self.lock();
        let mut held = Vec::new();
        match device {
            Some(device) => {
                if let Some(sessions) = registry.devices.get(&device) {
                    collect(&mut held, device, sessions);
                }
            }
            None => {
                for (&device, sessions) in &registry.devices {
                    collect(&mut held, device, sessions);
                }
            }
        }
        held
    }

    /// Ends one session; false if it had ended already. Only live sessions
    /// count as kicked (one still logging in is refused by its own check, or
    /// ends as soon as it is through).
    pub(crate) fn kick(&self, device: DeviceId, id: u64) -> bool {
        let Some(entry) = self.remove(device, id) else {
            return false;
        };
        if entry.live {
            self.metrics.mqtt_kicked();
        }
        let _ = entry.kick.send(());
        true
    }

    fn remove(&self, device: DeviceId, id: u64) -> Option<Entry> {
        let mut registry = self.lock();
        let sessions = registry.devices.get_mut(&device)?;
        let entry = sessions.remove(&id)?;
        if sessions.is_empty() {
            registry.devices.remove(&device);
        }
        if entry.live {
            registry.live -= 1;
            self.metrics.set_mqtt_device_sessions(registry.live);
        }
        Some(entry)
    }

    #[cfg(test)]
    fn live(&self) -> u64 {
        self.lock().live
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.sessions.remove(self.device, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kicks_one_session_and_forgets_ended_ones() {
        let sessions = Sessions::new(Arc::new(Metrics::new()));
        let device = DeviceId::new();
        let mut first = sessions.register(device, Secret::new("a"));
        let second = sessions.register(device, Secret::new("b"));
        let other = sessions.register(DeviceId::new(), Secret::new("c"));
        sessions.mark_live(&first);
        sessions.mark_live(&second);
        sessions.mark_live(&second);
        assert_eq!(sessions.live(), 2);
        assert_eq!(sessions.held(Some(device)).len(), 2);
        assert_eq!(sessions.held(None).len(), 3);

        assert!(sessions.kick(device, first.id));
        assert!(!sessions.kick(device, first.id));
        assert_eq!(first.kicked.try_recv(), Ok(()));
        assert_eq!(sessions.live(), 1);
        let held = sessions.held(Some(device));
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].token.expose(), "b");

        drop(second);
        drop(first);
        assert!(sessions.held(Some(device)).is_empty());
        assert_eq!(sessions.live(), 0);
        drop(other);
        assert!(sessions.held(None).is_empty());
    }
}
