//! lastseen cloud: ingest, detection, storage and queries.
//!
//! The path of one frame: `http/frames.rs` (parse) -> `auth/` (device token)
//! -> `ingest/` (check, dedupe) -> `detect/` (queue, ONNX Runtime) -> `blob/`
//! (image) -> `store/` (rows, `last_seen`). Queries go `http/` -> `query/` -> `store/`.

pub mod admin;
pub mod auth;
pub mod blob;
pub mod bounded;
pub mod config;
pub mod detect;
pub mod devices;
pub mod http;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod mqtt;
pub mod query;
pub mod retention;
pub mod scrape;
pub mod serve;
pub mod state;
pub mod store;
pub mod tasks;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lastseen_shared::yolox::YoloxConfig;
use tokio::net::TcpListener;

use auth::{Accounts, LoginLimits, PasswordHasher, RegistrationPolicy, ThrottleLimits, TokenKeys};
use blob::{BlobError, BlobStore, DirBlobStore, S3BlobStore, S3Settings};
use config::Config;
use detect::{DetectorPool, PoolSettings};
use devices::Devices;
use devices::credentials::CredentialEvents;
use devices::settings::DeviceControl;
use http::HttpLimits;
use ingest::{Admission, AdmissionSettings, Budget, Ingest, UnchangedImages};
use live::LiveHub;
use metrics::Metrics;
use query::Sightings;
use retention::{MaintenanceSettings, Retention};
use state::AppState;
use store::{PgStore, RetentionLimits, SqliteStore, Store};
use tasks::spawn_named;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "cannot listen on {addr} ({source}); set bind / LASTSEEN_BIND / --bind to a free address"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] store::StoreError),
    #[error(
        "unsupported database_url scheme `{0}:`: use a sqlite:// or a postgres:// (postgresql://) URL"
    )]
    DatabaseUrl(String),
    #[error("cannot open the blob store: {0}")]
    Blob(#[from] blob::BlobError),
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    #[error(transparent)]
    Keys(#[from] auth::KeyError),
    #[error("invalid password hashing parameters: {0}")]
    Hash(#[from] auth::HashError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds the HTTP listener, naming the setting to change when the port is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// A loopback address with a port nobody holds right now, for a listener
/// that cannot report the port of a port-0 bind (rumqttd).
pub fn free_loopback_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()
}

/// Opens storage, loads the detector and wires the services together.
pub async fn build_state(config: &Config) -> Result<AppState, StartupError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let store = open_store(config).await?;
    let blobs = open_blobs(config).await?;
    let keys = Arc::new(TokenKeys::load(config)?);
    let hasher = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
    )?;
    let detector = Arc::new(DetectorPool::start(&PoolSettings {
        onnxruntime_lib: config.onnxruntime_lib.clone(),
        model_path: config.model_path.clone(),
        yolox: YoloxConfig {
            input_size: config.model_input_size,
            score_threshold: config.score_threshold,
            nms_iou: config.nms_iou,
        },
        workers: config.detect_workers,
        intra_threads: config.detect_threads,
        queue_depth: config.queue_depth,
        max_image_pixels: config.max_image_pixels,
        detect: config.detect_enabled,
    })?);
    let live = LiveHub::bounded(
        config.live_channel_capacity,
        config.live_max_sockets_per_user,
        config.live_max_pending,
    );
    let credentials = CredentialEvents::default();
    Ok(AppState {
        accounts: Arc::new(
            Accounts::new(
                store.clone(),
                blobs.clone(),
                keys.clone(),
                hasher,
                config.access_token_ttl_secs,
                LoginLimits {
                    throttle: ThrottleLimits {
                        max_failures: config.login_max_failures,
                        max_failures_per_client: config.login_max_failures_per_client,
                        window: Duration::from_secs(config.login_window_secs),
                        max_backoff: Duration::from_secs(config.login_max_backoff_secs),
                    },
                    register_max_per_client: config.register_max_per_client,
                    register_window: Duration::from_secs(config.register_window_secs),
                    max_concurrent_hashes: config.argon2_max_concurrent,
                    hash_wait: Duration::from_millis(config.argon2_wait_ms),
                },
                credentials.clone(),
            )
            .with_registration(RegistrationPolicy {
                mode: config.registration,
                invite_ttl_days: config.invite_ttl_days,
                max_invites_per_user: config.max_invites_per_user,
            }),
        ),
        devices: Arc::new(Devices::new(
            store.clone(),
            blobs.clone(),
            keys,
            config.device_token_ttl_days,
            config.max_devices_per_user,
            credentials.clone(),
        )),
        credentials,
        control: Arc::new(DeviceControl::new(store.clone())),
        ingest: Arc::new(
            Ingest::new(store.clone(), blobs.clone(), detector)
                .with_unchanged_images(UnchangedImages {
                    enabled: config.skip_unchanged_images,
                    min_iou: config.unchanged_min_iou,
                })
                .with_observer(Arc::new(live.clone()))
                .with_admission(Admission::new(
                    &AdmissionSettings {
                        device: Budget {
                            pixels_per_sec: config.admit_device_pixels_per_sec,
                            burst_pixels: config.admit_device_burst_pixels,
                        },
                        owner: Budget {
                            pixels_per_sec: config.admit_owner_pixels_per_sec,
                            burst_pixels: config.admit_owner_burst_pixels,
                        },
                        min_frame_pixels: config.admit_min_frame_pixels,
                        max_image_pixels: config.max_image_pixels,
                        user_quota_bytes: config.user_quota_bytes,
                        quota_refresh: Duration::from_secs(config.user_quota_refresh_secs),
                        clock_skew_flag: Duration::from_secs(config.clock_skew_flag_secs),
                    },
                    store.clone(),
                )),
        ),
        retention: Arc::new(Retention::new(
            store.clone(),
            blobs.clone(),
            MaintenanceSettings {
                defaults: RetentionLimits {
                    max_age_days: config.retention_days,
                    max_bytes: config.retention_max_bytes,
                },
                batch: config.maintenance_batch,
                orphan_grace: Duration::from_secs(config.orphan_grace_secs),
            },
        )),
        sightings: Arc::new(Sightings::new(
            store.clone(),
            blobs,
            config.max_page_size,
            config.max_image_pixels,
            config.max_thumbnail_width,
            bounded::BoundedWork::new(
                config.render_max_concurrent,
                Duration::from_millis(config.render_wait_ms),
            ),
            config.thumbnail_cache_bytes,
        )),
        live,
        store,
        metrics: Arc::new(Metrics::new()),
        limits: Arc::new(HttpLimits {
            max_frame_bytes: config.max_frame_bytes,
            max_json_bytes: config.max_json_bytes,
            retry_after_secs: config.retry_after_secs,
            client_ip_header: config.client_ip_header.clone(),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .filter_map(|p| http::client_ip::IpBlock::parse(p))
                .collect(),
            cors_allowed_origins: config.cors_allowed_origins.clone(),
            live_auth_timeout: Duration::from_secs(config.live_auth_timeout_secs),
            live_ping_interval: Duration::from_secs(config.live_ping_interval_secs),
            live_send_timeout: Duration::from_secs(config.live_send_timeout_secs),
        }),
    })
}

