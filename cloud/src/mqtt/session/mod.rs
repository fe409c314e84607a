//! The cloud's MQTT client: one connection per node, shared subscriptions
//! on every device's frames and status topics, one task per frame (at most
//! `mqtt_max_in_flight` at once; more are dropped as `overloaded`), one
//! task recording the statuses in turn from a bounded queue (`status.rs`),
//! and the publishes back to devices: acks (signed with the
//! device's key when the frame was), and gate settings, always signed and
//! published again with the new key when a device's token is rotated.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{DeviceId, GateSettings, TopicKind, Topics};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS,
    SubscribeFilter, SubscribeReasonCode, Transport,
};
use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;

use super::broker::{CLOUD_USERNAME, Embedded};
use super::dynsec::commands::{Command, RESPONSE_TOPIC};
use super::dynsec::{self, DynsecClient, Pending};
use super::{BrokerUrl, MqttError, frames, status};
use crate::config::{Config, Secret};
use crate::devices::credentials::CredentialChange;
use crate::http::AppState;
use crate::metrics::FrameOutcome;
use crate::spawn_named;

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
    host: String,
    port: u16,
    tls: bool,
    credentials: Option<(String, Secret)>,
}

impl Target {
    pub(super) fn embedded(broker: &Embedded) -> Self {
        Self {
            host: broker.internal.ip().to_string(),
            port: broker.internal.port(),
            tls: false,
            credentials: Some((CLOUD_USERNAME.to_owned(), broker.password.clone())),
        }
    }

    pub(super) fn external(url: BrokerUrl, config: &Config) -> Self {
        let credentials = config.mqtt_username.clone().map(|user| {
            let password = config.mqtt_password.clone().unwrap_or_default();
            (user, password)
        });
        Self {
            host: url.host,
            port: url.port,
            tls: url.tls,
            credentials,
        }
    }

