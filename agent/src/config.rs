//! The agent's configuration: embedded defaults, then an optional TOML file,
//! then `LASTSEEN_AGENT_*` environment variables (nested keys joined by `__`,
//! e.g. `LASTSEEN_AGENT_CLOUD__TOKEN`), then command-line flags.
//!
//! The minimal file (`[cloud]` device id, token, transport and URLs, and a
//! `[source]` kind) is a working configuration: every other key has a default.
//! [`Config::validate`] reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lastseen_shared::{DeviceId, GateSettings};
use serde::{Deserialize, Serialize};

pub use lastseen_shared::Secret;

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Dir,
    Http,
    V4l2,
    #[default]
    Synthetic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Frames per second taken from the source.
    pub fps: f64,
    /// `dir`: the directory whose `.jpg`/`.jpeg`/`.png` files are replayed in name order.
    pub path: Option<PathBuf>,
    /// `dir`: start again from the first file after the last one.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// `http`: the snapshot URL (most IP cameras serve one JPEG per GET).
    pub url: Option<String>,
    /// `http`: seconds one snapshot request may take.
    pub timeout_secs: u64,
    /// `http`: the largest snapshot read, in bytes; a larger one is a
    /// capture error (counted in `snapshots_too_large`), never read whole.
    pub max_snapshot_bytes: u64,
    /// `v4l2`: the camera device.
    pub device: PathBuf,
    /// `v4l2` and `synthetic`: frame size.
    pub width: u32,
    pub height: u32,
    /// `synthetic` and `dir`: stop after this many frames (0 = no limit).
    pub max_frames: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::Synthetic,
            fps: 5.0,
            path: None,
            looping: false,
            url: None,
            timeout_secs: 10,
            max_snapshot_bytes: 16 * 1024 * 1024,
            device: PathBuf::from("/dev/video0"),
            width: 640,
            height: 360,
            max_frames: 0,
        }
    }
}

/// Local knobs of the gates that the cloud does not set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateTuning {
    /// Height of the grayscale copy the light and change gates work on.
    pub thumb_height: u32,
    /// Luma at or below this counts as clipped black, at or above `clip_high` as clipped white.
    pub clip_low: u8,
    pub clip_high: u8,
    /// How fast the background follows the scene, per frame (0-1).
    pub learning_rate: f32,
    /// A pixel changes only when its difference exceeds this many times its
    /// own usual noise (as well as `gates.change.pixel_threshold`).
    pub noise_factor: f32,
    /// A changed pixel counts only with at least this many changed neighbours
    /// out of 8, so isolated noise never adds up.
    pub min_neighbours: u8,
    /// When more than this fraction of the picture changed at once (lights,
    /// camera moved), the background is rebuilt from the new frame.
    pub recalibrate_fraction: f32,
    /// Frames after a rebuild during which the background learns fast.
    pub calibration_frames: u32,
}

impl Default for GateTuning {
    fn default() -> Self {
        Self {
            thumb_height: 100,
            clip_low: 8,
            clip_high: 247,
            learning_rate: 0.05,
            noise_factor: 4.0,
            min_neighbours: 2,
            recalibrate_fraction: 0.7,
            calibration_frames: 10,
        }
    }
}

