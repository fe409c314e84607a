//! Counters of what the cloud did, as Prometheus text at `GET /metrics`.
//!
//! A small hand-written registry: atomics for plain counters, a mutex-held
//! map for the labelled ones (labels come from fixed sets: transports, the
//! REST error codes, the drop reasons), and [`Histogram`] for latencies.
//! Every metric name is in this module; `scrape.rs` serves them.

mod histogram;
mod render;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub use histogram::Histogram;

/// How a frame reached the cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    Http,
    Mqtt,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Mqtt => "mqtt",
        }
    }
}

/// What became of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOutcome {
    /// Stored now.
    Stored,
    /// Stored before; answered from the store.
    Resent,
    /// Refused for good, with the REST error code (`unprocessable_image` ...).
    Rejected(&'static str),
    /// Not taken now: no MQTT ack, or an HTTP 5xx; the reason is a label.
    Dropped(&'static str),
}

/// What a device tried that the embedded broker's guard refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttDenial {
    Connect,
    Publish,
    Subscribe,
}

impl MqttDenial {
    const ALL: [MqttDenial; 3] = [Self::Connect, Self::Publish, Self::Subscribe];

    fn as_str(self) -> &'static str {
        match self {
            MqttDenial::Connect => "connect",
            MqttDenial::Publish => "publish",
            MqttDenial::Subscribe => "subscribe",
        }
    }
}

/// Why the HTTP listener closed a connection before its client did
/// (`cloud/src/serve`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionClose {
    /// No complete request head within `http_header_timeout_secs`.
    Header,
    /// Idle between requests for `http_idle_timeout_secs`.
    Idle,
    /// The client stopped reading a response for `http_idle_timeout_secs`.
    Send,
    /// A request body came slower than `http_min_body_bytes_per_sec` (408).
    Body,
}

impl ConnectionClose {
    const ALL: [ConnectionClose; 4] = [Self::Header, Self::Idle, Self::Send, Self::Body];

    fn as_str(self) -> &'static str {
        match self {
            ConnectionClose::Header => "header",
            ConnectionClose::Idle => "idle",
            ConnectionClose::Send => "send",
            ConnectionClose::Body => "body",
        }
    }
}

/// Why an MQTT status was not recorded although it was well formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusSkip {
    /// A newer status of the same device took its place in the queue.
    Superseded,
    /// `mqtt_status_queue` devices already had a status waiting.
    QueueFull,
}

/// A cache's counters, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
    pub capacity: u64,
}

/// Gauges read when the metrics are rendered.
pub struct Gauges<'a> {
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub detection_seconds: &'a Histogram,
    pub password_hashing: crate::bounded::WorkLoad,
    pub renders: crate::bounded::WorkLoad,
    pub thumbnail_cache: CacheStats,
}

#[derive(Default)]
pub struct Metrics {
    received: [AtomicU64; 2],
    stored: [AtomicU64; 2],
    resent: [AtomicU64; 2],
    rejected: Mutex<BTreeMap<(Transport, &'static str), u64>>,
    dropped: Mutex<BTreeMap<(Transport, &'static str), u64>>,
    acks_sent: AtomicU64,
    statuses: AtomicU64,
    statuses_dropped: AtomicU64,
    statuses_superseded: AtomicU64,
    statuses_queue_full: AtomicU64,
    statuses_waiting: AtomicU64,
    statuses_waiting_peak: AtomicU64,
    configs_published: AtomicU64,
    mqtt_denied: [AtomicU64; 3],
    mqtt_kicked: AtomicU64,
    mqtt_device_sessions: AtomicU64,
    http_connections_open: AtomicU64,
    http_connections_refused: AtomicU64,
    http_connections_timed_out: [AtomicU64; 4],
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn frame(&self, transport: Transport, outcome: FrameOutcome) {
        let index = transport as usize;
        self.received[index].fetch_add(1, Ordering::Relaxed);
        match outcome {
            FrameOutcome::Stored => {
                self.stored[index].fetch_add(1, Ordering::Relaxed);
            }
            FrameOutcome::Resent => {
                self.resent[index].fetch_add(1, Ordering::Relaxed);
            }
            FrameOutcome::Rejected(code) => bump(&self.rejected, transport, code),
            FrameOutcome::Dropped(reason) => bump(&self.dropped, transport, reason),
        }
    }

    pub fn ack_sent(&self) {
        self.acks_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn status_received(&self, recorded: bool) {
        let counter = if recorded {
            &self.statuses
        } else {
            &self.statuses_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn status_skipped(&self, why: StatusSkip) {
        let counter = match why {
            StatusSkip::Superseded => &self.statuses_superseded,
            StatusSkip::QueueFull => &self.statuses_queue_full,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Devices with an MQTT status waiting to be recorded.
    pub fn set_statuses_waiting(&self, waiting: u64) {
        self.statuses_waiting.store(waiting, Ordering::Relaxed);
        self.statuses_waiting_peak
            .fetch_max(waiting, Ordering::Relaxed);
    }

    pub fn config_published(&self) {
        self.configs_published.fetch_add(1, Ordering::Relaxed);
    }

    pub fn mqtt_denied(&self, action: MqttDenial) {
        self.mqtt_denied[action as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn mqtt_kicked(&self) {
        self.mqtt_kicked.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_mqtt_device_sessions(&self, live: u64) {
        self.mqtt_device_sessions.store(live, Ordering::Relaxed);
    }

    pub fn http_connection_opened(&self) {
        self.http_connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn http_connection_closed(&self) {
        self.http_connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn http_connection_refused(&self) {
        self.http_connections_refused
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn http_connection_timed_out(&self, reason: ConnectionClose) {
        self.http_connections_timed_out[reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

fn bump(
    map: &Mutex<BTreeMap<(Transport, &'static str), u64>>,
    transport: Transport,
    label: &'static str,
) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *map.entry((transport, label)).or_default() += 1;
}
