//! The MQTT part of the cloud's configuration: its keys, defaults and
//! checks. The broker address follows the rules the agent's follows too
//! ([`lastseen_shared::BrokerUrl`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use lastseen_shared::{BrokerUrl, Problems, Secret, Topics};
use serde::{Deserialize, Serialize};

/// The MQTT transport's settings (`mqtt` and `mqtt_*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MqttConfig {
    /// MQTT transport: `embedded` (a broker inside the cloud on
    /// `mqtt_listen`), `external` (a client of the broker at `mqtt_url`) or `off`.
    #[serde(rename = "mqtt")]
    pub mode: MqttMode,
    /// Where the embedded broker listens.
    #[serde(rename = "mqtt_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain and key: the embedded broker then speaks TLS only.
    #[serde(rename = "mqtt_tls_cert")]
    pub tls_cert: Option<PathBuf>,
    #[serde(rename = "mqtt_tls_key")]
    pub tls_key: Option<PathBuf>,
    /// The external broker, `mqtt://host:port` or `mqtts://host:port`.
    #[serde(rename = "mqtt_url")]
    pub url: Option<String>,
    /// Credentials for the external broker, if it wants any.
    #[serde(rename = "mqtt_username")]
    pub username: Option<String>,
    #[serde(rename = "mqtt_password")]
    pub password: Option<Secret>,
    /// First levels of every topic: `{prefix}/{device}/frames|ack|config|status`.
    #[serde(rename = "mqtt_topic_prefix")]
    pub topic_prefix: String,
    /// Shared-subscription group: cloud nodes in one group split the frames.
    #[serde(rename = "mqtt_shared_group")]
    pub shared_group: String,
    /// Frames from MQTT being ingested at once by this node; one beyond it
    /// gets no ack (counted as `overloaded`) and its device sends it again.
    #[serde(rename = "mqtt_max_in_flight")]
    pub max_in_flight: usize,
    /// Devices with a status waiting to be recorded (one worker records
    /// them in turn; a newer status replaces a device's waiting one). A
    /// status from another device past it is dropped and counted.
    #[serde(rename = "mqtt_status_queue")]
    pub status_queue: usize,
    /// Largest MQTT message the broker and the cloud accept.
    #[serde(rename = "mqtt_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Most MQTT connections the embedded broker holds.
    #[serde(rename = "mqtt_max_connections")]
    pub max_connections: usize,
    /// The embedded broker keeps recent messages of each topic in memory, in
    /// at most this many segments of about this many bytes (a segment may go
    /// over by its last message); a subscriber further behind loses messages.
    #[serde(rename = "mqtt_broker_segment_bytes")]
    pub broker_segment_bytes: usize,
    #[serde(rename = "mqtt_broker_segments")]
    pub broker_segments: usize,
    #[serde(rename = "mqtt_keep_alive_secs")]
    pub keep_alive_secs: u64,
    /// With `mqtt = "external"`: the broker is Mosquitto 2 with its
    /// dynamic-security plugin, and the cloud gives each device a login and
    /// a role limited to its own topics; `mqtt_username`/`mqtt_password`
    /// are then the plugin's admin (see docs/mqtt-security.md).
    #[serde(rename = "mqtt_dynsec")]
    pub dynsec: bool,
    /// How often the cloud compares the broker's device logins with the
    /// store and deletes those of unknown, revoked or expired devices.
    #[serde(rename = "mqtt_dynsec_reconcile_secs")]
    pub dynsec_reconcile_secs: u64,
    /// Largest status message (and last will) a device may publish; with
    /// `mqtt_max_message_bytes` for frames, it bounds what devices can make
    /// the embedded broker retain: one status per device.
    #[serde(rename = "mqtt_max_status_bytes")]
    pub max_status_bytes: usize,
    /// Every live device session's token is verified again this often, so
    /// expiry and changes made by another cloud process end sessions too.
    #[serde(rename = "mqtt_session_recheck_secs")]
    pub session_recheck_secs: u64,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            mode: MqttMode::Embedded,
            listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            tls_cert: None,
            tls_key: None,
            url: None,
            username: None,
            password: None,
            topic_prefix: lastseen_shared::topics::DEFAULT_PREFIX.to_owned(),
            shared_group: "ingest".to_owned(),
            max_in_flight: 64,
            status_queue: 1024,
            max_message_bytes: 10 * 1024 * 1024 + 64 * 1024,
            max_connections: 10_000,
            broker_segment_bytes: 4 * 1024 * 1024,
            broker_segments: 4,
            keep_alive_secs: 30,
            dynsec: false,
            dynsec_reconcile_secs: 300,
            max_status_bytes: 16 * 1024,
            session_recheck_secs: 60,
        }
    }
}

