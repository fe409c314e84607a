//! The MQTT part of the cloud's configuration: its checks. The broker
//! address follows the rules the agent's follows too
//! ([`lastseen_shared::BrokerUrl`]).

use lastseen_shared::{BrokerUrl, Topics};

use crate::config::{Config, MqttMode};

/// A shared-subscription group name is one topic level (it gets a `-frames`
/// or `-status` suffix per filter).
fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 57
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
}

impl Config {
    /// What is wrong with the MQTT settings, for [`Config::validate`].
    pub(crate) fn mqtt_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_owned());
            }
        };
        check(
            Topics::new(&self.mqtt_topic_prefix).is_ok(),
            "mqtt_topic_prefix must be topic levels separated by `/`, without `+`, `#` or a leading `$`",
        );
        check(
            is_group_name(&self.mqtt_shared_group),
            "mqtt_shared_group must be 1 to 57 letters, digits, `-` or `_`",
        );
        check(
            self.mqtt_max_in_flight >= 1,
            "mqtt_max_in_flight must be at least 1",
        );
        check(
            self.mqtt_status_queue >= 1,
            "mqtt_status_queue must be at least 1",
        );
        check(
            self.mqtt_max_message_bytes >= self.max_frame_bytes,
            "mqtt_max_message_bytes must be at least max_frame_bytes",
        );
        check(
            self.mqtt_max_connections >= 1,
            "mqtt_max_connections must be at least 1",
        );
        check(
            self.mqtt_broker_segment_bytes >= 1024,
            "mqtt_broker_segment_bytes must be at least 1024",
        );
        check(
            self.mqtt_broker_segments >= 1,
            "mqtt_broker_segments must be at least 1",
        );
        check(
            (5..=3600).contains(&self.mqtt_keep_alive_secs),
            "mqtt_keep_alive_secs must be 5 to 3600",
        );
        check(
            (64..=self.mqtt_max_message_bytes).contains(&self.mqtt_max_status_bytes),
            "mqtt_max_status_bytes must be 64 to mqtt_max_message_bytes",
        );
        check(
            (1..=86_400).contains(&self.mqtt_session_recheck_secs),
            "mqtt_session_recheck_secs must be 1 to 86400",
        );
        check(
            self.mqtt_tls_cert.is_some() == self.mqtt_tls_key.is_some(),
            "set both mqtt_tls_cert and mqtt_tls_key, or neither",
        );
        if self.mqtt == MqttMode::External {
            check(
                self.mqtt_url
                    .as_deref()
                    .is_some_and(|url| BrokerUrl::parse(url).is_ok()),
                "mqtt = \"external\" needs mqtt_url, e.g. mqtt://127.0.0.1:1883 or mqtts://broker:8883",
            );
        }
        if self.mqtt_dynsec {
            check(
                self.mqtt == MqttMode::External,
                "mqtt_dynsec = true needs mqtt = \"external\" (a Mosquitto 2 broker with the dynamic-security plugin)",
            );
            check(
                self.mqtt_username.is_some() && self.mqtt_password.is_some(),
                "mqtt_dynsec = true needs mqtt_username and mqtt_password: the dynamic-security admin the cloud provisions with",
            );
        }
        check(
            (1..=86_400).contains(&self.mqtt_dynsec_reconcile_secs),
            "mqtt_dynsec_reconcile_secs must be 1 to 86400",
        );
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_settings_are_checked_together() {
        let config = Config {
            mqtt: MqttMode::External,
            mqtt_topic_prefix: "a/#".into(),
            mqtt_shared_group: "a/b".into(),
            mqtt_tls_cert: Some("cert.pem".into()),
            mqtt_max_status_bytes: 0,
            mqtt_session_recheck_secs: 0,
            ..Config::default()
        };
        assert_eq!(
            config.mqtt_problems().len(),
            6,
            "{:?}",
            config.mqtt_problems()
        );
        assert!(Config::default().mqtt_problems().is_empty());
    }

    #[test]
    fn dynsec_needs_an_external_broker_and_its_admin() {
        let config = Config {
            mqtt_dynsec: true,
            mqtt_dynsec_reconcile_secs: 0,
            ..Config::default()
        };
        assert_eq!(
            config.mqtt_problems().len(),
            3,
            "{:?}",
            config.mqtt_problems()
        );
        let config = Config {
            mqtt: MqttMode::External,
            mqtt_url: Some("mqtt://broker:1883".into()),
            mqtt_dynsec: true,
            mqtt_username: Some("admin".into()),
            mqtt_password: Some(crate::config::Secret::new("pw")),
            ..Config::default()
        };
        assert!(
            config.mqtt_problems().is_empty(),
            "{:?}",
            config.mqtt_problems()
        );
    }
}
