//! lastseen cloud: ingest, detection, storage and queries.
//!
//! The path of one frame: `http/frames.rs` (parse) -> `auth/` (device token)
//! -> `ingest/` (check, dedupe) -> `detect/` (queue, ONNX Runtime) -> `blob/`
//! (image) -> `store/` (rows, `last_seen`). Queries go `http/` -> `query/` -> `store/`.

pub mod auth;
pub mod blob;
pub mod config;
pub mod detect;
pub mod devices;
pub mod http;
pub mod ingest;
pub mod query;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use lastseen_shared::yolox::YoloxConfig;
use tokio::net::TcpListener;

use auth::{Accounts, PasswordHasher, TokenKeys};
use blob::{BlobStore, DirBlobStore};
use config::Config;
use detect::{DetectorPool, PoolSettings};
use devices::Devices;
use http::{AppState, HttpLimits};
use ingest::Ingest;
use query::Sightings;
use store::{SqliteStore, Store};

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
    #[error("unsupported database_url `{0}`: this build supports sqlite:// URLs")]
    DatabaseUrl(String),
    #[error("cannot open the blob store: {0}")]
    Blob(#[from] blob::BlobError),
    #[error(transparent)]
    Detect(#[from] detect::DetectError),
    #[error(transparent)]
    Keys(#[from] auth::KeyError),
    #[error("invalid password hashing parameters: {0}")]
    Hash(#[from] auth::HashError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds the HTTP listener, naming the setting to change when the port is taken.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// Opens storage, loads the detector and wires the services together.
pub async fn build_state(config: &Config) -> Result<AppState, StartupError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::DataDir {
        path: config.data_dir.display().to_string(),
        source,
    })?;
    let store = open_store(config).await?;
    let blobs: Arc<dyn BlobStore> = Arc::new(DirBlobStore::open(config.blob_dir()).await?);
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
    })?);
    Ok(AppState {
        accounts: Arc::new(Accounts::new(
            store.clone(),
            keys.clone(),
            hasher,
            config.access_token_ttl_secs,
        )),
        devices: Arc::new(Devices::new(
            store.clone(),
            keys,
            config.device_token_ttl_days,
            config.max_devices_per_user,
        )),
        ingest: Arc::new(Ingest::new(store.clone(), blobs.clone(), detector)),
        sightings: Arc::new(Sightings::new(
            store.clone(),
            blobs,
            config.max_page_size,
            config.max_image_pixels,
        )),
        store,
        limits: Arc::new(HttpLimits {
            max_frame_bytes: config.max_frame_bytes,
            max_json_bytes: config.max_json_bytes,
            retry_after_secs: config.retry_after_secs,
        }),
    })
}

async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(&url, config.db_max_connections).await?,
        ))
    } else {
        Err(StartupError::DatabaseUrl(url))
    }
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let state = build_state(&config).await?;
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "lastseen cloud listening");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(StartupError::Serve)
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