/// How the cloud takes part in MQTT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum MqttMode {
    /// A broker inside the cloud process (rumqttd), on `mqtt_listen`.
    #[default]
    Embedded,
    /// A client of the broker at `mqtt_url` (Mosquitto, EMQX ...).
    External,
    /// No MQTT: devices use HTTPS only.
    Off,
}

/// A shared-subscription group name is one topic level (it gets a `-frames`
/// or `-status` suffix per filter).
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 57
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

impl MqttConfig {
    pub fn check(&self, problems: &mut Problems) {
        let mut check = |ok: bool, problem: &str| problems.check(ok, problem);
        check(
            Topics::new(&self.topic_prefix).is_ok(),
            "mqtt_topic_prefix must be topic levels separated by `/`, without `+`, `#` or a leading `$`",
        );
        check(
            is_group_name(&self.shared_group),
            "mqtt_shared_group must be 1 to 57 letters, digits, `-` or `_`",
        );
        check(
            self.max_in_flight >= 1,
            "mqtt_max_in_flight must be at least 1",
        );
        check(
            self.status_queue >= 1,
            "mqtt_status_queue must be at least 1",
        );
        check(
            self.max_connections >= 1,
            "mqtt_max_connections must be at least 1",
        );
        check(
            self.broker_segment_bytes >= 1024,
            "mqtt_broker_segment_bytes must be at least 1024",
        );
        check(
            self.broker_segments >= 1,
            "mqtt_broker_segments must be at least 1",
        );
        check(
            (5..=3600).contains(&self.keep_alive_secs),
            "mqtt_keep_alive_secs must be 5 to 3600",
        );
        check(
            (64..=self.max_message_bytes).contains(&self.max_status_bytes),
            "mqtt_max_status_bytes must be 64 to mqtt_max_message_bytes",
        );
        check(
            (1..=86_400).contains(&self.session_recheck_secs),
            "mqtt_session_recheck_secs must be 1 to 86400",
        );
        check(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "set both mqtt_tls_cert and mqtt_tls_key, or neither",
        );
        if self.mode == MqttMode::External {
            check(
                self.url
                    .as_deref()
                    .is_some_and(|url| BrokerUrl::parse(url).is_ok()),
                "mqtt = \"external\" needs mqtt_url, e.g. mqtt://127.0.0.1:1883 or mqtts://broker:8883",
            );
        }
        if self.dynsec {
            check(
                self.mode == MqttMode::External,
                "mqtt_dynsec = true needs mqtt = \"external\" (a Mosquitto 2 broker with the dynamic-security plugin)",
            );
            check(
                self.username.is_some() && self.password.is_some(),
                "mqtt_dynsec = true needs mqtt_username and mqtt_password: the dynamic-security admin the cloud provisions with",
            );
        }
        check(
            (1..=86_400).contains(&self.dynsec_reconcile_secs),
            "mqtt_dynsec_reconcile_secs must be 1 to 86400",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &MqttConfig) -> Vec<String> {
        let mut problems = Problems::default();
        config.check(&mut problems);
        problems.into_result().err().unwrap_or_default()
    }

    #[test]
    fn mqtt_settings_are_checked_together() {
        let config = MqttConfig {
            mode: MqttMode::External,
            topic_prefix: "a/#".into(),
            shared_group: "a/b".into(),
            tls_cert: Some("cert.pem".into()),
            max_status_bytes: 0,
            session_recheck_secs: 0,
            ..MqttConfig::default()
        };
        assert_eq!(problems(&config).len(), 6, "{:?}", problems(&config));
        assert!(problems(&MqttConfig::default()).is_empty());
    }

    #[test]
    fn dynsec_needs_an_external_broker_and_its_admin() {
        let config = MqttConfig {
            dynsec: true,
            dynsec_reconcile_secs: 0,
            ..MqttConfig::default()
        };
        assert_eq!(problems(&config).len(), 3, "{:?}", problems(&config));
        let config = MqttConfig {
            mode: MqttMode::External,
            url: Some("mqtt://broker:1883".into()),
            dynsec: true,
            username: Some("admin".into()),
            password: Some(Secret::new("pw")),
            ..MqttConfig::default()
        };
        assert!(problems(&config).is_empty(), "{:?}", problems(&config));
    }
}
