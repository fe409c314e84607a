//! The embedded broker's guard: the device-facing MQTT listener on
//! `mqtt_listen`, which authorizes every device per topic before anything
//! reaches rumqttd (which has no publish or subscribe hook of its own).
//!
//! ```text
//! device --TLS?--> guard (mqtt_listen) --loopback--> rumqttd "guard" listener
//!                                                     rumqttd "cloud" listener <-- cloud's client
//! ```
//!
//! - `rules`: what a device may send (pure checks, unit-tested).
//! - `connection`: one connection: CONNECT check (token verified with
//!   `Accounts::authenticate_device`), then the two pumps.
//! - `sessions` + `recheck`: live sessions by device, ended when their token
//!   stops verifying (revocation, rotation, deletion, expiry).
//! - `tls`: the optional TLS acceptor.
//!
//! Upstream, rumqttd's guard listener takes only the guard's per-process
//! secret as password (username = client id, never the cloud's username),
//! so nothing but the guard can log in there, and the cloud's own login is
//! not accepted on any port a device can reach.
//!
//! Bounds: a device can make the broker retain nothing but its own status
//! (at most `mqtt_max_status_bytes`), so retained messages are at most one
//! status per device plus the cloud's configs; frames are at most
//! `mqtt_max_message_bytes`; at most `mqtt_max_connections` devices are
//! connected at once, counted here, so rumqttd always has a slot left for
//! the cloud's own client.

mod connection;
mod recheck;
mod rules;
mod sessions;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastseen_shared::{Secret, Topics};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use super::{MqttConfig, MqttError};
use crate::auth::Accounts;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::tasks::spawn_named;
use rules::Rules;
use sessions::Sessions;

/// How long to wait before accepting again after `accept` failed (out of
/// file descriptors, most likely), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Where the guard forwards allowed traffic, and the password it uses there.
pub(super) struct Upstream {
    pub(super) addr: SocketAddr,
    pub(super) secret: Secret,
}

/// What every connection of the guard shares.
struct Guard {
    rules: Rules,
    accounts: Arc<Accounts>,
    sessions: Arc<Sessions>,
    metrics: Arc<Metrics>,
    upstream: SocketAddr,
    upstream_secret: Secret,
    /// Time to complete the TLS handshake and send CONNECT.
    connect_timeout: Duration,
    max_message_bytes: usize,
}

/// The device port, claimed before anything else starts.
pub(super) struct Bound {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

/// Claims `mqtt_listen` and loads the TLS files, so that a taken port or a
/// bad certificate is a startup error naming the setting.
pub(super) async fn bind(config: &MqttConfig) -> Result<Bound, MqttError> {
    let tls = tls::acceptor(config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| MqttError::Listen {
            addr: config.listen,
            source,
        })?;
    Ok(Bound { listener, tls })
}

/// Serves devices on the bound port and re-checks their sessions in the
/// background for as long as the runtime lives.
pub(super) fn start(
    bound: Bound,
    config: &MqttConfig,
    state: &AppState,
    upstream: Upstream,
    connect_timeout: Duration,
) -> Result<(), MqttError> {
    let Bound { listener, tls } = bound;
    let topics = Topics::new(&config.topic_prefix)?;
    let sessions = Sessions::new(state.metrics.clone());
    remember_upstream(config.listen, &upstream);
    let guard = Arc::new(Guard {
        rules: Rules::new(topics, config.max_message_bytes, config.max_status_bytes),
        accounts: state.accounts.clone(),
        sessions: sessions.clone(),
        metrics: state.metrics.clone(),
        upstream: upstream.addr,
        upstream_secret: upstream.secret,
        connect_timeout,
        max_message_bytes: config.max_message_bytes,
    });
    spawn_named(
        "mqtt-guard-recheck",
        recheck::run(
            sessions,
            state.accounts.clone(),
            state.credentials.subscribe(),
            Duration::from_secs(config.session_recheck_secs),
        ),
    );
    let slots = Arc::new(Semaphore::new(config.max_connections));
    spawn_named("mqtt-guard", accept(listener, tls, guard, slots));
    Ok(())
}

async fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    guard: Arc<Guard>,
    slots: Arc<Semaphore>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "the MQTT device listener cannot accept");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "MQTT device refused: mqtt_max_connections reached");
            continue;
        };
        let guard = guard.clone();
        let tls = tls.clone();
        spawn_named("mqtt-guard-connection", async move {
            let _slot = slot;
            serve(guard, tls, stream, peer).await;
        });
    }
}

async fn serve(guard: Arc<Guard>, tls: Option<TlsAcceptor>, stream: TcpStream, peer: SocketAddr) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "cannot set TCP_NODELAY on an MQTT device connection");
    }
    let Some(tls) = tls else {
        guard.serve(stream, peer).await;
        return;
    };
    match tokio::time::timeout(guard.connect_timeout, tls.accept(stream)).await {
        Ok(Ok(stream)) => guard.serve(stream, peer).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "MQTT device TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "MQTT device TLS handshake timed out"),
    }
}

/// rumqttd's guard listeners by device port, for [`unguarded_upstream`].
static UPSTREAMS: Mutex<Option<HashMap<SocketAddr, (SocketAddr, Secret)>>> = Mutex::new(None);

fn remember_upstream(listen: SocketAddr, upstream: &Upstream) {
    let mut upstreams = UPSTREAMS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    upstreams
        .get_or_insert_with(HashMap::new)
        .insert(listen, (upstream.addr, upstream.secret.clone()));
}

/// For the MQTT benchmark only (`PATH_=direct` in cloud/benches/mqtt.rs):
/// rumqttd's guard listener behind the device port `mqtt_listen` of a cloud
/// running in this process, and its password, so that the same load can be
/// measured with and without the guard. Nothing outside the process can
/// reach this; a device never learns the secret.
#[doc(hidden)]
pub fn unguarded_upstream(mqtt_listen: SocketAddr) -> Option<(SocketAddr, Secret)> {
    let upstreams = UPSTREAMS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    upstreams.as_ref()?.get(&mqtt_listen).cloned()
}
