//! The MQTT part of the cloud's configuration: checks, and the broker
//! address taken apart.

use lastseen_shared::Topics;

use crate::config::{Config, MqttMode};

/// A broker to connect to, from `mqtt://host:port` or `mqtts://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    /// The port defaults to 1883 (`mqtt`) or 8883 (`mqtts`); nothing may
    /// follow it (credentials have their own settings).
    pub fn parse(url: &str) -> Option<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            (true, url.strip_prefix("mqtts://")?)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse().ok()?)
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let valid = !host.is_empty()
            && port != 0
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        valid.then(|| Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
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
                    .and_then(BrokerUrl::parse)
                    .is_some(),
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

    fn url(host: &str, port: u16, tls: bool) -> Option<BrokerUrl> {
        Some(BrokerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    #[test]
    fn broker_urls_name_host_port_and_tls() {
        assert_eq!(
            BrokerUrl::parse("mqtt://127.0.0.1:1883"),
            url("127.0.0.1", 1883, false)
        );
        assert_eq!(
            BrokerUrl::parse("mqtts://broker.example"),
            url("broker.example", 8883, true)
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://[::1]:1884/"),
            url("::1", 1884, false)
        );
        for bad in [
            "",
            "127.0.0.1:1883",
            "http://h:1883",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://user:pw@h:1883",
            "mqtt://h:1883/path",
        ] {
            assert_eq!(BrokerUrl::parse(bad), None, "{bad}");
        }
    }

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
