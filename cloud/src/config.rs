//! The cloud's configuration: embedded defaults, then an optional TOML file,
//! then `LASTSEEN_*` environment variables, then command-line flags.
//!
//! Every limit the service enforces is a named field here, so an operator can
//! find and change it; [`Config::validate`] reports every problem at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use lastseen_shared::Secret;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP listen address.
    pub bind: SocketAddr,
    /// Root for everything the embedded defaults keep on disk.
    pub data_dir: PathBuf,
    /// SQL database URL; default `sqlite://<data_dir>/lastseen.db`.
    pub database_url: Option<String>,
    /// Directory of the local blob store; default `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// S3 bucket for the images; when set, blobs go there instead of `blob_dir`.
    pub s3_bucket: Option<String>,
    /// S3 server URL, e.g. `http://127.0.0.1:9000` for MinIO; unset means AWS
    /// (addressed by `s3_region`).
    pub s3_endpoint: Option<String>,
    /// S3 region: signs the requests, and picks the AWS endpoint.
    pub s3_region: String,
    /// S3 access key id; required with `s3_bucket`.
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; required with `s3_bucket`.
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`), which MinIO and
    /// Garage expect; false for virtual-hosted style (`<bucket>.<endpoint>/<key>`).
    pub s3_path_style: bool,
    /// Create `s3_bucket` at startup when it does not exist (else that is an
    /// error).
    pub s3_create_bucket: bool,
    /// Largest number of pooled SQL connections.
    pub db_max_connections: u32,

    /// Default retention: frames received more than this many days ago are
    /// deleted (rows and images). Unset keeps them; a user may set their own.
    pub retention_days: Option<u32>,
    /// Default retention: the oldest frames are deleted while a user's images
    /// take more than this many bytes. Unset is no limit.
    pub retention_max_bytes: Option<u64>,
    /// Seconds between two runs of the maintenance task (retention, then the
    /// orphan-image sweep).
    pub maintenance_interval_secs: u64,
    /// Frames deleted per transaction, and blobs listed per page, by the
    /// maintenance task.
    pub maintenance_batch: u32,
    /// Images younger than this many seconds are never swept as orphans: their
    /// rows may still be on the way.
    pub orphan_grace_secs: u64,
    /// A frame whose detections match the device's previous image (same
    /// labels, each box within `unchanged_min_iou`) keeps its rows but points
    /// at that image instead of storing its own.
    pub skip_unchanged_images: bool,
    /// Smallest IoU between a box and its match for the scene to count as unchanged.
    pub unchanged_min_iou: f32,
    /// Hard ceiling on the bytes of one user's images, checked at ingest: a
    /// frame that would go past it gets 507 `quota_exceeded` and is kept by
    /// the device. Unset is no quota. Retention trims between sweeps; this
    /// holds in between.
    pub user_quota_bytes: Option<u64>,
    /// How long a user's usage, read from the store, is trusted before it is
    /// read again (deletions show after at most this long).
    pub user_quota_refresh_secs: u64,
    /// A frame whose `captured_at` is further than this from the time it was
    /// received is flagged `clock_skewed` (the device clock is probably wrong).
    pub clock_skew_flag_secs: u64,

    /// The ONNX model (YOLOX layout).
    pub model_path: PathBuf,
    /// `libonnxruntime.so`; when unset it is looked for in `ORT_DYLIB_PATH`,
    /// the project's `.venv` (made by `scripts/setup`) and the system paths.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Square model input side in pixels (a multiple of 32).
    pub model_input_size: u32,
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// Detector workers, each with its own ONNX Runtime session.
    pub detect_workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    pub detect_threads: usize,
    /// Frames waiting for a detector before ingest answers 503.
    pub queue_depth: usize,
    /// False stores frames without running the model (no detections): only
    /// for measuring the rest of the ingest path (BENCHMARKS.md).
    pub detect_enabled: bool,
    /// Seconds a client is told to wait (Retry-After) when the queue is full.
    pub retry_after_secs: u32,
    /// Fair share of the detectors: image pixels (width × height from the
    /// JPEG header) admitted per second per device, and per owner for all
    /// their devices together, with bursts up to the `_burst_pixels` values;
    /// past it 503 `overloaded` with the bucket's `Retry-After`.
    pub admit_device_pixels_per_sec: u64,
    pub admit_device_burst_pixels: u64,
    pub admit_owner_pixels_per_sec: u64,
    pub admit_owner_burst_pixels: u64,
    /// The least a frame is charged, whatever its size: inference costs the
    /// same for a tiny frame as for a large one.
    pub admit_min_frame_pixels: u64,

    /// Largest accepted frame body.
    pub max_frame_bytes: usize,
    /// Largest accepted JSON body.
    pub max_json_bytes: usize,
    /// Largest decoded frame, width times height.
    pub max_image_pixels: u64,
    /// Largest `limit` a listing accepts.
    pub max_page_size: u32,
    pub max_devices_per_user: u32,

    /// HMAC key for tokens (at least 32 bytes). When neither this nor
    /// `jwt_secret_file` is set, a key is generated once and kept in the data dir.
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    /// Master key (at least 32 bytes) of the per-device MAC keys that
    /// authenticate MQTT frames, acks and configs. When neither this nor
    /// `device_key_secret_file` is set, it is derived from the token key.
    /// Changing it changes every device's key: devices need new tokens.
    pub device_key_secret: Option<Secret>,
    pub device_key_secret_file: Option<PathBuf>,
    pub access_token_ttl_secs: u64,
    pub device_token_ttl_days: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Failed logins per (client address, username) within
    /// `login_window_secs` before further attempts get 429; the same count
    /// of failures in a row for a username from anywhere starts a backoff.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// Failed logins per client address, across usernames, per window.
    pub login_max_failures_per_client: u32,
    /// The longest wait the per-username backoff imposes.
    pub login_max_backoff_secs: u64,
    /// Registrations per client address per `register_window_secs`.
    pub register_max_per_client: u32,
    pub register_window_secs: u64,
    /// Who may create an account with `POST /auth/register`: `open`
    /// (anyone), `invite` (with an unused, unexpired invite code) or
    /// `closed` (nobody: the operator runs `lastseen-cloud add-user`).
    pub registration: RegistrationMode,
    /// Days an invite code a user makes (`POST /account/invites`) stays
    /// usable; also the default of `lastseen-cloud invite --expires-days`.
    pub invite_ttl_days: u32,
    /// Unused, unexpired invite codes one user may hold at once; 0 lets
    /// only the operator make codes.
    pub max_invites_per_user: u32,
    /// Argon2 hashes computed at once (each holds `argon2_memory_kib`), and
    /// how long a request waits for one before 503.
    pub argon2_max_concurrent: usize,
    pub argon2_wait_ms: u64,
    /// Header carrying the client address, appended by trusted proxies (e.g.
    /// `x-forwarded-for` from nginx); unset means the TCP peer address.
    pub client_ip_header: Option<String>,
    /// The proxies (addresses or CIDR blocks) whose `client_ip_header` is
    /// believed: the client is the right-most address that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS); empty is off.
    pub cors_allowed_origins: Vec<String>,
    /// Widest thumbnail `GET /frames/{id}/image?width=` makes.
    pub max_thumbnail_width: u32,
    /// Drawn or shrunk images (`?boxes=`, `?width=`) made at once (each
    /// decodes the frame, a thumbnail at 1/2, 1/4 or 1/8 scale), and how
    /// long a request waits for a slot before 503.
    pub render_max_concurrent: usize,
    pub render_wait_ms: u64,
    /// Bytes of drawn or shrunk images kept in memory (least recently used
    /// out first), so asking again does not render again; 0 keeps none.
    pub thumbnail_cache_bytes: usize,
    /// Live events buffered per user for a slow browser before it misses some.
    pub live_channel_capacity: usize,
    /// Time a live WebSocket has to send its `auth` message.
    pub live_auth_timeout_secs: u64,
    /// Interval of live WebSocket pings; the session is also re-checked then.
    pub live_ping_interval_secs: u64,
    /// Live WebSockets open at once per user; one more is closed after its
    /// `auth` message (close code 4429).
    pub live_max_sockets_per_user: usize,
    /// Live WebSockets that have not authenticated yet, at once; one more
    /// handshake gets 503 `overloaded`.
    pub live_max_pending: usize,
    /// A live message (or ping) the browser does not take within this time
    /// closes its socket.
    pub live_send_timeout_secs: u64,

    // The HTTP listener (cloud/src/serve): how long and how many connections.
    /// Time to send a whole request head, from the connection's start or from
    /// the first byte of a later request.
    pub http_header_timeout_secs: u64,
    /// Time a connection may sit idle between requests, or leave a response
    /// unread, before it is closed.
    pub http_idle_timeout_secs: u64,
    /// A request body must bring at least this many bytes per second,
    /// measured over each `http_body_rate_window_secs`, or the request gets
    /// 408 and the connection is closed.
    pub http_min_body_bytes_per_sec: u64,
    pub http_body_rate_window_secs: u64,
    /// HTTP connections open at once (per listener); one more is answered 503
    /// and closed at once. Keep it below the process's open-file limit.
    pub http_max_connections: usize,
    /// When set, `/metrics` is served only on this address, not on `bind`.
    pub metrics_bind: Option<SocketAddr>,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    pub metrics_token: Option<Secret>,

    /// MQTT transport: `embedded` (a broker inside the cloud on
    /// `mqtt_listen`), `external` (a client of the broker at `mqtt_url`) or `off`.
    pub mqtt: MqttMode,
    /// Where the embedded broker listens.
    pub mqtt_listen: SocketAddr,
    /// PEM certificate chain and key: the embedded broker then speaks TLS only.
    pub mqtt_tls_cert: Option<PathBuf>,
    pub mqtt_tls_key: Option<PathBuf>,
    /// The external broker, `mqtt://host:port` or `mqtts://host:port`.
    pub mqtt_url: Option<String>,
    /// Credentials for the external broker, if it wants any.
    pub mqtt_username: Option<String>,
    pub mqtt_password: Option<Secret>,
    /// First levels of every topic: `{prefix}/{device}/frames|ack|config|status`.
    pub mqtt_topic_prefix: String,
    /// Shared-subscription group: cloud nodes in one group split the frames.
    pub mqtt_shared_group: String,
    /// Frames from MQTT being ingested at once by this node; one beyond it
    /// gets no ack (counted as `overloaded`) and its device sends it again.
    pub mqtt_max_in_flight: usize,
    /// Devices with a status waiting to be recorded (one worker records
    /// them in turn; a newer status replaces a device's waiting one). A
    /// status from another device past it is dropped and counted.
    pub mqtt_status_queue: usize,
    /// Largest MQTT message the broker and the cloud accept.
    pub mqtt_max_message_bytes: usize,
    /// Most MQTT connections the embedded broker holds.
    pub mqtt_max_connections: usize,
    /// The embedded broker keeps recent messages of each topic in memory, in
    /// at most this many segments of about this many bytes (a segment may go
    /// over by its last message); a subscriber further behind loses messages.
    pub mqtt_broker_segment_bytes: usize,
    pub mqtt_broker_segments: usize,
    pub mqtt_keep_alive_secs: u64,
    /// With `mqtt = "external"`: the broker is Mosquitto 2 with its
    /// dynamic-security plugin, and the cloud gives each device a login and
    /// a role limited to its own topics; `mqtt_username`/`mqtt_password`
    /// are then the plugin's admin (see docs/mqtt-security.md).
    pub mqtt_dynsec: bool,
    /// How often the cloud compares the broker's device logins with the
    /// store and deletes those of unknown, revoked or expired devices.
    pub mqtt_dynsec_reconcile_secs: u64,

    // The embedded broker's guard (cloud/src/mqtt/guard): what a device may
    // send, and how often live sessions are re-checked.
    /// Largest status message (and last will) a device may publish; with
    /// `mqtt_max_message_bytes` for frames, it bounds what devices can make
    /// the embedded broker retain: one status per device.
    pub mqtt_max_status_bytes: usize,
    /// Every live device session's token is verified again this often, so
    /// expiry and changes made by another cloud process end sessions too.
    pub mqtt_session_recheck_secs: u64,

    /// `tracing` filter, e.g. `info` or `lastseen_cloud=debug,info`.
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            blob_dir: None,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_path_style: true,
            s3_create_bucket: false,
            db_max_connections: 8,
            retention_days: None,
            retention_max_bytes: None,
            maintenance_interval_secs: 3600,
            maintenance_batch: 500,
            orphan_grace_secs: 3600,
            skip_unchanged_images: true,
            unchanged_min_iou: 0.9,
            user_quota_bytes: None,
            user_quota_refresh_secs: 60,
            clock_skew_flag_secs: 24 * 3600,
            model_path: PathBuf::from("../shared/models/yolox_nano.onnx"),
            onnxruntime_lib: None,
            model_input_size: 416,
            score_threshold: 0.3,
            nms_iou: 0.45,
            detect_workers: 2,
            detect_threads: 1,
            queue_depth: 64,
            detect_enabled: true,
            retry_after_secs: 1,
            // About 5 fps of 1440p per device, 30 1080p frames per second
            // per account; bursts of 4 and 8 frames of the largest size.
            admit_device_pixels_per_sec: 20_000_000,
            admit_device_burst_pixels: 4 * 4096 * 3072,
            admit_owner_pixels_per_sec: 64_000_000,
            admit_owner_burst_pixels: 8 * 4096 * 3072,
            admit_min_frame_pixels: 1_000_000,
            max_frame_bytes: 10 * 1024 * 1024,
            max_json_bytes: 64 * 1024,
            // A 12 Mpx camera (4056 x 3040, 4608 x 2592) and 4K UHD fit.
            max_image_pixels: 4096 * 3072,
            max_page_size: 500,
            max_devices_per_user: 100,
            jwt_secret: None,
            jwt_secret_file: None,
            device_key_secret: None,
            device_key_secret_file: None,
            access_token_ttl_secs: 3600,
            device_token_ttl_days: 3650,
            // OWASP's first Argon2id recommendation: m=19 MiB, t=2, p=1.
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            login_max_failures: 10,
            login_window_secs: 300,
            login_max_failures_per_client: 100,
            login_max_backoff_secs: 60,
            register_max_per_client: 10,
            register_window_secs: 3600,
            // Open for the embedded dev run (scripts/run's demo camera and the
            // load tool register through the API); deploy/cloud.toml sets `invite`.
            registration: RegistrationMode::Open,
            invite_ttl_days: 7,
            max_invites_per_user: 5,
            argon2_max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            argon2_wait_ms: 5000,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            max_thumbnail_width: 1280,
            render_max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            render_wait_ms: 2000,
            thumbnail_cache_bytes: 64 * 1024 * 1024,
            live_channel_capacity: 64,
            live_auth_timeout_secs: 10,
            live_ping_interval_secs: 30,
            live_max_sockets_per_user: 16,
            live_max_pending: 256,
            live_send_timeout_secs: 10,
            http_header_timeout_secs: 20,
            http_idle_timeout_secs: 60,
            http_min_body_bytes_per_sec: 1024,
            http_body_rate_window_secs: 10,
            http_max_connections: 2048,
            metrics_bind: None,
            metrics_token: None,
            mqtt: MqttMode::Embedded,
            mqtt_listen: SocketAddr::from(([127, 0, 0, 1], 1883)),
            mqtt_tls_cert: None,
            mqtt_tls_key: None,
            mqtt_url: None,
            mqtt_username: None,
            mqtt_password: None,
            mqtt_topic_prefix: lastseen_shared::topics::DEFAULT_PREFIX.to_owned(),
            mqtt_shared_group: "ingest".to_owned(),
            mqtt_max_in_flight: 64,
            mqtt_status_queue: 1024,
            mqtt_max_message_bytes: 10 * 1024 * 1024 + 64 * 1024,
            mqtt_max_connections: 10_000,
            mqtt_broker_segment_bytes: 4 * 1024 * 1024,
            mqtt_broker_segments: 4,
            mqtt_keep_alive_secs: 30,
            mqtt_dynsec: false,
            mqtt_dynsec_reconcile_secs: 300,
            mqtt_max_status_bytes: 16 * 1024,
            mqtt_session_recheck_secs: 60,
            log: "info".to_owned(),
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

