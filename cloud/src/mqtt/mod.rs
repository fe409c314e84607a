//! MQTT transport: devices publish frame envelopes and statuses; the cloud
//! answers with acks and publishes their gate settings.
//!
//! - `broker`: the embedded rumqttd (`mqtt = "embedded"`, the default), on
//!   loopback only.
//! - `guard`: the embedded broker's device port (`mqtt_listen`), which
//!   authorizes every device per topic and ends revoked sessions.
//! - `session`: the cloud's own MQTT client (rumqttc), the same for the
//!   embedded and an external broker (`mqtt = "external"`): shared
//!   subscriptions on every device's frames and status topics, so several
//!   cloud nodes split the work.
//! - `frames`: one envelope -> verify -> `Ingest::ingest` -> ack, reject or drop.
//! - `status`: status intake and config publishing.
//! - `dynsec`: with `mqtt_dynsec`, provisions an external Mosquitto's
//!   dynamic-security plugin so the broker enforces each device's topics.
//!
//! Delivery: the client acknowledges each MQTT message (PUBACK) as it
//! arrives; the end-to-end receipt is the `Ack` on the device's ack topic,
//! sent once the frame is stored or refused for good. A frame without one
//! (queue full, storage down, a crash in between) stays in the device's spool
//! and is sent again; ingest is idempotent on `(device, seq)`. Withholding the
//! PUBACK instead would not bring a redelivery on a live connection, and
//! rumqttd refuses out-of-order PUBACKs, which concurrent ingest produces.

mod broker;
pub mod config;
mod dynsec;
pub mod frames;
mod guard;
mod session;
mod status;

use std::net::SocketAddr;

#[doc(hidden)]
pub use guard::unguarded_upstream;
use lastseen_shared::BrokerUrl;

use crate::state::AppState;
pub use config::{MqttConfig, MqttMode};

/// The username of the cloud's own client: the embedded broker's internal
/// listener takes only it, and the guard refuses it (and its prefix) to
/// devices.
const CLOUD_USERNAME: &str = "lastseen-cloud";

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error(
        "the embedded MQTT broker cannot listen on {addr} ({source}); set mqtt_listen / LASTSEEN_MQTT_LISTEN / --mqtt-listen to a free address, or mqtt = \"external\" or \"off\""
    )]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("embedded MQTT broker TLS: {0}")]
    Tls(String),
    #[error("cannot start the MQTT broker thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot reserve a loopback port for the MQTT broker: {0}")]
    Internal(std::io::Error),
    #[error("invalid mqtt_url: {0} (want mqtt://host:port or mqtts://host:port)")]
    Url(#[from] lastseen_shared::BrokerUrlError),
    #[error("invalid mqtt_topic_prefix: {0}")]
    Prefix(#[from] lastseen_shared::topics::PrefixError),
    #[error("cannot connect to the MQTT broker at {broker}: {message}")]
    Connect { broker: String, message: String },
}

/// Starts MQTT as configured; returns once the cloud's client is connected
/// and subscribed, so a wrong address or credential fails at startup.
pub async fn start(config: &MqttConfig, state: &AppState) -> Result<(), MqttError> {
    let target = match config.mode {
        MqttMode::Off => return Ok(()),
        MqttMode::Embedded => {
            let listener = guard::bind(config).await?;
            let embedded = broker::start(config)?;
            let target = session::Target::embedded(&embedded);
            let connect_timeout =
                std::time::Duration::from_millis(broker::CONNECT_TIMEOUT_MS.into());
            guard::start(listener, config, state, embedded.guard, connect_timeout)?;
            tracing::info!(listen = %config.listen, tls = config.tls_cert.is_some(), "embedded MQTT broker started");
            target
        }
        MqttMode::External => {
            let url = BrokerUrl::parse(config.url.as_deref().unwrap_or_default())?;
            session::Target::external(url, config)
        }
    };
    session::start(config, state, target).await
}
