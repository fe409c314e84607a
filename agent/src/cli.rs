//! `lastseen-agent`'s command line: `--config FILE` plus flags for the
//! settings changed most often; `--help` lists every key of the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use figment::Figment;
use figment::providers::Serialized;
use lastseen_shared::DeviceId;

/// Every key of the configuration file, for `--help`.
const REFERENCE: &str = "\
CONFIGURATION (TOML file, then LASTSEEN_AGENT_<SECTION>__<KEY> variables, then flags)

[cloud]
  device_id            (required) the device's id, shown when the camera was added
  token | token_file   (one required) the device token, or a file holding it (re-read after a 401)
  transport            https | mqtt                                  [https]
  http_url             base URL of the cloud, no /api/v1             [http://127.0.0.1:8080]
  mqtt_url             mqtt://host:port or mqtts://host:port         [mqtt://127.0.0.1:1883]
  mqtt_topic_prefix    topic prefix                                  [lastseen/v1]
  ca_file              PEM with extra root certificates (HTTPS, MQTTS)
  request_timeout_secs one HTTP request                              [30]
  max_in_flight        MQTT frames published and not yet acked       [16]
  ack_timeout_secs     MQTT: publish again after this long unacked   [30]
  mqtt_keep_alive_secs                                               [30]
  backoff_initial_ms, backoff_max_ms  retry delays (doubling, jittered) [500, 30000]
  status_interval_secs status message to the cloud                   [60]
  settings_poll_secs   HTTPS: fetch gate settings (0 = never)        [60]

[source]
  kind                 dir | http | v4l2 | synthetic                 [synthetic]
  fps                  frames per second taken                       [5]
  path, loop           dir: directory replayed in name order; start over at the end [-, false]
  url, timeout_secs    http: snapshot URL polled; request timeout    [-, 10]
  max_snapshot_bytes   http: a larger snapshot is a capture error    [16777216]
  device               v4l2: camera device (needs the `camera` build feature) [/dev/video0]
  width, height        v4l2 and synthetic frame size                 [640, 360]
  max_frames           dir and synthetic: stop after this many (0 = no limit) [0]

[gates]                initial gate settings; the cloud may replace them at any time
  heartbeat_secs       send a frame this often even if no gate passes (0 = never) [300]
  [gates.light]  enabled, min_mean_luma, max_mean_luma, max_clipped_fraction [true, 20, 235, 0.6]
  [gates.change] enabled, pixel_threshold, min_changed_fraction             [true, 25, 0.005]
  [gates.person] enabled, min_score                                         [false, 0.4]

[tuning]               local knobs of the light and change gates
  thumb_height         rows of the grayscale copy the gates work on  [100]
  clip_low, clip_high  luma counted as clipped black / white         [8, 247]
  learning_rate        background update per frame                   [0.05]
  noise_factor         change must exceed this x the pixel's own noise [4]
  min_neighbours       changed neighbours (of 8) a changed pixel needs [2]
  recalibrate_fraction rebuild the background above this changed fraction [0.7]
  calibration_frames   fast learning after a rebuild                 [10]

[person]               the on-device detector of the person gate
  model_path           YOLOX ONNX model                              [../shared/models/yolox_nano.onnx]
  onnxruntime_lib      libonnxruntime.so            [ORT_DYLIB_PATH, .venv, system paths]
  input_size, threads  model input side; ONNX Runtime threads        [416, 1]

[encode]
  max_side             scale frames down to this largest side        [1280]
  jpeg_quality         quality of re-encoded frames                  [80]

[spool]
  dir                  on-disk queue and persisted seq               [spool]
  max_frames, max_bytes  bounds; the oldest frame is dropped beyond them [10000, 1073741824]
  seq_block            seqs reserved per fsync of the seq file       [1000]
  quarantine_after_read_errors  a file failing this many reads moves to quarantine/ [3]

[metrics]
  enabled              serve /metrics (Prometheus text)              [true]
  listen               its address (port 0 = any free port)          [127.0.0.1:9464]

log                    tracing filter; RUST_LOG wins                 [info]
";

/// `lastseen-agent`: captures camera frames, keeps the ones worth sending
/// (light, change and person gates, heartbeat), spools them on disk and
/// sends them to the lastseen cloud over HTTPS or MQTT.
#[derive(Debug, Parser)]
#[command(version, about, after_long_help = REFERENCE)]
pub struct Cli {
    /// TOML configuration file (see the reference below).
    #[arg(long, env = "LASTSEEN_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags that override the file and the environment; unset flags change nothing.
#[derive(Debug, Default, clap::Args)]
pub struct Overrides {
    /// cloud.device_id
    #[arg(long)]
    pub device_id: Option<DeviceId>,
    /// cloud.token_file
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// cloud.transport
    #[arg(long, value_parser = ["https", "mqtt"])]
    pub transport: Option<String>,
    /// cloud.http_url
    #[arg(long)]
    pub http_url: Option<String>,
    /// cloud.mqtt_url
    #[arg(long)]
    pub mqtt_url: Option<String>,
    /// cloud.ca_file
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// source.kind
    #[arg(long, value_parser = ["dir", "http", "v4l2", "synthetic"])]
    pub source: Option<String>,
    /// source.path (kind = dir)
    #[arg(long)]
    pub source_path: Option<PathBuf>,
    /// source.url (kind = http)
    #[arg(long)]
    pub source_url: Option<String>,
    /// source.fps
    #[arg(long)]
    pub fps: Option<f64>,
    /// source.loop: replay the directory again and again
    #[arg(long = "loop")]
    pub looping: bool,
    /// spool.dir
    #[arg(long)]
    pub spool_dir: Option<PathBuf>,
    /// metrics.listen
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// gates.person.enabled = true (runs YOLOX on the device)
    #[arg(long)]
    pub person: bool,
    /// log
    #[arg(long)]
    pub log: Option<String>,
}

impl Overrides {
    /// The flags that were given, as a figment layer over file and environment.
    pub fn figment(&self) -> Figment {
        let mut figment = Figment::new();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                figment = std::mem::take(&mut figment).merge(Serialized::default(key, value));
            }
        };
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        set("cloud.device_id", self.device_id.map(|d| d.to_string()));
        set("cloud.token_file", path(&self.token_file));
        set("cloud.transport", self.transport.clone());
        set("cloud.http_url", self.http_url.clone());
        set("cloud.mqtt_url", self.mqtt_url.clone());
        set("cloud.ca_file", path(&self.ca_file));
        set("source.kind", self.source.clone());
        set("source.path", path(&self.source_path));
        set("source.url", self.source_url.clone());
        set("spool.dir", path(&self.spool_dir));
        set("metrics.listen", self.metrics_listen.map(|a| a.to_string()));
        set("log", self.log.clone());
        if let Some(fps) = self.fps {
            figment = figment.merge(Serialized::default("source.fps", fps));
        }
        if self.looping {
            figment = figment.merge(Serialized::default("source.loop", true));
        }
        if self.person {
            figment = figment.merge(Serialized::default("gates.person.enabled", true));
        }
        figment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SourceKind, TransportKind};

    #[test]
    fn flags_reach_nested_keys_and_help_names_every_section() {
        let cli = Cli::parse_from([
            "lastseen-agent",
            "--device-id",
            "0196f1c4-7a10-7c3e-9d5a-2b1e8f0a4c11",
            "--token-file",
            "/dev/null",
            "--source",
            "dir",
            "--source-path",
            "/tmp",
            "--fps",
            "2",
            "--loop",
            "--person",
            "--transport",
            "mqtt",
        ]);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(cli.overrides.figment())
            .extract()
            .unwrap();
        assert_eq!(config.source.kind, SourceKind::Dir);
        assert_eq!(config.source.fps, 2.0);
        assert!(config.source.looping && config.gates.person.enabled);
        assert_eq!(config.cloud.transport, TransportKind::Mqtt);
        assert!(config.cloud.device_id.is_some());
        for section in [
            "[cloud]",
            "[source]",
            "[gates]",
            "[tuning]",
            "[person]",
            "[encode]",
            "[spool]",
            "[metrics]",
        ] {
            assert!(REFERENCE.contains(section), "{section}");
        }
    }
}
