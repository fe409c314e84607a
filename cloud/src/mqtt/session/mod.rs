//! The cloud's MQTT client: one connection per node, shared subscriptions
//! on every device's frames and status topics, driven by one event loop
//! ([`run`]) that never waits on the work it hands out.
//!
//! - `startup`: connect, provision the cloud's role with dynsec, subscribe.
//! - `intake`: one task per frame (at most `mqtt_max_in_flight` at once;
//!   more are dropped as `overloaded`), and one task recording the statuses
//!   in turn from a bounded queue (`mqtt/status.rs` keeps the books).
//! - `publish`: acks (signed with the device's key when the frame was), and
//!   gate settings, always signed and published again with the new key when
//!   a device's token is rotated.

mod intake;
mod publish;
mod startup;

use std::sync::Arc;
use std::time::Duration;

use lastseen_shared::{Backoff, BrokerUrl, Secret, TopicKind, Topics};
use rand::SeedableRng;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS,
    SubscribeFilter, Transport,
};
use tokio::sync::Semaphore;

use super::MqttConfig;
use super::broker::Embedded;
use super::dynsec::commands::RESPONSE_TOPIC;
use super::dynsec::{self, DynsecClient};
use super::status::{ConfiguredDevices, StatusQueue};
use super::{CLOUD_USERNAME, MqttError};
use crate::state::AppState;
use crate::tasks::spawn_named;
use startup::{Provision, first_session};

/// Requests (publishes, subscribes) queued for the event loop.
const REQUEST_CAPACITY: usize = 256;
/// Outgoing QoS 1 messages (acks, configs) awaiting the broker's PUBACK.
const OUTGOING_INFLIGHT: u16 = 100;
/// How long startup waits for the first CONNACK and SUBACK.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Waits between reconnection attempts, doubling up to the maximum.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// Where the cloud's client connects, and as whom.
pub(super) struct Target {
    url: BrokerUrl,
    credentials: Option<(String, Secret)>,
}

impl Target {
    pub(super) fn embedded(broker: &Embedded) -> Self {
        Self {
            url: BrokerUrl {
                host: broker.internal.ip().to_string(),
                port: broker.internal.port(),
                tls: false,
            },
            credentials: Some((CLOUD_USERNAME.to_owned(), broker.password.clone())),
        }
    }

    pub(super) fn external(url: BrokerUrl, config: &MqttConfig) -> Self {
        let credentials = config.username.clone().map(|user| {
            let password = config.password.clone().unwrap_or_default();
            (user, password)
        });
        Self { url, credentials }
    }
}

/// What every message task needs.
struct Session {
    client: AsyncClient,
    topics: Topics,
    state: AppState,
    configured: ConfiguredDevices,
    /// Statuses waiting for the one task that records them.
    statuses: StatusQueue,
    /// Larger statuses are dropped (the embedded broker refuses them
    /// already; an external one may not).
    max_status_bytes: usize,
}