/// Who may create an account (`registration`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone may register (throttled per client address).
    #[default]
    Open,
    /// Registering takes a single-use, expiring invite code.
    Invite,
    /// Nobody may register; the operator adds accounts with `add-user`.
    Closed,
}

/// Longest `lastseen-cloud invite --expires-days` and `invite_ttl_days`.
pub const MAX_INVITE_DAYS: u32 = 3650;

/// Variables meant for other lastseen programs (the agent, the load tool) share
/// the prefix, so only names of this struct's settings are read.
fn is_setting(key: &str) -> bool {
    serde_json::to_value(Config::default())
        .ok()
        .and_then(|value| value.as_object().map(|fields| fields.contains_key(key)))
        .unwrap_or(false)
}

/// S3's bucket naming rule, short of the IP-address and prefix exceptions.
fn is_bucket_name(name: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && edge(name.as_bytes().first())
        && edge(name.as_bytes().last())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
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
    /// Loads defaults, then `file` (when given), then `LASTSEEN_*` variables,
    /// then the flags that were set.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment
            .merge(
                Env::prefixed("LASTSEEN_")
                    .filter(|key| is_setting(&key.as_str().to_ascii_lowercase())),
            )
            .merge(Serialized::defaults(flags))
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
        check(
            self.model_input_size >= 32 && self.model_input_size.is_multiple_of(32),
            "model_input_size must be a positive multiple of 32",
        );
        check(
            self.score_threshold > 0.0 && self.score_threshold < 1.0,
            "score_threshold must be between 0 and 1",
        );
        check(
            self.nms_iou > 0.0 && self.nms_iou <= 1.0,
            "nms_iou must be in (0, 1]",
        );
        check(
            self.detect_workers >= 1,
            "detect_workers must be at least 1",
        );
        check(
            self.detect_threads >= 1,
            "detect_threads must be at least 1",
        );
        check(self.queue_depth >= 1, "queue_depth must be at least 1");
        check(
            self.db_max_connections >= 1,
            "db_max_connections must be at least 1",
        );
        check(
            self.max_frame_bytes >= 1024,
            "max_frame_bytes must be at least 1024",
        );
        check(
            self.max_json_bytes >= 1024,
            "max_json_bytes must be at least 1024",
        );
        check(
            self.max_image_pixels >= 64 * 64,
            "max_image_pixels must be at least 4096",
        );
        check(self.max_page_size >= 1, "max_page_size must be at least 1");
        check(
            self.max_thumbnail_width >= 16,
            "max_thumbnail_width must be at least 16",
        );
        check(
            self.render_max_concurrent >= 1,
            "render_max_concurrent must be at least 1",
        );
        check(
            self.live_channel_capacity >= 1,
            "live_channel_capacity must be at least 1",
        );
        check(
            self.live_auth_timeout_secs >= 1,
            "live_auth_timeout_secs must be at least 1",
        );
        check(
            self.live_ping_interval_secs >= 1,
            "live_ping_interval_secs must be at least 1",
        );
        check(
            self.live_max_sockets_per_user >= 1
                && self.live_max_pending >= 1
                && self.live_send_timeout_secs >= 1,
            "live_max_sockets_per_user, live_max_pending and live_send_timeout_secs must be at least 1",
        );
        check(
            self.http_header_timeout_secs >= 1
                && self.http_idle_timeout_secs >= 1
                && self.http_body_rate_window_secs >= 1,
            "http_header_timeout_secs, http_idle_timeout_secs and http_body_rate_window_secs must be at least 1",
        );
        check(
            self.http_min_body_bytes_per_sec >= 1,
            "http_min_body_bytes_per_sec must be at least 1",
        );
        check(
            self.http_max_connections >= 1,
            "http_max_connections must be at least 1",
        );
        check(
            self.metrics_bind
                .is_none_or(|m| m != self.bind || m.port() == 0),
            "metrics_bind must differ from bind",
        );
        check(
            self.metrics_token
                .as_ref()
                .is_none_or(|t| t.expose().len() >= 16),
            "metrics_token must be at least 16 bytes",
        );
        check(
            self.access_token_ttl_secs >= 60,
            "access_token_ttl_secs must be at least 60",
        );
        check(
            self.device_token_ttl_days >= 1,
            "device_token_ttl_days must be at least 1",
        );
        check(
            self.argon2_memory_kib >= 8 * self.argon2_parallelism.max(1),
            "argon2_memory_kib must be at least 8 x argon2_parallelism",
        );
        check(
            self.argon2_iterations >= 1,
            "argon2_iterations must be at least 1",
        );
        check(
            self.argon2_parallelism >= 1,
            "argon2_parallelism must be at least 1",
        );
        check(
            self.login_max_failures >= 1,
            "login_max_failures must be at least 1",
        );
        check(
            self.login_window_secs >= 1,
            "login_window_secs must be at least 1",
        );
        check(
            self.client_ip_header
                .as_deref()
                .is_none_or(|h| axum::http::HeaderName::try_from(h).is_ok()),
            "client_ip_header must be a valid header name",
        );
        check(
            self.client_ip_header.is_none() || !self.trusted_proxies.is_empty(),
            "client_ip_header needs trusted_proxies (the proxies that set it); any client could write it otherwise",
        );
        check(
            self.trusted_proxies
                .iter()
                .all(|p| crate::http::client_ip::IpBlock::parse(p).is_some()),
            "trusted_proxies must be IP addresses or CIDR blocks, e.g. 10.0.0.0/8",
        );
        check(
            self.login_max_failures_per_client >= self.login_max_failures,
            "login_max_failures_per_client must be at least login_max_failures",
        );
        check(
            self.login_max_backoff_secs >= 1,
            "login_max_backoff_secs must be at least 1",
        );
        check(
            self.register_max_per_client >= 1 && self.register_window_secs >= 1,
            "register_max_per_client and register_window_secs must be at least 1",
        );
        check(
            (1..=MAX_INVITE_DAYS).contains(&self.invite_ttl_days),
            "invite_ttl_days must be between 1 and 3650",
        );
        check(
            self.argon2_max_concurrent >= 1,
            "argon2_max_concurrent must be at least 1",
        );
        check(
            self.cors_allowed_origins
                .iter()
                .all(|o| axum::http::HeaderValue::try_from(o.as_str()).is_ok()),
            "cors_allowed_origins must be origins such as https://example.com",
        );
        check(
            self.jwt_secret.is_none() || self.jwt_secret_file.is_none(),
            "set jwt_secret or jwt_secret_file, not both",
        );
        check(
            self.device_key_secret.is_none() || self.device_key_secret_file.is_none(),
            "set device_key_secret or device_key_secret_file, not both",
        );
        if let Some(secret) = &self.device_key_secret {
            check(
                secret.expose().len() >= 32,
                "device_key_secret must be at least 32 bytes",
            );
            check(
                self.jwt_secret.as_ref() != Some(secret),
                "device_key_secret must differ from jwt_secret (keep the two keys apart)",
            );
        }
        check(
            self.s3_bucket.as_deref().is_none_or(is_bucket_name),
            "s3_bucket must be 3 to 63 lowercase letters, digits, `-` or `.`",
        );
        if self.s3_bucket.is_some() {
            check(
                self.s3_access_key_id
                    .as_deref()
                    .is_some_and(|id| !id.is_empty()),
                "s3_access_key_id is required with s3_bucket",
            );
            check(
                self.s3_secret_access_key
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty()),
                "s3_secret_access_key is required with s3_bucket",
            );
        }
        check(
            self.s3_endpoint
                .as_deref()
                .is_none_or(|url| url.starts_with("http://") || url.starts_with("https://")),
            "s3_endpoint must be an http:// or https:// URL",
        );
        check(!self.s3_region.is_empty(), "s3_region must not be empty");
        check(
            self.retention_days.is_none_or(|days| days >= 1),
            "retention_days must be at least 1 (or unset to keep frames)",
        );
        check(
            self.retention_max_bytes
                .is_none_or(|bytes| (1..=i64::MAX as u64).contains(&bytes)),
            "retention_max_bytes must be between 1 and 2^63-1 (or unset for no limit)",
        );
        check(
            self.user_quota_bytes
                .is_none_or(|bytes| (1..=i64::MAX as u64).contains(&bytes)),
            "user_quota_bytes must be between 1 and 2^63-1 (or unset for no quota)",
        );
        check(
            self.user_quota_refresh_secs >= 1,
            "user_quota_refresh_secs must be at least 1",
        );
        check(
            self.clock_skew_flag_secs >= 60,
            "clock_skew_flag_secs must be at least 60",
        );
        check(
            self.admit_device_pixels_per_sec >= 1 && self.admit_owner_pixels_per_sec >= 1,
            "admit_device_pixels_per_sec and admit_owner_pixels_per_sec must be at least 1",
        );
        check(
            self.admit_device_burst_pixels >= self.max_image_pixels
                && self.admit_owner_burst_pixels >= self.max_image_pixels,
            "admit_device_burst_pixels and admit_owner_burst_pixels must be at least max_image_pixels (else the largest frames could never pass)",
        );
        check(
            self.admit_min_frame_pixels <= self.max_image_pixels,
            "admit_min_frame_pixels must be at most max_image_pixels",
        );
        check(
            self.maintenance_interval_secs >= 1,
            "maintenance_interval_secs must be at least 1",
        );
        check(
            (1..=10_000).contains(&self.maintenance_batch),
            "maintenance_batch must be between 1 and 10000",
        );
        check(
            self.unchanged_min_iou > 0.0 && self.unchanged_min_iou <= 1.0,
            "unchanged_min_iou must be in (0, 1]",
        );
        if let Some(secret) = &self.jwt_secret {
            check(
                secret.expose().len() >= 32,
                "jwt_secret must be at least 32 bytes",
            );
        }
        problems.extend(self.mqtt_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("lastseen.db").display()))
    }

    /// True when everything lives in `data_dir` (SQLite, local blobs): the
    /// development setup, where a token key may be generated and kept there.
    pub fn uses_embedded_storage(&self) -> bool {
        self.database_url().starts_with("sqlite:") && self.s3_bucket.is_none()
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.blob_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }
}

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

