//! The settings of a cloud under test: [`Config::for_tests`] and the brokers
//! it can take MQTT frames through.

use std::net::SocketAddr;
use std::path::Path;

use lastseen_shared::Secret;

use crate::config::Config;
use crate::mqtt::MqttMode;

/// The JWT key of test clouds, so a test can forge tokens with it.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

/// The password of the users the tests make.
pub const PASSWORD: &str = "correct horse battery staple";

/// The machine's Mosquitto, which the external-broker tests share.
pub const MOSQUITTO: &str = "127.0.0.1:1883";

impl Config {
    /// Settings every test cloud shares: its data in `data_dir`, HTTP on a
    /// free loopback port, cheap password hashing, one detector worker with
    /// the fixtures' model, no MQTT (the embedded broker would want 1883,
    /// which this machine's Mosquitto holds: see [`CloudMqtt`]).
    pub fn for_tests(data_dir: &Path) -> Self {
        let mut config = Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            log: "warn".to_owned(),
            ..Self::default()
        };
        config.detect.model_path = super::model_path();
        config.detect.workers = 1;
        config.detect.threads = 1;
        config.auth.argon2_memory_kib = 256;
        config.auth.argon2_iterations = 1;
        // Every test client registers from 127.0.0.1; the throttling tests
        // set their own limits.
        config.auth.register_max_per_client = 1000;
        config.auth.jwt_secret = Some(Secret::new(TEST_JWT_SECRET));
        config.mqtt.mode = MqttMode::Off;
        config
    }
}

/// How a test cloud takes MQTT frames.
#[derive(Clone, Debug)]
pub enum CloudMqtt {
    /// HTTPS only.
    Off,
    /// Its own rumqttd on a free loopback port, kept across restarts.
    Embedded,
    /// A client of the machine's Mosquitto ([`MOSQUITTO`]) under a topic
    /// prefix of the caller's own, so tests do not see each other's devices.
    Mosquitto { prefix: String },
}

impl CloudMqtt {
    /// Points `config` at this broker.
    pub fn apply(&self, config: &mut Config) -> std::io::Result<()> {
        match self {
            Self::Off => config.mqtt.mode = MqttMode::Off,
            Self::Embedded => {
                config.mqtt.mode = MqttMode::Embedded;
                config.mqtt.listen = crate::free_loopback_port()?;
            }
            Self::Mosquitto { prefix } => {
                config.mqtt.mode = MqttMode::External;
                config.mqtt.url = Some(format!("mqtt://{MOSQUITTO}"));
                config.mqtt.topic_prefix = prefix.clone();
            }
        }
        Ok(())
    }
}
