//! The embedded broker: rumqttd inside the cloud process.
//!
//! It listens on `mqtt_listen` for devices (MQTT 3.1.1, TLS when a
//! certificate is configured) and on a second, plain listener on a free
//! loopback port for the cloud's own client, so that one client code path
//! serves the embedded and the external broker alike.
//!
//! rumqttd has no shutdown API and reports a failed bind only in its log, so
//! the device port is tried first: a taken port is a startup error naming
//! `mqtt_listen`. The broker lives as long as the process.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use tokio::runtime::Handle;

use super::MqttError;
use crate::auth::Accounts;
use crate::config::{Config, Secret};

/// The username of the cloud's own client on the internal listener.
pub(super) const CLOUD_USERNAME: &str = "lastseen-cloud";

/// Milliseconds a new connection has to send its CONNECT.
const CONNECT_TIMEOUT_MS: u16 = 5_000;

/// Unacknowledged QoS 1 messages towards one connection (rumqttd's own cap is 100).
const MAX_INFLIGHT: usize = 100;

/// How the cloud's client reaches the embedded broker.
pub(super) struct Embedded {
    pub(super) internal: SocketAddr,
    pub(super) password: Secret,
}

/// Starts the broker on its own thread; returns once its ports are claimed.
pub(super) fn start(config: &Config, accounts: Arc<Accounts>) -> Result<Embedded, MqttError> {
    // Checked here rather than by rumqttd, which would only log it.
    let probe = TcpListener::bind(config.mqtt_listen).map_err(|source| MqttError::Listen {
        addr: config.mqtt_listen,
        source,
    })?;
    drop(probe);
    let internal = free_loopback_port()?;
    let password = Secret::new(uuid::Uuid::new_v4().simple().to_string());

    let tls = match (&config.mqtt_tls_cert, &config.mqtt_tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::Rustls {
            capath: None,
            certpath: cert.display().to_string(),
            keypath: key.display().to_string(),
        }),
        _ => None,
    };
    if let Some(tls) = &tls
        && !tls.validate_paths()
    {
        return Err(MqttError::Tls(
            "mqtt_tls_cert or mqtt_tls_key does not exist".to_owned(),
        ));
    }

    let connections = connection_settings(config, accounts, password.clone());
    let server = |name: &str, listen: SocketAddr, tls: Option<TlsConfig>| ServerSettings {
        name: name.to_owned(),
        listen,
        tls,
        next_connection_delay_ms: 0,
        connections: connections.clone(),
    };
    let servers = HashMap::from([
        (
            "devices".to_owned(),
            server("mqtt-devices", config.mqtt_listen, tls),
        ),
        ("cloud".to_owned(), server("mqtt-cloud", internal, None)),
    ]);
    let broker_config = rumqttd::Config {
        router: RouterConfig {
            max_connections: config.mqtt_max_connections + 1,
            max_outgoing_packet_count: 200,
            max_segment_size: config.mqtt_broker_segment_bytes,
            max_segment_count: config.mqtt_broker_segments,
            ..RouterConfig::default()
        },
        v4: Some(servers),
        ..rumqttd::Config::default()
    };
    let mut broker = Broker::new(broker_config);
    std::thread::Builder::new()
        .name("mqtt-broker".to_owned())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(?error, "the embedded MQTT broker stopped");
            }
        })
        .map_err(MqttError::Thread)?;
    tracing::info!(listen = %config.mqtt_listen, tls = config.mqtt_tls_cert.is_some(), "embedded MQTT broker started");
    Ok(Embedded { internal, password })
}

/// Devices log in with username = client id = device id and password =
/// device token; the cloud with [`CLOUD_USERNAME`] and a per-process secret.
/// The checks run on the cloud's runtime, where the store's pool lives.
fn connection_settings(
    config: &Config,
    accounts: Arc<Accounts>,
    cloud_password: Secret,
) -> ConnectionSettings {
    let mut settings = ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        max_payload_size: config.mqtt_max_message_bytes,
        max_inflight_count: MAX_INFLIGHT,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let runtime = Handle::current();
    settings.set_auth_handler(
        move |client_id: String, username: String, password: String| {
            let accounts = accounts.clone();
            let cloud_password = cloud_password.clone();
            let check = runtime.spawn(async move {
                if username == CLOUD_USERNAME {
                    return password == cloud_password.expose()
                        && client_id.starts_with(CLOUD_USERNAME);
                }
                if client_id != username {
                    return false;
                }
                match accounts.authenticate_device(&password).await {
                    Ok(device) => device.id.to_string() == username,
                    Err(error) => {
                        tracing::debug!(%error, "MQTT login refused");
                        false
                    }
                }
            });
            async move { check.await.unwrap_or(false) }
        },
    );
    settings
}

/// A loopback port nobody holds right now (rumqttd cannot report a port-0 bind).
pub fn free_loopback_port() -> Result<SocketAddr, MqttError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(MqttError::Internal)?;
    listener.local_addr().map_err(MqttError::Internal)
}
