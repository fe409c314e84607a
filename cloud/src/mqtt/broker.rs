//! The embedded broker: rumqttd inside the cloud process, on loopback only.
//!
//! Devices never reach it directly: they connect to the guard on
//! `mqtt_listen` (`super::guard`), which authorizes every packet and
//! forwards what is allowed to rumqttd's `guard` listener. The cloud's own
//! client uses a second loopback listener, so one client code path serves
//! the embedded and the external broker alike. Each listener has its own
//! login: the guard's listener takes only the guard's secret, the cloud's
//! listener only the cloud's username and secret.
//!
//! rumqttd has no shutdown API and reports a failed bind only in its log;
//! its ports are free loopback ports picked just before. The broker lives as
//! long as the process.

use std::collections::HashMap;
use std::net::SocketAddr;

use lastseen_shared::Secret;
use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};

use super::MqttConfig;
use super::guard::Upstream;
use super::{CLOUD_USERNAME, MqttError};

/// Milliseconds a new connection has to send its CONNECT (the guard's
/// timeout for devices, which includes a TLS handshake, too).
pub(super) const CONNECT_TIMEOUT_MS: u16 = 5_000;

/// Unacknowledged QoS 1 messages towards one connection (rumqttd's own cap is 100).
const MAX_INFLIGHT: usize = 100;

/// Room beyond a message's payload for its topic and packet id.
const HEADER_ROOM: usize = 64 * 1024 + 8;

/// rumqttd slots beyond `mqtt_max_connections` devices and the cloud's
/// client: a device that just left may still hold its slot for a moment
/// after the guard let a new one in.
const SLOT_HEADROOM: usize = 64;

/// How the cloud's client and the guard reach the embedded broker.
pub(super) struct Embedded {
    pub(super) internal: SocketAddr,
    pub(super) password: Secret,
    pub(super) guard: Upstream,
}

/// Starts the broker on its own thread; returns once its ports are claimed.
pub(super) fn start(config: &MqttConfig) -> Result<Embedded, MqttError> {
    let internal = crate::free_loopback_port().map_err(MqttError::Internal)?;
    let password = random_secret();
    let guard = Upstream {
        addr: crate::free_loopback_port().map_err(MqttError::Internal)?,
        secret: random_secret(),
    };

    let server = |name: &str, listen: SocketAddr, connections: ConnectionSettings| ServerSettings {
        name: name.to_owned(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let servers = HashMap::from([
        (
            "guard".to_owned(),
            server(
                "mqtt-guard",
                guard.addr,
                guard_settings(config, guard.secret.clone()),
            ),
        ),
        (
            "cloud".to_owned(),
            server(
                "mqtt-cloud",
                internal,
                cloud_settings(config, password.clone()),
            ),
        ),
    ]);
    let broker_config = rumqttd::Config {
        router: RouterConfig {
            max_connections: config.max_connections + 1 + SLOT_HEADROOM,
            max_outgoing_packet_count: 200,
            max_segment_size: config.broker_segment_bytes,
            max_segment_count: config.broker_segments,
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
    Ok(Embedded {
        internal,
        password,
        guard,
    })
}

fn random_secret() -> Secret {
    Secret::new(uuid::Uuid::new_v4().simple().to_string())
}

fn base_settings(config: &MqttConfig) -> ConnectionSettings {
    ConnectionSettings {
        connection_timeout_ms: CONNECT_TIMEOUT_MS,
        // The guard has checked each payload against its own limit; this
        // limit is on the whole packet.
        max_payload_size: config.max_message_bytes + HEADER_ROOM,
        max_inflight_count: MAX_INFLIGHT,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    }
}

/// The guard logs in as the device it speaks for (username = client id =
/// device id) with the guard's secret; the cloud's username never.
fn guard_settings(config: &MqttConfig, secret: Secret) -> ConnectionSettings {
    let mut settings = base_settings(config);
    settings.set_auth_handler(
        move |client_id: String, username: String, password: String| {
            let allowed = client_id == username
                && !username.starts_with(CLOUD_USERNAME)
                && same_secret(&password, secret.expose());
            async move { allowed }
        },
    );
    settings
}

/// The cloud's client logs in with [`CLOUD_USERNAME`] and a per-process secret.
fn cloud_settings(config: &MqttConfig, secret: Secret) -> ConnectionSettings {
    let mut settings = base_settings(config);
    settings.set_auth_handler(
        move |client_id: String, username: String, password: String| {
            let allowed = username == CLOUD_USERNAME
                && client_id.starts_with(CLOUD_USERNAME)
                && same_secret(&password, secret.expose());
            async move { allowed }
        },
    );
    settings
}

/// Compares in time independent of where the two differ.
fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
