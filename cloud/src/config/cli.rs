//! The command line: the config file, the flags that override settings, and
//! the operator's commands.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

use crate::auth::{MAX_INVITE_DAYS, RegistrationMode};
use crate::mqtt::MqttMode;

/// `lastseen-cloud`: ingest, detection, storage and queries for lastseen.
///
/// Settings come from the defaults, then `--config FILE`, then `LASTSEEN_<NAME>`
/// environment variables (e.g. `LASTSEEN_BIND`), then these flags.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "LASTSEEN_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Without a command, the service runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The operator's commands. They reach the database of the same
/// configuration (file, environment, flags before the command) and exit.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Creates an account, whatever `registration` says. The password is
    /// read from the first line of standard input, never from the command line.
    AddUser {
        /// 3-32 lowercase letters, digits, `.`, `_` and `-`.
        #[arg(long)]
        username: String,
    },
    /// Prints a new single-use invite code for `registration = "invite"`.
    Invite {
        /// Days the code stays usable [default: invite_ttl_days].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_INVITE_DAYS)))]
        expires_days: Option<u32>,
    },
}

/// Flags that override the file and the environment; unset flags change nothing.
#[derive(Debug, Default, clap::Args, Serialize)]
pub struct Overrides {
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    /// Data directory for the embedded defaults [default: data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// SQL database URL [default: sqlite://<data_dir>/lastseen.db].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Local blob directory [default: <data_dir>/blobs].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob_dir: Option<PathBuf>,
    /// ONNX model file [default: ../shared/models/yolox_nano.onnx].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_path: Option<PathBuf>,
    /// ONNX Runtime shared library [default: found in ORT_DYLIB_PATH, .venv, system].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Minimum detection score [default: 0.3].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f32>,
    /// Detector workers [default: 2].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_workers: Option<usize>,
    /// ONNX Runtime threads per worker [default: 1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detect_threads: Option<usize>,
    /// Frames waiting for a detector before ingest answers 503 [default: 64].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<usize>,
    /// Largest accepted frame body in bytes [default: 10485760].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_frame_bytes: Option<usize>,
    /// Default retention in days [default: unset, keep frames].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Default retention in bytes of images per user [default: unset, no limit].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_max_bytes: Option<u64>,
    /// File holding the token signing key.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<PathBuf>,
    /// File holding the device MAC keys' master [default: derived from the token key].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_key_secret_file: Option<PathBuf>,
    /// Who may register: open, invite or closed [default: open].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<RegistrationMode>,
    /// MQTT transport [default: embedded].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttMode>,
    /// Embedded broker address [default: 127.0.0.1:1883].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_listen: Option<SocketAddr>,
    /// External broker URL, mqtt://host:port or mqtts://host:port.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_url: Option<String>,
    /// MQTT topic prefix [default: lastseen/v1].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_topic_prefix: Option<String>,
    /// Shared-subscription group of the cloud nodes [default: ingest].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_shared_group: Option<String>,
    /// Log filter [default: info].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}
