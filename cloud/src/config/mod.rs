//! The cloud's configuration: embedded defaults, then an optional TOML file,
//! then `LASTSEEN_*` environment variables, then command-line flags.
//!
//! This module only loads and composes. Each section is owned by the module
//! that uses it, with its keys, defaults and checks (`detect/config.rs`,
//! `auth/config.rs` ...). The keys stay flat (`queue_depth`, `mqtt_url`):
//! each section is flattened into the one table of the file, so a key names
//! one setting wherever it is written. [`Config::validate`] reports every
//! problem at once. docs/configuration.md lists every key.

mod cli;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

pub use cli::{Cli, Command, Overrides};
pub use lastseen_shared::Secret;

use crate::auth::AuthConfig;
use crate::blob::BlobConfig;
use crate::detect::DetectConfig;
use crate::devices::DevicesConfig;
use crate::http::HttpConfig;
use crate::ingest::IngestConfig;
use crate::live::LiveConfig;
use crate::mqtt::MqttConfig;
use crate::query::QueryConfig;
use crate::retention::RetentionConfig;
use crate::scrape::MetricsConfig;
use crate::serve::ServeConfig;
use crate::store::StoreConfig;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP listen address.
    pub bind: SocketAddr,
    /// Root for everything the embedded defaults keep on disk.
    pub data_dir: PathBuf,
    /// `tracing` filter, e.g. `info` or `lastseen_cloud=debug,info`.
    pub log: String,
    #[serde(flatten)]
    pub serve: ServeConfig,
    #[serde(flatten)]
    pub http: HttpConfig,
    #[serde(flatten)]
    pub metrics: MetricsConfig,
    #[serde(flatten)]
    pub store: StoreConfig,
    #[serde(flatten)]
    pub blob: BlobConfig,
    #[serde(flatten)]
    pub auth: AuthConfig,
    #[serde(flatten)]
    pub devices: DevicesConfig,
    #[serde(flatten)]
    pub detect: DetectConfig,
    #[serde(flatten)]
    pub ingest: IngestConfig,
    #[serde(flatten)]
    pub retention: RetentionConfig,
    #[serde(flatten)]
    pub query: QueryConfig,
    #[serde(flatten)]
    pub live: LiveConfig,
    #[serde(flatten)]
    pub mqtt: MqttConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            log: "info".to_owned(),
            serve: ServeConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig::default(),
            store: StoreConfig::default(),
            blob: BlobConfig::default(),
            auth: AuthConfig::default(),
            devices: DevicesConfig::default(),
            detect: DetectConfig::default(),
            ingest: IngestConfig::default(),
            retention: RetentionConfig::default(),
            query: QueryConfig::default(),
            live: LiveConfig::default(),
            mqtt: MqttConfig::default(),
        }
    }
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Every key a file, a `LASTSEEN_<KEY>` variable or a flag may set.
    pub fn keys() -> BTreeSet<String> {
        serde_json::to_value(Config::default())
            .ok()
            .and_then(|value| value.as_object().map(|keys| keys.keys().cloned().collect()))
            .unwrap_or_default()
    }

    /// Loads defaults, then `file` (when given), then `LASTSEEN_*` variables,
    /// then the flags that were set.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self, ConfigError> {
        let keys = Self::keys();
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            refuse_unknown_keys(file, &keys)?;
            figment = figment.merge(Toml::file_exact(file));
        }
        // Variables meant for other lastseen programs (the agent, the load
        // tool) share the prefix, so only the names of settings are read.
        let env = Env::prefixed("LASTSEEN_")
            .filter(move |key| keys.contains(&key.as_str().to_ascii_lowercase()));
        let config: Config = figment
            .merge(env)
            .merge(Serialized::defaults(flags))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.serve.check(&mut problems);
        self.http.check(&mut problems);
        self.metrics.check(&mut problems);
        self.store.check(&mut problems);
        self.blob.check(&mut problems);
        self.auth.check(&mut problems);
        self.devices.check(&mut problems);
        self.detect.check(&mut problems);
        self.ingest.check(&mut problems);
        self.retention.check(&mut problems);
        self.query.check(&mut problems);
        self.live.check(&mut problems);
        self.mqtt.check(&mut problems);
        // The settings that tie two sections together.
        problems.check(
            self.metrics
                .bind
                .is_none_or(|m| m != self.bind || m.port() == 0),
            "metrics_bind must differ from bind",
        );
        problems.check(
            self.mqtt.max_message_bytes >= self.http.max_frame_bytes,
            "mqtt_max_message_bytes must be at least max_frame_bytes",
        );
        problems.into_result().map_err(ConfigError::Invalid)
    }

    pub fn database_url(&self) -> String {
        self.store
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("lastseen.db").display()))
    }

    /// True when everything lives in `data_dir` (SQLite, local blobs): the
    /// development setup, where a token key may be generated and kept there.
    pub fn uses_embedded_storage(&self) -> bool {
        self.database_url().starts_with("sqlite:") && self.blob.s3_bucket.is_none()
    }
}

/// A key of `file` that names no setting is an error, not a silent default:
/// a typo would otherwise leave the setting at its default unnoticed.
fn refuse_unknown_keys(file: &Path, keys: &BTreeSet<String>) -> Result<(), ConfigError> {
    let table: figment::value::Dict = Figment::from(Toml::file_exact(file))
        .extract()
        .map_err(Box::new)?;
    let unknown: Vec<&str> = table
        .keys()
        .filter(|key| !keys.contains(*key))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let message = format!(
        "unknown key(s) in {}: {} (docs/configuration.md lists the settings)",
        file.display(),
        unknown.join(", ")
    );
    Err(ConfigError::Load(Box::new(figment::Error::from(message))))
}