    fn describe(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

/// What every message task needs.
pub(super) struct Session {
    pub(super) client: AsyncClient,
    pub(super) topics: Topics,
    pub(super) state: AppState,
    /// Devices whose settings this process has published since the device
    /// last came online; the broker may have lost earlier retained messages.
    pub(super) configured: Mutex<HashSet<DeviceId>>,
    /// Statuses waiting for the one task that records them.
    pub(super) statuses: status::StatusQueue,
    /// Larger statuses are dropped (the embedded broker refuses them
    /// already; an external one may not).
    pub(super) max_status_bytes: usize,
}

pub(super) async fn start(
    config: &Config,
    state: &AppState,
    target: Target,
) -> Result<(), MqttError> {
    let topics = Topics::new(&config.mqtt_topic_prefix)?;
    let broker = target.describe();
    let (client, mut eventloop) = connect(config, target);
    let connect_error = |message: String| MqttError::Connect {
        broker: broker.clone(),
        message,
    };
    let filters = vec![
        SubscribeFilter::new(
            topics.shared_filter(&config.mqtt_shared_group, TopicKind::Frames),
            QoS::AtLeastOnce,
        ),
        SubscribeFilter::new(
            topics.shared_filter(&config.mqtt_shared_group, TopicKind::Status),
            QoS::AtLeastOnce,
        ),
    ];
    // With dynsec, the cloud's role is made before it subscribes (the
    // broker would refuse its shared subscriptions without it), and the
    // credential changes are followed from before startup ends.
    let cloud_user = config.mqtt_username.as_deref().unwrap_or_default();
    let dynsec = config.mqtt_dynsec.then(|| {
        let client = Arc::new(DynsecClient::new(client.clone(), dynsec::ANSWER_TIMEOUT));
        (client, state.credentials.subscribe())
    });
    let provision = dynsec.as_ref().map(|(client, _)| Provision {
        client: client.as_ref(),
        commands: dynsec::cloud_role_commands(&topics, &config.mqtt_shared_group, cloud_user),
        user: cloud_user,
    });
    tokio::time::timeout(
        STARTUP_TIMEOUT,
        first_session(&client, &mut eventloop, &filters, provision.as_ref()),
    )
    .await
    .map_err(|_| connect_error("no answer".to_owned()))?
    .map_err(connect_error)?;
    tracing::info!(%broker, prefix = topics.prefix(), group = %config.mqtt_shared_group, dynsec = config.mqtt_dynsec, "MQTT ingest subscribed");
    let mut resubscribe = filters;
    drop(provision);
    let dynsec = dynsec.map(|(client, changes)| {
        resubscribe.insert(
            0,
            SubscribeFilter::new(RESPONSE_TOPIC.to_owned(), QoS::AtLeastOnce),
        );
        dynsec::start(
            config,
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
        configured: Mutex::new(HashSet::new()),
        statuses: status::StatusQueue::new(config.mqtt_status_queue),
        max_status_bytes: config.mqtt_max_status_bytes,
    });
    spawn_named("mqtt-status", status::record(session.clone()));
    spawn_named(
        "mqtt-config",
        publish_changes(session.clone(), state.control.subscribe()),
    );
    spawn_named(
        "mqtt-config-rekey",
        publish_on_rotation(session.clone(), state.credentials.subscribe()),
    );
    spawn_named(
        "mqtt-session",
        run(
            session,
            eventloop,
            resubscribe,
            dynsec,
            Arc::new(Semaphore::new(config.mqtt_max_in_flight)),
        ),
    );
    Ok(())
}

fn connect(config: &Config, target: Target) -> (AsyncClient, EventLoop) {
    let client_id = format!("{CLOUD_USERNAME}-{}", uuid::Uuid::new_v4().simple());
    let mut options = MqttOptions::new(client_id, target.host, target.port);
    // Room for the envelope around a frame, and for the MQTT header.
    let max_packet = config.mqtt_max_message_bytes + 64 * 1024;
    options
        .set_keep_alive(Duration::from_secs(config.mqtt_keep_alive_secs))
        .set_clean_session(true)
        .set_max_packet_size(max_packet, max_packet)
        .set_inflight(OUTGOING_INFLIGHT);
    if let Some((user, password)) = target.credentials {
        options.set_credentials(user, password.expose());
    }
    if target.tls {
        options.set_transport(Transport::tls_with_default_config());
    }
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
    // Without it, small QoS 1 messages wait for delayed ACKs (10x slower).
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    (client, eventloop)
}

/// Where startup stands.
enum Stage<'a> {
    Connecting,
    /// Subscribing to the dynamic-security answers.
    AnswersSubscribed,
    /// The cloud's role requested, answers awaited.
    Provisioning(Pending<'a>),
    /// The role being given to the cloud's own user, which ends this
    /// session on Mosquitto 2.0.11; startup goes on after reconnecting.
    JoiningRole(Pending<'a>),
    /// The devices' topics requested.
    Subscribed,
}

/// How often startup reconnects after the broker ended its session to
/// apply a role change (once on the first start with dynsec; once more
/// when the prefix or group changed).
const PROVISIONING_ROUNDS: u32 = 3;

/// What startup provisions with dynsec: the client, the commands that make
/// the cloud's role, and the cloud's own broker user.
pub(super) struct Provision<'a> {
    client: &'a DynsecClient,
    commands: Vec<Command>,
    user: &'a str,
}

/// Polls until connected and subscribed, so startup can report failure.
/// With `provision` (dynsec), it first subscribes to the plugin's answers
/// and makes the cloud's role, then subscribes to the devices' topics.
async fn first_session<'a>(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    filters: &[SubscribeFilter],
    provision: Option<&Provision<'a>>,
) -> Result<(), String> {
    let mut stage = Stage::Connecting;
    let mut rounds = 0;
    let subscribe = |filters: Vec<SubscribeFilter>| {
        client
            .try_subscribe_many(filters)
            .map_err(|e| e.to_string())
    };
    loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            // Not listening yet (the embedded broker binds on its own
            // thread, a broker may start beside the cloud): try again,
            // within the caller's timeout.
            Err(ConnectionError::Io(_) | ConnectionError::NetworkTimeout)
                if matches!(stage, Stage::Connecting) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            // Ended by the broker while it applied a role change: the
            // commands go on without us; provisioning again finds them done.
            Err(error)
                if matches!(
                    stage,
                    Stage::AnswersSubscribed | Stage::Provisioning(_) | Stage::JoiningRole(_)
                ) && rounds < PROVISIONING_ROUNDS =>
            {
                rounds += 1;
                tracing::info!(%error, "the broker ended the session while the cloud's role was set up (Mosquitto does so on role changes); reconnecting");
                stage = Stage::Connecting;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        stage = match (event, stage) {
            (Event::Incoming(Packet::ConnAck(_)), _) => match provision {
                Some(_) => {
                    subscribe(vec![SubscribeFilter::new(
                        RESPONSE_TOPIC.to_owned(),
                        QoS::AtLeastOnce,
                    )])?;
                    Stage::AnswersSubscribed
                }
                None => {
                    subscribe(filters.to_vec())?;
                    Stage::Subscribed
                }
            },
            (Event::Incoming(Packet::SubAck(ack)), stage) => {
                if !ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_)))
                {
                    return Err(format!("subscription refused: {:?}", ack.return_codes));
                }
                match (stage, provision) {
                    (Stage::AnswersSubscribed, Some(provision)) => Stage::Provisioning(
                        provision
                            .client
                            .send_now(provision.commands.clone())
                            .map_err(|e| e.to_string())?,
                    ),
                    (Stage::Subscribed, _) => return Ok(()),
                    (stage, _) => stage,
                }
            }
            (Event::Incoming(Packet::Publish(publish)), stage)
                if publish.topic == RESPONSE_TOPIC =>
            {
                match provision {
                    None => stage,
                    Some(provision) => {
                        provisioning_answer(provision, filters, stage, &publish.payload, subscribe)?
                    }
                }
            }
            (_, stage) => stage,
        };
    }
}