pub(super) async fn start(
    config: &MqttConfig,
    state: &AppState,
    target: Target,
) -> Result<(), MqttError> {
    let topics = Topics::new(&config.topic_prefix)?;
    let broker = target.url.to_string();
    let (client, mut eventloop) = connect(config, target);
    let connect_error = |message: String| MqttError::Connect {
        broker: broker.clone(),
        message,
    };
    let filters = vec![
        SubscribeFilter::new(
            topics.shared_filter(&config.shared_group, TopicKind::Frames),
            QoS::AtLeastOnce,
        ),
        SubscribeFilter::new(
            topics.shared_filter(&config.shared_group, TopicKind::Status),
            QoS::AtLeastOnce,
        ),
    ];
    // With dynsec, the cloud's role is made before it subscribes (the
    // broker would refuse its shared subscriptions without it), and the
    // credential changes are followed from before startup ends.
    let cloud_user = config.username.as_deref().unwrap_or_default();
    let dynsec = config.dynsec.then(|| {
        let client = Arc::new(DynsecClient::new(client.clone(), dynsec::ANSWER_TIMEOUT));
        (client, state.credentials.subscribe())
    });
    let provision = dynsec.as_ref().map(|(client, _)| Provision {
        client: client.as_ref(),
        commands: dynsec::cloud_role_commands(&topics, &config.shared_group, cloud_user),
        user: cloud_user,
    });
    tokio::time::timeout(
        STARTUP_TIMEOUT,
        first_session(&client, &mut eventloop, &filters, provision.as_ref()),
    )
    .await
    .map_err(|_| connect_error("no answer".to_owned()))?
    .map_err(connect_error)?;
    tracing::info!(%broker, prefix = topics.prefix(), group = %config.shared_group, dynsec = config.dynsec, "MQTT ingest subscribed");
    let mut resubscribe = filters;
    drop(provision);
    let dynsec = dynsec.map(|(client, changes)| {
        resubscribe.insert(
            0,
            SubscribeFilter::new(RESPONSE_TOPIC.to_owned(), QoS::AtLeastOnce),
        );
        dynsec::start(
            config,
            state.devices.token_ttl_secs(),
            state.store.clone(),
            client.clone(),
            topics.clone(),
            changes,
        );
        client
    });

    let session = Arc::new(Session {
        client,
        topics,
        state: state.clone(),
        configured: ConfiguredDevices::default(),
        statuses: StatusQueue::new(config.status_queue),
        max_status_bytes: config.max_status_bytes,
    });
    spawn_named("mqtt-status", session.clone().record_statuses());
    spawn_named(
        "mqtt-config",
        publish::publish_changes(session.clone(), state.control.subscribe()),
    );
    spawn_named(
        "mqtt-config-rekey",
        publish::publish_on_rotation(session.clone(), state.credentials.subscribe()),
    );
    spawn_named(
        "mqtt-session",
        run(
            session,
            eventloop,
            resubscribe,
            dynsec,
            Arc::new(Semaphore::new(config.max_in_flight)),
        ),
    );
    Ok(())
}

fn connect(config: &MqttConfig, target: Target) -> (AsyncClient, EventLoop) {
    let client_id = format!("{CLOUD_USERNAME}-{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(client_id, target.url.host, target.url.port);
    // Room for the envelope around a frame, and for the MQTT header.
    let max_packet = config.max_message_bytes + 64 * 1024;
    options
        .set_keep_alive(Duration::from_secs(config.keep_alive_secs))
        .set_clean_session(true)
        .set_max_packet_size(max_packet, max_packet)
        .set_inflight(OUTGOING_INFLIGHT);
    if let Some((user, password)) = target.credentials {
        options.set_credentials(user, password.expose());
    }
    if target.url.tls {
        options.set_transport(Transport::tls_with_default_config());
    }
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    // Without it, small QoS 1 messages wait for delayed ACKs (10x slower).
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Drives the connection for the life of the process; reconnects (and
/// subscribes again: sessions are clean) after any failure, backing off
/// with jitter so the nodes of a cluster do not come back in step.
#[tracing::instrument(name = "mqtt_session", skip_all)]
async fn run(
    session: Arc<Session>,
    mut eventloop: EventLoop,
    filters: Vec<SubscribeFilter>,
    dynsec: Option<Arc<DynsecClient>>,
    in_flight: Arc<Semaphore>,
) {
    let mut backoff = Backoff::new(RECONNECT_MIN, RECONNECT_MAX);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) if publish.topic == RESPONSE_TOPIC => {
                if let Some(dynsec) = &dynsec {
                    dynsec.on_response(&publish.payload);
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                session.take(publish.topic, publish.payload, &in_flight);
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                tracing::info!("MQTT connection back");
                if let Err(error) = session.client.try_subscribe_many(filters.clone()) {
                    tracing::error!(%error, "cannot subscribe again");
                }
            }
            Ok(_) => {}
            Err(error) => {
                log_connection_error(&error);
                tokio::time::sleep(backoff.next_delay(&mut rng)).await;
            }
        }
    }
}

fn log_connection_error(error: &ConnectionError) {
    tracing::warn!(%error, "MQTT connection lost; reconnecting");
}
