//! The listener's settings (`http_*`): how long and how many connections.

use std::time::Duration;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

use super::Drain;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServeConfig {
    /// Time to send a whole request head, from the connection's start or from
    /// the first byte of a later request.
    #[serde(rename = "http_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Time a connection may sit idle between requests, or leave a response
    /// unread, before it is closed.
    #[serde(rename = "http_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// A request body must bring at least this many bytes per second,
    /// measured over each `http_body_rate_window_secs`, or the request gets
    /// 408 and the connection is closed.
    #[serde(rename = "http_min_body_bytes_per_sec")]
    pub min_body_bytes_per_sec: u64,
    #[serde(rename = "http_body_rate_window_secs")]
    pub body_rate_window_secs: u64,
    /// HTTP connections open at once (per listener); one more is answered 503
    /// and closed at once. Keep it below the process's open-file limit.
    #[serde(rename = "http_max_connections")]
    pub max_connections: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 20,
            idle_timeout_secs: 60,
            min_body_bytes_per_sec: 1024,
            body_rate_window_secs: 10,
            max_connections: 2048,
        }
    }
}

impl ServeConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.header_timeout_secs >= 1
                && self.idle_timeout_secs >= 1
                && self.body_rate_window_secs >= 1,
            "http_header_timeout_secs, http_idle_timeout_secs and http_body_rate_window_secs must be at least 1",
        );
        problems.check(
            self.min_body_bytes_per_sec >= 1,
            "http_min_body_bytes_per_sec must be at least 1",
        );
        problems.check(
            self.max_connections >= 1,
            "http_max_connections must be at least 1",
        );
    }

    /// The limits of a listener whose requests are at most `max_body_bytes`.
    pub fn limits(&self, max_body_bytes: usize) -> ServeLimits {
        ServeLimits {
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            min_body_bytes_per_sec: self.min_body_bytes_per_sec,
            body_rate_window: Duration::from_secs(self.body_rate_window_secs),
            max_connections: self.max_connections,
            // As much as a request could have sent, for as long as a
            // connection may idle.
            drain: Drain {
                bytes: max_body_bytes,
                time: Duration::from_secs(self.idle_timeout_secs),
            },
        }
    }
}

/// The limits of one listener, as the connections use them.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub min_body_bytes_per_sec: u64,
    pub body_rate_window: Duration,
    pub max_connections: usize,
    /// What is read and dropped after an answer that ends the connection.
    pub drain: Drain,
}