/// One message on the answers topic during startup: the next stage.
fn provisioning_answer<'a>(
    provision: &Provision<'a>,
    filters: &[SubscribeFilter],
    stage: Stage<'a>,
    payload: &[u8],
    subscribe: impl Fn(Vec<SubscribeFilter>) -> Result<(), String>,
) -> Result<Stage<'a>, String> {
    provision.client.on_response(payload);
    Ok(match stage {
        Stage::Provisioning(mut pending) => match pending.try_take() {
            Some(answers) => {
                if dynsec::cloud_has_role(&answers).map_err(|e| e.to_string())? {
                    subscribe(filters.to_vec())?;
                    Stage::Subscribed
                } else {
                    tracing::info!(
                        user = provision.user,
                        "giving the cloud's broker user its role; the broker ends its sessions once"
                    );
                    Stage::JoiningRole(
                        provision
                            .client
                            .send_now(dynsec::cloud_join_commands(provision.user))
                            .map_err(|e| e.to_string())?,
                    )
                }
            }
            None => Stage::Provisioning(pending),
        },
        // A broker that does not end the session on role
        // changes answers instead.
        Stage::JoiningRole(mut pending) => match pending.try_take() {
            Some(answers) => {
                dynsec::check_answers(&answers).map_err(|e| e.to_string())?;
                subscribe(filters.to_vec())?;
                Stage::Subscribed
            }
            None => Stage::JoiningRole(pending),
        },
        stage => stage,
    })
}

/// Drives the connection for the life of the process; reconnects (and
/// subscribes again: sessions are clean) after any failure.
async fn run(
    session: Arc<Session>,
    mut eventloop: EventLoop,
    filters: Vec<SubscribeFilter>,
    dynsec: Option<Arc<DynsecClient>>,
    in_flight: Arc<Semaphore>,
) {
    let mut backoff = RECONNECT_MIN;
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
                backoff = RECONNECT_MIN;
                tracing::info!("MQTT connection back");
                if let Err(error) = session.client.try_subscribe_many(filters.clone()) {
                    tracing::error!(%error, "cannot subscribe again");
                }
            }
            Ok(_) => {}
            Err(error) => {
                log_connection_error(&error);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_MAX);
            }
        }
    }
}

fn log_connection_error(error: &ConnectionError) {
    tracing::warn!(%error, "MQTT connection lost; reconnecting");
}

