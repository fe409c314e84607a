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

use tokio::net::TcpListener;

use auth::credentials::CredentialEvents;
use auth::{Accounts, TokenKeys};
use config::Config;
use detect::DetectorPool;
use devices::Devices;
use devices::settings::DeviceControl;
use ingest::{Admission, Ingest};
use live::LiveHub;
use metrics::Metrics;
use query::Sightings;
use retention::Retention;
use state::AppState;
use store::{PgStore, SqliteStore, Store};
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
    let blobs = config.blob.open(&config.data_dir).await?;
    let generated_key_dir = config
        .uses_embedded_storage()
        .then_some(config.data_dir.as_path());
    let keys = Arc::new(TokenKeys::load(&config.auth, generated_key_dir)?);
    let max_image_pixels = config.ingest.max_image_pixels;
    let detector = Arc::new(DetectorPool::start(&config.detect, max_image_pixels)?);
    let live = LiveHub::new(&config.live);
    let credentials = CredentialEvents::default();
    let accounts = Accounts::new(
        store.clone(),
        blobs.clone(),
        keys.clone(),
        config.auth.hasher()?,
        config.auth.access_token_ttl_secs,
        config.auth.login_limits(),
        credentials.clone(),
    )
    .with_registration(config.auth.registration_policy());
    let ingest = Ingest::new(store.clone(), blobs.clone(), detector)
        .with_unchanged_images(config.ingest.unchanged_images())
        .with_observer(Arc::new(live.clone()))
        .with_admission(Admission::new(&config.ingest.admission(), store.clone()));
    Ok(AppState {
        accounts: Arc::new(accounts),
        devices: Arc::new(Devices::new(
            store.clone(),
            blobs.clone(),
            keys,
            &config.devices,
            credentials.clone(),
        )),
        credentials,
        control: Arc::new(DeviceControl::new(store.clone())),
        ingest: Arc::new(ingest),
        retention: Arc::new(Retention::new(
            store.clone(),
            blobs.clone(),
            config.retention.maintenance(),
        )),
        sightings: Arc::new(Sightings::new(
            store.clone(),
            blobs,
            &config.query,
            max_image_pixels,
        )),
        live,
        store,
        metrics: Arc::new(Metrics::new()),
    })
}

pub(crate) async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartupError> {
    let url = config.database_url();
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(&url, config.store.db_max_connections).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PgStore::connect(&url, config.store.db_max_connections).await?,
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
    mqtt::start(&config.mqtt, &state).await?;
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
            .run_every(config.retention.interval()),
    );
    tracing::info!(%addr, data_dir = %config.data_dir.display(), "lastseen cloud listening");
    // As much as a request could have sent is drained after an early answer.
    let max_body = config.http.max_frame_bytes.max(config.http.max_json_bytes);
    let limits = config.serve.limits(max_body);
    let scrape = scrape::router(state.clone(), config.metrics.token.clone());
    let mut app = http::router(state.clone(), &config.http).merge(web::router());
    // Both listeners stop on the one shutdown signal.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };
    let metrics_server = match config.metrics.bind {
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
