//! A device (or an intruder) speaking MQTT to the cloud's broker, for the
//! MQTT tests: rumqttc with the device session of `shared/README.md`.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use lastseen_cloud::config::Config;
use lastseen_cloud::testkit::CloudMqtt;
pub(crate) use lastseen_cloud::testkit::MOSQUITTO;
use lastseen_shared::envelope::{self, EnvelopeHeader};
use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{Ack, DeviceId, DeviceKey, DeviceStatus, GateSettings, Topics};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, NetworkOptions,
    Packet, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// Which broker a test runs against.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Broker {
    /// rumqttd inside the cloud, on a free port.
    Embedded,
    /// The machine's Mosquitto on 127.0.0.1:1883, under a unique topic prefix.
    Mosquitto,
    /// A Mosquitto of the test's own with the dynamic-security plugin, which
    /// the cloud provisions (`mqtt_dynsec`): the production setup.
    Dynsec,
}

/// Runs an `async fn(Broker)` scenario as one test per shared broker:
/// `<scenario>::embedded` and `<scenario>::mosquitto`.
macro_rules! on_each_broker {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$scenario($crate::mqtt_client::Broker::Embedded).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mosquitto() {
                super::$scenario($crate::mqtt_client::Broker::Mosquitto).await;
            }
        }
    };
}
pub(crate) use on_each_broker;

/// The settings for `broker`; returns the address devices connect to.
pub(crate) fn use_broker(config: &mut Config, broker: Broker) -> String {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    match broker {
        Broker::Embedded => {
            CloudMqtt::Embedded.apply(config).expect("a free port");
            config.mqtt.listen.to_string()
        }
        Broker::Mosquitto => {
            let prefix = format!("lastseen-test/{unique}");
            CloudMqtt::Mosquitto { prefix }
                .apply(config)
                .expect("no port to reserve");
            config.mqtt.shared_group = format!("g{unique}");
            MOSQUITTO.to_owned()
        }
        Broker::Dynsec => {
            let broker = crate::mosquitto_dynsec::DynsecBroker::start();
            broker.configure(config);
            let address = broker.address.clone();
            broker.keep_for_this_test();
            address
        }
    }
}

/// How long a device's first login may be refused: with dynsec, the cloud
/// gives a new device its broker login just after the API has answered.
const LOGIN_PATIENCE: Duration = Duration::from_secs(10);

fn is_refusal(error: &ConnectionError) -> bool {
    matches!(
        error,
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
        )
    )
}

pub(crate) struct MqttDevice {
    pub(crate) client: AsyncClient,
    pub(crate) id: DeviceId,
    pub(crate) topics: Topics,
    /// The MAC key from the device's token, as the agent reads it.
    pub(crate) key: Option<DeviceKey>,
    messages: mpsc::UnboundedReceiver<(String, Bytes)>,
    task: JoinHandle<()>,
}

impl Drop for MqttDevice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn options(broker: &str, client_id: &str, username: &str, password: &str) -> MqttOptions {
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let mut options = MqttOptions::new(client_id, host, port.parse().expect("port"));
    options
        .set_credentials(username, password)
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(16 << 20, 16 << 20);
    options
}