/// Publishes each settings change on its device's config topic.
async fn publish_changes(
    session: Arc<Session>,
    mut changes: tokio::sync::broadcast::Receiver<crate::devices::control::SettingsChange>,
) {
    loop {
        match changes.recv().await {
            Ok(change) => {
                session
                    .publish_settings(change.device, &change.settings)
                    .await;
            }
            Err(RecvError::Lagged(missed)) => {
                // The changes are in the store: a device gets them the next
                // time it comes online, or from GET /device/settings.
                tracing::warn!(missed, "settings changes not published: too many at once");
                session.forget_all_configured();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// After a device's token is rotated, its retained settings are signed with
/// the old key, which its agent (once it has the new token) refuses: publish
/// them again with the new one, whether the device is online or not (the
/// node that issued the token is the one that hears of it, and an offline
/// device finds them retained when it comes back).
async fn publish_on_rotation(
    session: Arc<Session>,
    mut changes: tokio::sync::broadcast::Receiver<CredentialChange>,
) {
    loop {
        match changes.recv().await {
            Ok(CredentialChange::Issued {
                device,
                rotated: true,
                ..
            }) => match session.state.control.current_settings(device).await {
                Ok(settings) => session.publish_settings(device, &settings).await,
                Err(error) => {
                    tracing::warn!(%device, %error, "cannot read settings to sign again");
                }
            },
            // A new device gets its settings when it first reports online.
            Ok(CredentialChange::Issued { .. }) => {}
            Ok(CredentialChange::Revoked { device } | CredentialChange::Deleted { device }) => {
                session.forget_configured(device);
            }
            Err(RecvError::Lagged(missed)) => {
                // Each device gets its settings again when it next comes online.
                tracing::warn!(
                    missed,
                    "credential changes missed: settings are signed again at the next online status"
                );
                session.forget_all_configured();
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Session {
    /// One message off the connection. The loop never waits for room: it
    /// must go on answering the broker's pings. A frame beyond
    /// `mqtt_max_in_flight` gets no ack and is sent again by its device,
    /// like one refused by a full queue; a status goes to the bounded queue.
    fn take(self: &Arc<Self>, topic: String, payload: bytes::Bytes, in_flight: &Arc<Semaphore>) {
        match self.topics.parse(&topic) {
            Some((device, TopicKind::Frames)) => {
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    self.state.metrics.frame(
                        crate::metrics::Transport::Mqtt,
                        FrameOutcome::Dropped(frames::Dropped::Overloaded.as_str()),
                    );
                    return;
                };
                let session = self.clone();
                tokio::spawn(async move {
                    session.frame(device, payload).await;
                    drop(permit);
                });
            }
            Some((device, TopicKind::Status)) => status::offer(self, device, payload),
            // Only frames and status are subscribed to; anything else is a
            // broker delivering more than asked.
            _ => tracing::debug!(%topic, "MQTT message on an unexpected topic"),
        }
    }

    async fn frame(&self, device: DeviceId, payload: bytes::Bytes) {
        let state = &self.state;
        let verdict = frames::handle(&state.accounts, &state.ingest, device, payload).await;
        match verdict {
            frames::Verdict::Answer {
                device,
                ack,
                outcome,
                key,
            } => {
                state
                    .metrics
                    .frame(crate::metrics::Transport::Mqtt, outcome);
                let body = match serde_json::to_vec(&ack) {
                    Ok(body) => body,
                    Err(error) => {
                        tracing::error!(%error, "cannot encode an ack");
                        return;
                    }
                };
                // A v1 sender cannot check a signature: it gets the plain body.
                let payload = match key {
                    Some(key) => signed::seal(&key, SignedKind::Ack, device, &body),
                    None => body,
                };
                match self
                    .client
                    .publish(self.topics.ack(device), QoS::AtLeastOnce, false, payload)
                    .await
                {
                    Ok(()) => state.metrics.ack_sent(),
                    Err(error) => tracing::warn!(%error, "cannot queue an ack"),
                }
            }
            frames::Verdict::Drop(reason) => {
                tracing::debug!(%device, reason = reason.as_str(), "MQTT frame dropped");
                state.metrics.frame(
                    crate::metrics::Transport::Mqtt,
                    FrameOutcome::Dropped(reason.as_str()),
                );
            }
        }
    }

    /// Retained, so a device gets its settings whenever it subscribes;
    /// signed with the device's current key (none for a revoked or deleted
    /// device: nothing is published).
    pub(super) async fn publish_settings(&self, device: DeviceId, settings: &GateSettings) {
        let body = match serde_json::to_vec(settings) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "cannot encode gate settings");
                return;
            }
        };
        let key = match self.state.accounts.device_key(device).await {
            Ok(Some((_, key))) => key,
            Ok(None) => {
                tracing::debug!(%device, "no settings for an unknown or revoked device");
                return;
            }
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's key to sign its settings");
                self.forget_configured(device);
                return;
            }
        };
        let payload = signed::seal(&key, SignedKind::Config, device, &body);
        match self
            .client
            .publish(self.topics.config(device), QoS::AtLeastOnce, true, payload)
            .await
        {
            Ok(()) => {
                self.configured
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(device);
                self.state.metrics.config_published();
            }
            Err(error) => tracing::warn!(%error, %device, "cannot queue gate settings"),
        }
    }

    /// An ack with only the device's highest stored seq (signed with its
    /// key; nothing for a device without frames, or without a key: a legacy
    /// token cannot check it, and learns the seq from its first
    /// `seq_conflict` instead).
    pub(super) async fn publish_highest_seq(&self, device: DeviceId) {
        let highest_seq = match self.state.ingest.highest_seq(device).await {
            Ok(Some(seq)) => seq,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's highest seq");
                return;
            }
        };
        let key = match self.state.accounts.device_key(device).await {
            Ok(Some((_, key))) => key,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%device, %error, "cannot read a device's key to sign its highest seq");
                return;
            }
        };
        let ack = lastseen_shared::Ack {
            highest_seq: Some(highest_seq),
            ..Default::default()
        };
        let Ok(body) = serde_json::to_vec(&ack) else {
            return;
        };
        let payload = signed::seal(&key, SignedKind::Ack, device, &body);
        match self
            .client
            .publish(self.topics.ack(device), QoS::AtLeastOnce, false, payload)
            .await
        {
            Ok(()) => self.state.metrics.ack_sent(),
            Err(error) => tracing::warn!(%error, %device, "cannot queue the highest seq"),
        }
    }

    /// Every device gets its settings again the next time it comes online.
    fn forget_all_configured(&self) {
        self.configured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The device gets its settings again the next time it comes online.
    pub(super) fn forget_configured(&self, device: DeviceId) {
        self.configured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&device);
    }
}