/// S3 when `s3_bucket` is set, else the local directory.
async fn open_blobs(config: &Config) -> Result<Arc<dyn BlobStore>, StartupError> {
    let Some(bucket) = &config.s3_bucket else {
        return Ok(Arc::new(DirBlobStore::open(config.blob_dir()).await?));
    };
    // `Config::validate` requires both keys with a bucket; this covers a
    // config built in code without it.
    let (Some(access_key_id), Some(secret_access_key)) =
        (&config.s3_access_key_id, &config.s3_secret_access_key)
    else {
        return Err(BlobError::Backend(
            "s3_access_key_id and s3_secret_access_key are required with s3_bucket".to_owned(),
        )
        .into());
    };
    let store = S3BlobStore::open(S3Settings {
        bucket: bucket.clone(),
        endpoint: config.s3_endpoint.clone(),
        region: config.s3_region.clone(),
        access_key_id: access_key_id.clone(),
        secret_access_key: secret_access_key.clone(),
        path_style: config.s3_path_style,
        create_bucket: config.s3_create_bucket,
    })
    .await?;
    tracing::info!(bucket = %bucket, "images are stored in S3");
    Ok(Arc::new(store))
}

pub(crate) async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(&url, config.db_max_connections).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::connect(&url, config.db_max_connections).await?,
        ))
    } else {
        Err(StartupError::DatabaseUrl(scheme_of(&url)))
    }
}

/// Only the scheme of a URL goes into an error message: the rest may hold a password.
fn scheme_of(url: &str) -> String {
    url.split_once(':')
        .map_or("(none)", |(scheme, _)| scheme)
        .chars()
        .take(32)
        .collect()
}

/// How often logged-out tokens that have expired anyway are forgotten.
const REVOCATION_PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let state = build_state(&config).await?;
    mqtt::start(&config, &state).await?;
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    let accounts = state.accounts.clone();
    spawn_named("purge-revocations", async move {
        let first = tokio::time::Instant::now() + REVOCATION_PURGE_INTERVAL;
        let mut every = tokio::time::interval_at(first, REVOCATION_PURGE_INTERVAL);
        loop {
            every.tick().await;
            if let Err(error) = accounts.purge_revocations().await {
                tracing::warn!(error = ?error, "cannot purge expired token revocations");
            }
        }
    });
    spawn_named(
        "maintenance",
        state
            .retention
            .clone()
            .run_every(Duration::from_secs(config.maintenance_interval_secs)),
    );
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "lastseen cloud listening");
    let limits = serve::ServeLimits::from_config(&config);
    let scrape = scrape::router(state.clone(), config.metrics_token.clone());
    let mut app = http::router(state.clone()).merge(web::router());
    // Both listeners stop on the one shutdown signal.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let metrics_server = match config.metrics_bind {
        Some(metrics_addr) => {
            let listener = bind(metrics_addr).await?;
            tracing::info!(addr = %metrics_addr, "metrics listening");
            Some(tokio::spawn(serve::serve(
                listener,
                scrape,
                limits.clone(),
                state.metrics.clone(),
                stopped(),
            )))
        }
        None => {
            app = app.merge(scrape);
            None
        }
    };
    spawn_named("shutdown", async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    serve::serve(listener, app, limits, state.metrics.clone(), stopped()).await;
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    Ok(())
}

/// Log targets off unless the configured filter names them: rumqttd logs
/// every connection at INFO and one ERROR per client at a normal disconnect,
/// which an operator would read as failures (`log = "info,rumqttd=debug"`
/// brings them back). The guard logs device connections itself.
pub const QUIET_LOG_TARGETS: &[&str] = &["rumqttd"];

/// The cloud's logs: `filter` (or `RUST_LOG`) with [`QUIET_LOG_TARGETS`] off.
pub fn init_logs(filter: &str) {
    lastseen_shared::service::init_logs_quieting(filter, QUIET_LOG_TARGETS);
}