/// The on-device detector behind the person gate (`gates.person.enabled`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonModel {
    /// YOLOX model file (ONNX).
    pub model_path: PathBuf,
    /// `libonnxruntime.so`; when unset: `ORT_DYLIB_PATH`, a `.venv` in the
    /// working directory or its parents (or the executable's), system paths.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Square model input side (a multiple of 32).
    pub input_size: u32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for PersonModel {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("../shared/models/yolox_nano.onnx"),
            onnxruntime_lib: None,
            input_size: 416,
            threads: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Frames larger than this (width or height) are scaled down before sending.
    pub max_side: u32,
    /// JPEG quality (1-100) of re-encoded frames.
    pub jpeg_quality: u8,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            max_side: 1280,
            jpeg_quality: 80,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the on-disk queue (and the persisted seq).
    pub dir: PathBuf,
    /// Frames kept at most; when full the oldest is dropped (and counted).
    pub max_frames: usize,
    /// Bytes kept at most, likewise.
    pub max_bytes: u64,
    /// Sequence numbers reserved per fsync of the seq file.
    pub seq_block: u64,
    /// A frame file that fails to read this many times (an I/O error, not
    /// a bad checksum) is moved to `quarantine/` beside `frames/` and
    /// counted in `spool_quarantined`, so it never blocks the frames behind it.
    pub quarantine_after_read_errors: u32,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("spool"),
            max_frames: 10_000,
            max_bytes: 1024 * 1024 * 1024,
            seq_block: 1000,
            quarantine_after_read_errors: 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text) at all.
    pub enabled: bool,
    /// Where `/metrics` is served (port 0 = any free port).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
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
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_owned());
            }
        };
        let cloud = &self.cloud;
        check(
            cloud.device_id.is_some(),
            "cloud.device_id is required (the id shown when the camera was added)",
        );
        check(
            cloud.token.is_some() != cloud.token_file.is_some(),
            "set exactly one of cloud.token and cloud.token_file",
        );
        check(
            cloud.http_url.starts_with("http://") || cloud.http_url.starts_with("https://"),
            "cloud.http_url must be an http:// or https:// URL",
        );
        check(
            cloud.mqtt_url.starts_with("mqtt://") || cloud.mqtt_url.starts_with("mqtts://"),
            "cloud.mqtt_url must be an mqtt:// or mqtts:// URL",
        );
        check(
            lastseen_shared::Topics::new(&cloud.mqtt_topic_prefix).is_ok(),
            "cloud.mqtt_topic_prefix must be non-empty levels separated by `/`, without `+`, `#` or a leading `$`",
        );
        check(
            cloud.request_timeout_secs >= 1,
            "cloud.request_timeout_secs must be at least 1",
        );
        check(
            cloud.max_in_flight >= 1,
            "cloud.max_in_flight must be at least 1",
        );
        check(
            cloud.ack_timeout_secs >= 1,
            "cloud.ack_timeout_secs must be at least 1",
        );
        check(
            cloud.mqtt_keep_alive_secs >= 5,
            "cloud.mqtt_keep_alive_secs must be at least 5",
        );
        check(
            cloud.backoff_initial_ms >= 1 && cloud.backoff_initial_ms <= cloud.backoff_max_ms,
            "cloud.backoff_initial_ms must be at least 1 and at most cloud.backoff_max_ms",
        );
        check(
            cloud.status_interval_secs >= 1,
            "cloud.status_interval_secs must be at least 1",
        );
        let source = &self.source;
        check(
            source.fps.is_finite() && source.fps > 0.0 && source.fps <= 120.0,
            "source.fps must be above 0 and at most 120",
        );
        match source.kind {
            SourceKind::Dir => check(
                source.path.is_some(),
                "source.path is required with kind = \"dir\"",
            ),
            SourceKind::Http => check(
                source
                    .url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://")),
                "source.url (http:// or https://) is required with kind = \"http\"",
            ),
            SourceKind::V4l2 => check(
                cfg!(feature = "camera"),
                "source kind \"v4l2\" needs an agent built with the `camera` feature",
            ),
            SourceKind::Synthetic => {}
        }
        check(
            source.timeout_secs >= 1,
            "source.timeout_secs must be at least 1",
        );
        check(
            (16..=8192).contains(&source.width) && (16..=8192).contains(&source.height),
            "source.width and source.height must be within 16-8192",
        );
        if let Err(error) = self.gates.validate() {
            problems.push(format!("gates.{error}"));
        }
        let tuning = &self.tuning;
        let mut check = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_owned());
            }
        };
        check(
            (16..=1080).contains(&tuning.thumb_height),
            "tuning.thumb_height must be within 16-1080",
        );
        check(
            tuning.clip_low < tuning.clip_high,
            "tuning.clip_low must be below tuning.clip_high",
        );
        check(
            tuning.learning_rate > 0.0 && tuning.learning_rate <= 1.0,
            "tuning.learning_rate must be in (0, 1]",
        );
        check(
            tuning.noise_factor.is_finite() && tuning.noise_factor >= 0.0,
            "tuning.noise_factor must be 0 or more",
        );
        check(
            tuning.min_neighbours <= 8,
            "tuning.min_neighbours must be at most 8",
        );
        check(
            tuning.recalibrate_fraction > 0.0 && tuning.recalibrate_fraction <= 1.0,
            "tuning.recalibrate_fraction must be in (0, 1]",
        );
        check(
            self.person.input_size >= 32 && self.person.input_size.is_multiple_of(32),
            "person.input_size must be a positive multiple of 32",
        );
        check(
            self.person.threads >= 1,
            "person.threads must be at least 1",
        );
        check(
            self.encode.max_side >= 16,
            "encode.max_side must be at least 16",
        );
        check(
            (1..=100).contains(&self.encode.jpeg_quality),
            "encode.jpeg_quality must be within 1-100",
        );
        check(
            self.spool.max_frames >= 1,
            "spool.max_frames must be at least 1",
        );
        check(
            self.spool.max_bytes >= 64 * 1024,
            "spool.max_bytes must be at least 65536",
        );
        check(
            self.spool.seq_block >= 1,
            "spool.seq_block must be at least 1",
        );
        check(
            self.spool.quarantine_after_read_errors >= 1,
            "spool.quarantine_after_read_errors must be at least 1",
        );
        check(
            self.source.max_snapshot_bytes >= 1024,
            "source.max_snapshot_bytes must be at least 1024",
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
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