#[cfg(test)]
// figment::Jail fixes the closure type to return figment::Error, which is large.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn validate_reports_every_problem_at_once() {
        let config = Config {
            queue_depth: 0,
            detect_workers: 0,
            score_threshold: 2.0,
            jwt_secret: Some(Secret::new("short")),
            ..Config::default()
        };
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "cloud.toml",
                "bind = \"127.0.0.1:9000\"\nqueue_depth = 7\nlog = \"debug\"",
            )?;
            jail.set_env("LASTSEEN_QUEUE_DEPTH", "9");
            let flags = Overrides {
                log: Some("warn".into()),
                ..Overrides::default()
            };
            let config =
                Config::load(Some(Path::new("cloud.toml")), &flags).map_err(|e| e.to_string())?;
            assert_eq!(config.bind, SocketAddr::from(([127, 0, 0, 1], 9000)));
            assert_eq!(config.queue_depth, 9);
            assert_eq!(config.log, "warn");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_are_an_error() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cloud.toml", "qeue_depth = 7")?;
            let result = Config::load(Some(Path::new("cloud.toml")), &Overrides::default());
            assert!(matches!(result, Err(ConfigError::Load(_))));
            Ok(())
        });
    }

    #[test]
    fn every_config_file_under_deploy_parses() {
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
        let files: Vec<_> = std::fs::read_dir(&deploy)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        assert!(!files.is_empty(), "no config files in {}", deploy.display());
        // Secrets are not in the files: deploy/compose.yaml passes them in the environment.
        figment::Jail::expect_with(|jail| {
            jail.set_env("LASTSEEN_S3_SECRET_ACCESS_KEY", "from-the-environment");
            jail.set_env("LASTSEEN_MQTT_PASSWORD", "from-the-environment");
            for file in &files {
                let config = Config::load(Some(file), &Overrides::default());
                assert!(config.is_ok(), "{}: {:?}", file.display(), config.err());
            }
            Ok(())
        });
    }

    #[test]
    fn retention_and_maintenance_settings_are_checked() {
        let config = Config {
            retention_days: Some(0),
            retention_max_bytes: Some(0),
            maintenance_interval_secs: 0,
            maintenance_batch: 0,
            unchanged_min_iou: 0.0,
            ..Config::default()
        };
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 5, "{problems:?}");
        let config = Config {
            retention_days: Some(30),
            retention_max_bytes: Some(1 << 30),
            ..Config::default()
        };
        assert!(config.validate().is_ok());
        // Both off by default: nothing is deleted unless someone asks.
        assert_eq!(Config::default().retention_days, None);
        assert_eq!(Config::default().retention_max_bytes, None);
    }

    #[test]
    fn admission_quota_and_skew_settings_are_checked() {
        let config = Config {
            admit_device_pixels_per_sec: 0,
            admit_owner_burst_pixels: 1000,
            admit_min_frame_pixels: u64::MAX,
            user_quota_bytes: Some(0),
            user_quota_refresh_secs: 0,
            clock_skew_flag_secs: 1,
            ..Config::default()
        };
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid");
        };
        assert_eq!(problems.len(), 6, "{problems:?}");
        // The defaults let the largest allowed frame through, and set no quota.
        let defaults = Config::default();
        assert!(defaults.admit_device_burst_pixels >= defaults.max_image_pixels);
        assert!(defaults.admit_owner_burst_pixels >= defaults.max_image_pixels);
        assert_eq!(defaults.user_quota_bytes, None);
        figment::Jail::expect_with(|jail| {
            jail.set_env("LASTSEEN_USER_QUOTA_BYTES", "5000000000");
            jail.set_env("LASTSEEN_ADMIT_DEVICE_PIXELS_PER_SEC", "1000000");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.user_quota_bytes, Some(5_000_000_000));
            assert_eq!(config.admit_device_pixels_per_sec, 1_000_000);
            Ok(())
        });
    }

    #[test]
    fn retention_comes_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LASTSEEN_RETENTION_DAYS", "14");
            jail.set_env("LASTSEEN_RETENTION_MAX_BYTES", "5000000000");
            jail.set_env("LASTSEEN_SKIP_UNCHANGED_IMAGES", "false");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.retention_days, Some(14));
            assert_eq!(config.retention_max_bytes, Some(5_000_000_000));
            assert!(!config.skip_unchanged_images);
            Ok(())
        });
    }

    #[test]
    fn registration_is_one_of_three_modes_from_file_environment_or_flag() {
        assert_eq!(Config::default().registration, RegistrationMode::Open);
        figment::Jail::expect_with(|jail| {
            jail.create_file("cloud.toml", "registration = \"invite\"")?;
            let file = Some(Path::new("cloud.toml"));
            let config = Config::load(file, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.registration, RegistrationMode::Invite);
            jail.create_file("typo.toml", "registration = \"invites\"")?;
            let typo = Config::load(Some(Path::new("typo.toml")), &Overrides::default());
            assert!(matches!(typo, Err(ConfigError::Load(_))));
            jail.set_env("LASTSEEN_REGISTRATION", "closed");
            let config = Config::load(file, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.registration, RegistrationMode::Closed);
            let flags = Overrides {
                registration: Some(RegistrationMode::Open),
                ..Overrides::default()
            };
            let config = Config::load(file, &flags).map_err(|e| e.to_string())?;
            assert_eq!(config.registration, RegistrationMode::Open);
            Ok(())
        });
        for days in [0, MAX_INVITE_DAYS + 1] {
            let config = Config {
                invite_ttl_days: days,
                ..Config::default()
            };
            assert!(config.validate().is_err(), "{days}");
        }
    }

    #[test]
    fn operator_commands_take_the_flags_before_them() {
        let cli = Cli::try_parse_from([
            "lastseen-cloud",
            "--database-url",
            "postgres://db/lastseen",
            "add-user",
            "--username",
            "alice",
        ])
        .unwrap();
        assert_eq!(
            cli.overrides.database_url.as_deref(),
            Some("postgres://db/lastseen")
        );
        assert!(matches!(cli.command, Some(Command::AddUser { username }) if username == "alice"));
        // There is no way to pass a password on the command line.
        assert!(
            Cli::try_parse_from([
                "lastseen-cloud",
                "add-user",
                "--username",
                "a",
                "--password",
                "x"
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from(["lastseen-cloud", "invite", "--expires-days", "3"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Invite {
                expires_days: Some(3)
            })
        ));
        assert!(Cli::try_parse_from(["lastseen-cloud", "invite", "--expires-days", "0"]).is_err());
        assert!(
            Cli::try_parse_from(["lastseen-cloud"])
                .unwrap()
                .command
                .is_none()
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config {
            jwt_secret: Some(Secret::new("x".repeat(40))),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("xxxx"));
    }

    #[test]
    fn an_s3_bucket_needs_both_keys() {
        let config = Config {
            s3_bucket: Some("lastseen-frames".into()),
            ..Config::default()
        };
        let ConfigError::Invalid(problems) = config.validate().unwrap_err() else {
            panic!("expected Invalid");
        };
        assert_eq!(
            problems,
            [
                "s3_access_key_id is required with s3_bucket",
                "s3_secret_access_key is required with s3_bucket"
            ]
        );
        let config = Config {
            s3_access_key_id: Some("minio".into()),
            s3_secret_access_key: Some(Secret::new("minio-secret")),
            ..config
        };
        assert!(config.validate().is_ok());
        // A bucket shared by several nodes is production storage.
        assert!(!config.uses_embedded_storage());
        assert!(Config::default().uses_embedded_storage());
    }

    #[test]
    fn s3_bucket_names_and_endpoints_are_checked() {
        for bad in ["ab", "Frames", "-frames", "frames-", "fr_ames", "a/b"] {
            let config = Config {
                s3_bucket: Some(bad.into()),
                s3_access_key_id: Some("k".into()),
                s3_secret_access_key: Some(Secret::new("s")),
                ..Config::default()
            };
            assert!(config.validate().is_err(), "{bad}");
        }
        let config = Config {
            s3_endpoint: Some("127.0.0.1:9000".into()),
            ..Config::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn s3_settings_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LASTSEEN_S3_BUCKET", "frames");
            jail.set_env("LASTSEEN_S3_ENDPOINT", "http://127.0.0.1:9000");
            jail.set_env("LASTSEEN_S3_ACCESS_KEY_ID", "minio");
            jail.set_env("LASTSEEN_S3_SECRET_ACCESS_KEY", "minio-secret");
            jail.set_env("LASTSEEN_S3_CREATE_BUCKET", "true");
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.s3_bucket.as_deref(), Some("frames"));
            assert_eq!(config.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
            assert_eq!(
                config.s3_secret_access_key,
                Some(Secret::new("minio-secret"))
            );
            assert!(config.s3_create_bucket && config.s3_path_style);
            assert!(!format!("{config:?}").contains("minio-secret"));
            Ok(())
        });
    }

    #[test]
    fn the_device_key_secret_is_checked_and_comes_from_the_environment() {
        let problems = |config: Config| match config.validate() {
            Err(ConfigError::Invalid(problems)) => problems,
            Ok(()) => Vec::new(),
            Err(other) => panic!("{other}"),
        };
        assert_eq!(
            problems(Config {
                device_key_secret: Some(Secret::new("short")),
                device_key_secret_file: Some("device.key".into()),
                ..Config::default()
            }),
            [
                "set device_key_secret or device_key_secret_file, not both",
                "device_key_secret must be at least 32 bytes"
            ]
        );
        let same = Secret::new("s".repeat(40));
        assert_eq!(
            problems(Config {
                jwt_secret: Some(same.clone()),
                device_key_secret: Some(same),
                ..Config::default()
            }),
            ["device_key_secret must differ from jwt_secret (keep the two keys apart)"]
        );
        figment::Jail::expect_with(|jail| {
            jail.set_env("LASTSEEN_DEVICE_KEY_SECRET", "d".repeat(40));
            let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.device_key_secret, Some(Secret::new("d".repeat(40))));
            assert!(!format!("{config:?}").contains("dddd"));
            Ok(())
        });
    }
}
