//! `[cloud]`: who this device is and how it reaches the cloud.

use std::path::PathBuf;

use lastseen_shared::{DeviceId, Problems};
use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Https,
    Mqtt,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudConfig {
    /// This device's id, as shown when it was added in the cloud.
    pub device_id: Option<DeviceId>,
    /// The device token (JWT); or `token_file`.
    pub token: Option<Secret>,
    /// A file holding the device token; read at start and again after a 401,
    /// so a rotated token can be dropped in without a restart.
    pub token_file: Option<PathBuf>,
    pub transport: TransportKind,
    /// Base URL of the cloud (no `/api/v1`), `http://` or `https://`.
    pub http_url: String,
    /// `mqtt://host:port` or `mqtts://host:port`.
    pub mqtt_url: String,
    pub mqtt_topic_prefix: String,
    /// PEM file with extra root certificates (a private CA) for HTTPS and MQTTS.
    pub ca_file: Option<PathBuf>,
    /// Seconds one HTTP request may take.
    pub request_timeout_secs: u64,
    /// MQTT: frames published and not yet acknowledged, at most.
    pub max_in_flight: usize,
    /// MQTT: seconds to wait for an ack before publishing a frame again.
    pub ack_timeout_secs: u64,
    /// MQTT keep-alive in seconds.
    pub mqtt_keep_alive_secs: u64,
    /// First retry delay after a failure, in milliseconds; it doubles up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the status message (counters, spool depth) goes to the cloud.
    pub status_interval_secs: u64,
    /// HTTPS: how often gate settings are fetched from the cloud (0 = never).
    pub settings_poll_secs: u64,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            device_id: None,
            token: None,
            token_file: None,
            transport: TransportKind::Https,
            http_url: "http://127.0.0.1:8080".to_owned(),
            mqtt_url: "mqtt://127.0.0.1:1883".to_owned(),
            mqtt_topic_prefix: lastseen_shared::topics::DEFAULT_PREFIX.to_owned(),
            ca_file: None,
            request_timeout_secs: 30,
            max_in_flight: 16,
            ack_timeout_secs: 30,
            mqtt_keep_alive_secs: 30,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            status_interval_secs: 60,
            settings_poll_secs: 60,
        }
    }
}

impl CloudConfig {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(
            self.device_id.is_some(),
            "cloud.device_id is required (the id shown when the camera was added)",
        );
        problems.check(
            self.token.is_some() != self.token_file.is_some(),
            "set exactly one of cloud.token and cloud.token_file",
        );
        problems.check(
            self.http_url.starts_with("http://") || self.http_url.starts_with("https://"),
            "cloud.http_url must be an http:// or https:// URL",
        );
        problems.check(
            self.mqtt_url.starts_with("mqtt://") || self.mqtt_url.starts_with("mqtts://"),
            "cloud.mqtt_url must be an mqtt:// or mqtts:// URL",
        );
        problems.check(
            lastseen_shared::Topics::new(&self.mqtt_topic_prefix).is_ok(),
            "cloud.mqtt_topic_prefix must be non-empty levels separated by `/`, without `+`, `#` or a leading `$`",
        );
        problems.check(
            self.request_timeout_secs >= 1,
            "cloud.request_timeout_secs must be at least 1",
        );
        problems.check(
            self.max_in_flight >= 1,
            "cloud.max_in_flight must be at least 1",
        );
        problems.check(
            self.ack_timeout_secs >= 1,
            "cloud.ack_timeout_secs must be at least 1",
        );
        problems.check(
            self.mqtt_keep_alive_secs >= 5,
            "cloud.mqtt_keep_alive_secs must be at least 5",
        );
        problems.check(
            self.backoff_initial_ms >= 1 && self.backoff_initial_ms <= self.backoff_max_ms,
            "cloud.backoff_initial_ms must be at least 1 and at most cloud.backoff_max_ms",
        );
        problems.check(
            self.status_interval_secs >= 1,
            "cloud.status_interval_secs must be at least 1",
        );
    }
}