/// Connects as a device (client id = username = device id, password =
/// token) with its last will, and subscribes to its ack and config topics.
pub(crate) async fn connect_device(
    broker: &str,
    topics: &Topics,
    id: &str,
    token: &str,
) -> MqttDevice {
    let device = DeviceId::parse(id).expect("device id");
    let mut options = options(broker, id, id, token);
    options.set_last_will(LastWill::new(
        topics.status(device),
        serde_json::to_vec(&DeviceStatus::offline()).expect("JSON"),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (sender, messages) = mpsc::unbounded_channel();
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let subscriber = client.clone();
    let filters = [topics.ack(device), topics.config(device)];
    let task = tokio::spawn(async move {
        let mut subscribed = Some(subscribed);
        let refusals_until = std::time::Instant::now() + LOGIN_PATIENCE;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for filter in &filters {
                        subscriber
                            .subscribe(filter.clone(), QoS::AtLeastOnce)
                            .await
                            .expect("subscribe");
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(Ok(()));
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = sender.send((publish.topic, publish.payload));
                }
                Ok(_) => {}
                Err(error)
                    if subscribed.is_some()
                        && is_refusal(&error)
                        && std::time::Instant::now() < refusals_until =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => {
                    if let Some(subscribed) = subscribed.take() {
                        let _ = subscribed.send(Err(error));
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    match tokio::time::timeout(PATIENCE, ready).await {
        Ok(Ok(Ok(()))) => {}
        outcome => panic!("device {id} could not connect to {broker}: {outcome:?}"),
    }
    // The second SubAck (config) may still be in flight; the broker handles
    // the two subscribes in order, before any later publish of ours.
    MqttDevice {
        client,
        id: device,
        topics: topics.clone(),
        key: DeviceKey::from_token(token),
        messages,
        task,
    }
}

/// Tries to connect with these credentials; the broker's answer.
pub(crate) async fn try_login(
    broker: &str,
    client_id: &str,
    password: &str,
) -> Result<(), ConnectionError> {
    try_login_as(broker, client_id, client_id, password).await
}

/// [`try_login`] with a username other than the client id.
pub(crate) async fn try_login_as(
    broker: &str,
    client_id: &str,
    username: &str,
    password: &str,
) -> Result<(), ConnectionError> {
    let (client, mut eventloop) =
        AsyncClient::new(options(broker, client_id, username, password), 8);
    loop {
        if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
            break;
        }
    }
    // Say goodbye and wait until the broker has closed: a probe that just
    // drops its socket can still hold the client id when the real client
    // logs in with it, and the broker's takeover then loses that client's will.
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while eventloop.poll().await.is_ok() {}
    })
    .await;
    Ok(())
}

/// Waits until a new device's login works (with dynsec the cloud creates it
/// just after the API answered); panics on any other failure.
pub(crate) async fn wait_for_login(broker: &str, client_id: &str, password: &str) {
    let refusals_until = std::time::Instant::now() + LOGIN_PATIENCE;
    loop {
        match try_login(broker, client_id, password).await {
            Ok(()) => return,
            Err(error) if is_refusal(&error) && std::time::Instant::now() < refusals_until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{client_id} cannot log in to {broker}: {error}"),
        }
    }
}

fn header(device: DeviceId, seq: u64) -> EnvelopeHeader {
    let captured_at: DateTime<Utc> = Utc::now();
    EnvelopeHeader {
        device,
        seq,
        captured_at,
        measurements: Vec::new(),
    }
}

/// A v2 envelope, signed with the key inside `token`, as agents send it.
pub(crate) fn envelope(device: DeviceId, token: &str, seq: u64, jpeg: &[u8]) -> Vec<u8> {
    let key = DeviceKey::from_token(token).expect("a device token with a key (mk)");
    envelope::encode_v2(&header(device, seq), jpeg, &key).expect("encodes")
}

/// A v1 envelope with the token inside, as agents before 0.2 send it.
pub(crate) fn envelope_v1(device: DeviceId, token: &str, seq: u64, jpeg: &[u8]) -> Vec<u8> {
    envelope::encode_v1(&header(device, seq), token, jpeg).expect("encodes")
}

impl MqttDevice {
    /// Publishes an envelope on `topic_device`'s frames topic (its own unless
    /// a test forges one).
    pub(crate) async fn publish_frame(&self, topic_device: DeviceId, envelope: Vec<u8>) {
        self.client
            .publish(
                self.topics.frames(topic_device),
                QoS::AtLeastOnce,
                false,
                envelope,
            )
            .await
            .expect("publish frame");
    }

    pub(crate) async fn publish_status(&self, status: &DeviceStatus) {
        self.client
            .publish(
                self.topics.status(self.id),
                QoS::AtLeastOnce,
                true,
                serde_json::to_vec(status).expect("JSON"),
            )
            .await
            .expect("publish status");
    }

    /// The next message on one of the device's topics.
    pub(crate) async fn next_message(&mut self, within: Duration) -> Option<(String, Bytes)> {
        tokio::time::timeout(within, self.messages.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next ack, which must verify with the device's key as the agent
    /// checks it; config messages met on the way are skipped.
    pub(crate) async fn next_ack(&mut self) -> Ack {
        let payload = self.next_raw_ack().await;
        self.open_ack(&payload)
            .expect("an Ack signed with the device's key")
    }

    /// The ack in a payload, if it is one signed with the device's key.
    pub(crate) fn open_ack(&self, payload: &[u8]) -> Option<Ack> {
        let body = signed::open(self.key.as_ref(), SignedKind::Ack, self.id, payload).ok()?;
        serde_json::from_slice(body).ok()
    }

    /// The next ack's payload as it came; config messages are skipped.
    pub(crate) async fn next_raw_ack(&mut self) -> Bytes {
        let ack_topic = self.topics.ack(self.id);
        loop {
            let (topic, payload) = self.next_message(PATIENCE).await.expect("an ack in time");
            if topic == ack_topic {
                return payload;
            }
        }
    }

    /// The settings in a config message, which must verify with `key` (the
    /// device's own unless a test says otherwise).
    pub(crate) fn settings_in(&self, payload: &[u8], key: Option<&DeviceKey>) -> GateSettings {
        let key = key.or(self.key.as_ref()).expect("a device key");
        let body = signed::open(Some(key), SignedKind::Config, self.id, payload)
            .expect("settings signed with the device's key");
        serde_json::from_slice(body).expect("GateSettings")
    }

    /// Every message received so far, without waiting.
    pub(crate) fn drain(&mut self) -> Vec<(String, Bytes)> {
        let mut all = Vec::new();
        while let Ok(message) = self.messages.try_recv() {
            all.push(message);
        }
        all
    }

    /// Ends the connection without DISCONNECT, as a crash or a lost link
    /// would: the broker then publishes the last will.
    pub(crate) fn vanish(self) {
        self.task.abort();
    }

    /// Leaves nothing retained behind on a shared broker.
    pub(crate) async fn clear_retained(&self) {
        for topic in [self.topics.status(self.id), self.topics.config(self.id)] {
            let _ = self
                .client
                .publish(topic, QoS::AtLeastOnce, true, Vec::new())
                .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What an [`MqttPeer`] saw, in order.
#[derive(Debug)]
pub(crate) enum Seen {
    Message(String, Bytes),
    SubAck(Vec<SubscribeReasonCode>),
    /// The connection ended (refused, dropped or closed by the broker); the
    /// peer does not reconnect.
    Closed,
}

/// An MQTT client that does what it is told and reports what it sees,
/// without reconnecting: an attacker's device, or a privileged observer.
pub(crate) struct MqttPeer {
    pub(crate) client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    closed: bool,
    task: JoinHandle<()>,
}

impl Drop for MqttPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects with these credentials (client id = username); panics unless
/// the broker accepts.
pub(crate) async fn connect_peer(broker: &str, client_id: &str, password: &str) -> MqttPeer {
    connect_peer_as(broker, client_id, client_id, password).await
}

/// [`connect_peer`] with a username other than the client id.
pub(crate) async fn connect_peer_as(
    broker: &str,
    client_id: &str,
    username: &str,
    password: &str,
) -> MqttPeer {
    let mut options = options(broker, client_id, username, password);
    options.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let (sender, seen) = mpsc::unbounded_channel();
    let (connected, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connected = Some(connected);
        loop {
            let seen = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(connected) = connected.take() {
                        let _ = connected.send(Ok(()));
                    }
                    continue;
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => Seen::SubAck(ack.return_codes),
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    Seen::Message(publish.topic, publish.payload)
                }
                Ok(_) => continue,
                Err(error) => {
                    if let Some(connected) = connected.take() {
                        let _ = connected.send(Err(error));
                        return;
                    }
                    let _ = sender.send(Seen::Closed);
                    return;
                }
            };
            let _ = sender.send(seen);
        }
    });
    match tokio::time::timeout(PATIENCE, ready).await {
        Ok(Ok(Ok(()))) => {}
        outcome => panic!("{client_id} could not connect to {broker}: {outcome:?}"),
    }
    MqttPeer {
        client,
        seen,
        closed: false,
        task,
    }
}

impl MqttPeer {
    /// Subscribes and waits for the broker's answer: the SUBACK's return
    /// codes, or `None` if the connection ended instead.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> Option<Vec<SubscribeReasonCode>> {
        if self
            .client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .is_err()
        {
            return None;
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(Seen::SubAck(codes))) => return Some(codes),
                Ok(Some(Seen::Message(..))) => continue,
                Ok(Some(Seen::Closed) | None) => {
                    self.closed = true;
                    return None;
                }
                Err(_) => panic!("no answer to SUBSCRIBE {filter}"),
            }
        }
    }

    /// Publishes at QoS 1; a broker that refuses it may close the connection.
    pub(crate) async fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        let _ = self
            .client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await;
    }

    /// Every message that arrives within `window` (a quiet period, since a
    /// test of what must *not* arrive has nothing else to wait for).
    pub(crate) async fn messages_within(&mut self, window: Duration) -> Vec<(String, Bytes)> {
        let deadline = tokio::time::Instant::now() + window;
        let mut messages = Vec::new();
        while let Ok(Some(seen)) = tokio::time::timeout_at(deadline, self.seen.recv()).await {
            match seen {
                Seen::Message(topic, payload) => messages.push((topic, payload)),
                Seen::SubAck(_) => {}
                Seen::Closed => self.closed = true,
            }
        }
        messages
    }

    /// Waits up to `within` for the connection to end; true if it did.
    pub(crate) async fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(Seen::Closed) | None) => self.closed = true,
                Ok(Some(_)) => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// A client that may subscribe to anything on `broker`, to look at what
/// the broker holds (retained messages) from outside the rules devices live
/// by. Embedded: straight to rumqttd behind the guard, in this process.
pub(crate) async fn observer(broker: Broker, address: &str) -> MqttPeer {
    let name = format!("observer-{}", uuid::Uuid::new_v4().simple());
    match broker {
        Broker::Embedded => {
            let device_port = address.parse().expect("host:port");
            let (upstream, secret) = lastseen_cloud::mqtt::unguarded_upstream(device_port)
                .expect("the embedded broker runs in this process");
            connect_peer(&upstream.to_string(), &name, secret.expose()).await
        }
        Broker::Mosquitto => connect_peer(MOSQUITTO, &name, "").await,
        // The plugin's admin may read every topic.
        Broker::Dynsec => {
            let password = crate::mosquitto_dynsec::admin_password_of(address)
                .expect("the test's dynsec broker");
            connect_peer_as(address, &name, crate::mosquitto_dynsec::ADMIN, &password).await
        }
    }
}
