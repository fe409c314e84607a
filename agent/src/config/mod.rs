//! The agent's configuration: embedded defaults, then an optional TOML file,
//! then `LASTSEEN_AGENT_*` environment variables (nested keys joined by `__`,
//! e.g. `LASTSEEN_AGENT_CLOUD__TOKEN`), then command-line flags.
//!
//! The minimal file (`[cloud]` device id, token, transport and URLs, and a
//! `[source]` kind) is a working configuration: every other key has a default.
//! [`Config::validate`] reports every problem at once.

mod cloud;
mod gates;
mod output;
mod source;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lastseen_shared::{GateSettings, Problems};
use serde::{Deserialize, Serialize};

pub use cloud::{CloudConfig, TransportKind};
pub use gates::{GateTuning, PersonModel};
pub use lastseen_shared::Secret;
pub use output::{EncodeConfig, MetricsConfig, SpoolConfig};
pub use source::{SourceConfig, SourceKind};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub cloud: CloudConfig,
    pub source: SourceConfig,
    /// The gate settings used until the cloud sends its own (remote config).
    pub gates: GateSettings,
    pub tuning: GateTuning,
    pub person: PersonModel,
    pub encode: EncodeConfig,
    pub spool: SpoolConfig,
    pub metrics: MetricsConfig,
    /// `tracing` filter, e.g. `info` or `lastseen_agent=debug,info`.
    pub log: String,
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
    #[error("cannot read the device token from {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// Loads defaults, then `file` (when given), then `LASTSEEN_AGENT_*`
    /// variables, then `flags` (a figment of the flags that were set).
    pub fn load(file: Option<&Path>, flags: Figment) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(Env::prefixed("LASTSEEN_AGENT_").split("__"))
            .merge(flags)
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.cloud.check(&mut problems);
        self.source.check(&mut problems);
        if let Err(error) = self.gates.validate() {
            problems.push(format!("gates.{error}"));
        }
        self.tuning.check(&mut problems);
        self.person.check(&mut problems);
        self.encode.check(&mut problems);
        self.spool.check(&mut problems);
        problems.into_result().map_err(ConfigError::Invalid)
    }

    /// The device token: `cloud.token`, or the trimmed contents of `cloud.token_file`.
    pub fn read_token(&self) -> Result<Secret, ConfigError> {
        read_token(&self.cloud)
    }
}

pub(crate) fn read_token(cloud: &CloudConfig) -> Result<Secret, ConfigError> {
    if let Some(token) = &cloud.token {
        return Ok(token.clone());
    }
    let path = cloud.token_file.clone().unwrap_or_default();
    std::fs::read_to_string(&path)
        .map(|text| Secret::new(text.trim()))
        .map_err(|source| ConfigError::TokenFile { path, source })
}

#[cfg(test)]
// figment::Jail fixes the closure type to return figment::Error, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[cloud]
device_id = "0196f1c4-7a10-7c3e-9d5a-2b1e8f0a4c11"
token = "a.b.c"
transport = "https"
http_url = "http://127.0.0.1:8080"
mqtt_url = "mqtt://127.0.0.1:1883"

[source]
kind = "synthetic"
"#;

    #[test]
    fn the_minimal_file_of_the_contract_is_a_working_config() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", MINIMAL)?;
            let config = Config::load(Some(Path::new("agent.toml")), Figment::new())
                .map_err(|e| e.to_string())?;
            assert_eq!(config.source.kind, SourceKind::Synthetic);
            assert_eq!(config.cloud.transport, TransportKind::Https);
            assert_eq!(config.gates, GateSettings::default());
            assert_eq!(
                config.read_token().map_err(|e| e.to_string())?.expose(),
                "a.b.c"
            );
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_both() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", MINIMAL)?;
            jail.set_env("LASTSEEN_AGENT_SOURCE__FPS", "2.5");
            jail.set_env("LASTSEEN_AGENT_GATES__CHANGE__PIXEL_THRESHOLD", "40");
            jail.set_env("LASTSEEN_AGENT_LOG", "debug");
            let flags = Figment::new().merge(Serialized::default("log", "warn"));
            let config =
                Config::load(Some(Path::new("agent.toml")), flags).map_err(|e| e.to_string())?;
            assert_eq!(config.source.fps, 2.5);
            assert_eq!(config.gates.change.pixel_threshold, 40);
            assert_eq!(config.log, "warn");
            Ok(())
        });
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let mut config = Config::default();
        config.source.fps = 0.0;
        config.encode.jpeg_quality = 0;
        config.gates.light.max_clipped_fraction = 2.0;
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid");
        };
        // No device id, no token, fps, quality, clipped fraction.
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn unknown_keys_are_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agent.toml", &format!("{MINIMAL}\nfsp = 3\n"))?;
            let result = Config::load(Some(Path::new("agent.toml")), Figment::new());
            assert!(matches!(result, Err(ConfigError::Load(_))));
            Ok(())
        });
    }

    #[test]
    fn the_token_comes_from_a_file_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "x.y.z\n").unwrap();
        let cloud = CloudConfig {
            token_file: Some(path),
            ..CloudConfig::default()
        };
        assert_eq!(read_token(&cloud).unwrap().expose(), "x.y.z");
        assert!(!format!("{:?}", Secret::new("x.y.z")).contains("x.y.z"));
    }

    #[test]
    fn every_agent_config_under_deploy_parses() {
        // In a folder of its own: the cloud's test parses every TOML file in deploy/.
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent");
        let files: Vec<_> = std::fs::read_dir(&deploy)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        assert!(!files.is_empty(), "no config files in {}", deploy.display());
        for file in &files {
            let config = Config::load(Some(file), Figment::new());
            assert!(config.is_ok(), "{}: {:?}", file.display(), config.err());
        }
    }
}
