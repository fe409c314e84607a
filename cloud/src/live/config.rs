//! The live feed's settings: how many sessions, how much buffering, and the
//! timers of a live WebSocket.

use std::time::Duration;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveConfig {
    /// Live events buffered per user for a slow browser before it misses some.
    #[serde(rename = "live_channel_capacity")]
    pub channel_capacity: usize,
    /// Time a live WebSocket has to send its `auth` message.
    #[serde(rename = "live_auth_timeout_secs")]
    pub auth_timeout_secs: u64,
    /// Interval of live WebSocket pings; the session is also re-checked then.
    #[serde(rename = "live_ping_interval_secs")]
    pub ping_interval_secs: u64,
    /// Live WebSockets open at once per user; one more is closed after its
    /// `auth` message (close code 4429).
    #[serde(rename = "live_max_sockets_per_user")]
    pub max_sockets_per_user: usize,
    /// Live WebSockets that have not authenticated yet, at once; one more
    /// handshake gets 503 `overloaded`.
    #[serde(rename = "live_max_pending")]
    pub max_pending: usize,
    /// A live message (or ping) the browser does not take within this time
    /// closes its socket.
    #[serde(rename = "live_send_timeout_secs")]
    pub send_timeout_secs: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            channel_capacity: 64,
            auth_timeout_secs: 10,
            ping_interval_secs: 30,
            max_sockets_per_user: 16,
            max_pending: 256,
            send_timeout_secs: 10,
        }
    }
}

impl LiveConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.channel_capacity >= 1,
            "live_channel_capacity must be at least 1",
        );
        problems.check(
            self.auth_timeout_secs >= 1,
            "live_auth_timeout_secs must be at least 1",
        );
        problems.check(
            self.ping_interval_secs >= 1,
            "live_ping_interval_secs must be at least 1",
        );
        problems.check(
            self.max_sockets_per_user >= 1 && self.max_pending >= 1 && self.send_timeout_secs >= 1,
            "live_max_sockets_per_user, live_max_pending and live_send_timeout_secs must be at least 1",
        );
    }

    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_secs)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }
}
