//! The production broker setup: the cloud in `mqtt = "external"` +
//! `mqtt_dynsec` mode against a Mosquitto 2 of the test's own with the
//! dynamic-security plugin. The cloud provisions each device's login and
//! role; these tests play the devices, an attacker with a device of its own,
//! anonymous clients, and an operator rotating, revoking and deleting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use lastseen_cloud::mqtt::MqttMode;
use lastseen_shared::{DeviceId, DeviceStatus, GateSettings, TopicKind, Topics};
use reqwest::StatusCode;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS,
    SubscribeReasonCode,
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::helpers::metric;
use crate::helpers::{TestApp, fixture_jpeg, spawn_app_with};
use crate::mosquitto_dynsec::{ADMIN, DynsecBroker};
use crate::mqtt_client::{PATIENCE, connect_device, envelope};

/// A kicked session must end within this.
const KICK_WITHIN: Duration = Duration::from_secs(5);

struct Setup {
    broker: DynsecBroker,
    app: TestApp,
    topics: Topics,
    group: String,
    user: String,
}

async fn setup_with(customize: impl FnOnce(&mut lastseen_cloud::config::Config)) -> Setup {
    let broker = DynsecBroker::start();
    let mut prefix = String::new();
    let mut group = String::new();
    let app = spawn_app_with(|config| {
        broker.configure(config);
        customize(config);
        prefix = config.mqtt.topic_prefix.clone();
        group = config.mqtt.shared_group.clone();
    })
    .await;
    let user = app.user("alice").await;
    Setup {
        broker,
        app,
        topics: Topics::new(&prefix).unwrap(),
        group,
        user,
    }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// A bare MQTT 3.1.1 client that reports every packet and the end of its
/// connection (it does not reconnect), for attacks and kicks.
struct Raw {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, ConnectionError>>,
    /// Messages met while waiting for something else.
    received: Vec<(String, Bytes)>,
    task: JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Raw {
    async fn connect(
        broker: &str,
        client_id: &str,
        credentials: Option<(&str, &str)>,
    ) -> Result<Raw, ConnectionError> {
        let (host, port) = broker.rsplit_once(':').expect("host:port");
        let mut options = MqttOptions::new(client_id, host, port.parse().expect("port"));
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(16 << 20, 16 << 20);
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await? {
                break;
            }
        }
        let (sender, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        let _ = sender.send(Ok(packet));
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(error) => {
                        let _ = sender.send(Err(error));
                        return;
                    }
                }
            }
        });
        Ok(Raw {
            client,
            events,
            received: Vec::new(),
            task,
        })
    }

    /// Logs in as a device, waiting while the cloud provisions its login.
    async fn device(broker: &str, id: &str, token: &str) -> Raw {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match Raw::connect(broker, id, Some((id, token))).await {
                Ok(raw) => return raw,
                Err(error) if Instant::now() < deadline => {
                    tracing::debug!(%error, "device login not ready yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("device {id} cannot log in: {error}"),
            }
        }
    }

    /// The next packet matching `want`; messages on the way are kept.
    async fn next<T>(&mut self, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("an answer from the broker in time")
                .expect("the connection task runs");
            let packet = event.unwrap_or_else(|error| panic!("connection ended: {error}"));
            if let Some(found) = want(&packet) {
                return found;
            }
            if let Packet::Publish(publish) = packet {
                self.received.push((publish.topic, publish.payload));
            }
        }
    }

    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue subscribe");
        self.next(|packet| match packet {
            Packet::SubAck(ack) => Some(ack.return_codes[0]),
            _ => None,
        })
        .await
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK (Mosquitto
    /// answers a denied publish from an MQTT 3.1.1 client with a PUBACK too,
    /// and drops the message).
    async fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .expect("queue publish");
        self.next(|packet| matches!(packet, Packet::PubAck(_)).then_some(()))
            .await;
    }

    /// Waits for the broker to end the connection.
    async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_))) => return true,
                Ok(Some(Ok(Packet::Publish(publish)))) => {
                    self.received.push((publish.topic, publish.payload));
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

fn refused(outcome: Result<Raw, ConnectionError>) -> bool {
    matches!(
        outcome,
        Err(ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
        ))
    )
}

impl Setup {
    async fn device(&self, user: &str, name: &str) -> (DeviceId, String) {
        let (id, token) = self.app.device(user, name).await;
        (DeviceId::parse(&id).unwrap(), token)
    }

    async fn post(&self, path: &str) -> StatusCode {
        self.app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.user)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// What the plugin says about a client (`getClient`).
    fn broker_client(&self, username: &str) -> String {
        let output = self.broker.ctrl(&["getClient", username]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }

    /// Waits until the plugin no longer knows `username`.
    async fn wait_until_gone(&self, username: &str) {
        let deadline = Instant::now() + PATIENCE;
        while self.broker_client(username).contains("Username:") {
            assert!(
                Instant::now() < deadline,
                "{username} is still a broker client:\n{}",
                self.broker.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_a_registered_device_sends_frames_that_are_stored_and_acked() {
    let s = setup().await;
    let (id, token) = s.app.device(&s.user, "Kitchen").await;
    let mut device = connect_device(&s.broker.address, &s.topics, &id, &token).await;
    let dog = fixture_jpeg("dog.jpg");
    device
        .publish_frame(device.id, envelope(device.id, &token, 1, &dog))
        .await;
    let ack = device.next_ack().await;
    assert_eq!(ack.acked, [1]);
    let (status, dogs) = s
        .app
        .get_json(&s.user, "/api/v1/detections?label=dog")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(dogs["items"].as_array().unwrap().len(), 1, "{dogs}");
    // What the cloud provisioned: its own role, and the device's login.
    assert!(s.broker_client(ADMIN).contains("lastseen-cloud"));
    let login = s.broker_client(&id);
    assert!(login.contains(&format!("lastseen-device-{id}")), "{login}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_a_device_of_another_account_can_neither_read_nor_write_the_victims_topics() {
    let s = setup().await;
    let (victim_id, victim_token) = s.app.device(&s.user, "Victim").await;
    let mut victim = connect_device(&s.broker.address, &s.topics, &victim_id, &victim_token).await;
    let mallory_user = s.app.user("mallory").await;
    let (mallory_id, mallory_token) = s.device(&mallory_user, "Mallory").await;
    let mut mallory = Raw::device(&s.broker.address, &mallory_id.to_string(), &mallory_token).await;
    let t = &s.topics;
    let v = victim.id;

    // Its own topics are fine; everyone else's, wildcards and the cloud's
    // shared subscriptions are refused with a SUBACK failure (0x80).
    assert!(matches!(
        mallory.subscribe(&t.ack(mallory_id)).await,
        SubscribeReasonCode::Success(_)
    ));
    let p = t.prefix();
    for filter in [
        t.ack(v),
        t.config(v),
        t.frames(v),
        t.status(v),
        "#".to_owned(),
        format!("{p}/#"),
        t.filter(TopicKind::Frames),
        t.filter(TopicKind::Ack),
        t.shared_filter(&s.group, TopicKind::Frames),
        t.shared_filter(&s.group, TopicKind::Status),
        format!("$share/mallory/{}", t.filter(TopicKind::Frames)),
        format!("$share/mallory/{p}/{v}/ack"),
        "$SYS/#".to_owned(),
        "$CONTROL/dynamic-security/#".to_owned(),
    ] {
        assert_eq!(
            mallory.subscribe(&filter).await,
            SubscribeReasonCode::Failure,
            "{filter}"
        );
    }

    // Forged messages on the victim's topics, and a try at making itself
    // a broker admin.
    let jpeg = fixture_jpeg("dog.jpg");
    let forged_ack = json!({"acked": [1, 2, 3], "rejected": []}).to_string();
    let settings = serde_json::to_vec(&GateSettings::default()).unwrap();
    let status = serde_json::to_vec(&DeviceStatus::offline()).unwrap();
    mallory
        .publish(&t.frames(v), envelope(v, &mallory_token, 1, &jpeg), false)
        .await;
    mallory
        .publish(&t.ack(v), forged_ack.clone().into_bytes(), false)
        .await;
    mallory.publish(&t.config(v), settings.clone(), true).await;
    mallory.publish(&t.status(v), status, true).await;
    let me = mallory_id.to_string();
    mallory
        .publish(
            "$CONTROL/dynamic-security/v1",
            json!({"commands": [
                {"command": "addClientRole", "username": me, "rolename": "lastseen-cloud"},
                {"command": "addClientRole", "username": me, "rolename": "admin"}]})
            .to_string()
            .into_bytes(),
            false,
        )
        .await;

    // The victim's own frame is the first thing the cloud hears of it, and
    // its ack the first thing the victim hears: nothing forged got through
    // (anything forged was queued before Mallory's PUBACKs, so before this).
    victim
        .publish_frame(v, envelope(v, &victim_token, 7, &jpeg))
        .await;
    let (topic, payload) = victim.next_message(PATIENCE).await.expect("the ack");
    assert_eq!(topic, t.ack(v));
    assert_eq!(victim.open_ack(&payload).expect("a signed Ack").acked, [7]);
    assert_eq!(
        metric(&s.app, "lastseen_frames_received_total{transport=\"mqtt\"}").await,
        1
    );
    assert_eq!(metric(&s.app, "lastseen_mqtt_statuses_total").await, 0);
    assert_eq!(s.app.blob_count(), 1);
    // Nothing forged was retained: a fresh subscriber of the victim
    // (the same device, again) gets no config and no status.
    drop(victim);
    let mut again = Raw::device(&s.broker.address, &victim_id, &victim_token).await;
    let mallory_roles = s.broker_client(&me);
    assert!(!mallory_roles.contains("lastseen-cloud"), "{mallory_roles}");
    assert!(!mallory_roles.contains("admin"), "{mallory_roles}");
    assert!(matches!(
        again.subscribe(&t.config(v)).await,
        SubscribeReasonCode::Success(_)
    ));
    assert!(matches!(
        again.subscribe(&t.ack(v)).await,
        SubscribeReasonCode::Success(_)
    ));
    // A marker after the subscriptions: retained messages come before it.
    again
        .publish(&t.frames(v), envelope(v, &victim_token, 8, &jpeg), false)
        .await;
    let first = again
        .next(|packet| match packet {
            Packet::Publish(publish) => Some(publish.topic.clone()),
            _ => None,
        })
        .await;
    assert_eq!(first, t.ack(v), "received: {:?}", again.received);
    assert!(mallory.received.is_empty(), "{:?}", mallory.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_anonymous_clients_and_wrong_logins_are_refused() {
    let s = setup().await;
    let (id, token) = s.device(&s.user, "Kitchen").await;
    let address = &s.broker.address;
    let id = id.to_string();
    // Its login exists once this works.
    drop(Raw::device(address, &id, &token).await);

    assert!(refused(Raw::connect(address, "anyone", None).await));
    assert!(refused(
        Raw::connect(address, &id, Some((&id, "wrong"))).await
    ));
    // The right token with another client id: the login is tied to it.
    assert!(refused(
        Raw::connect(address, "another-id", Some((&id, &token))).await
    ));
    // The cloud's admin password is not the device's.
    assert!(refused(
        Raw::connect(address, &id, Some((&id, &s.broker.admin_password))).await
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_rotation_kicks_the_old_session_and_only_the_new_token_logs_in() {
    let s = setup().await;
    let (id, old) = s.device(&s.user, "Kitchen").await;
    let name = id.to_string();
    let mut session = Raw::device(&s.broker.address, &name, &old).await;
    let rotated = s.app.act_on_device(&s.user, &name, "rotate").await;
    let new = rotated["token"].as_str().unwrap();
    assert!(
        session.ends_within(KICK_WITHIN).await,
        "the old session survived:\n{}",
        s.broker.log()
    );
    assert!(refused(
        Raw::connect(&s.broker.address, &name, Some((&name, &old))).await
    ));
    let mut fresh = Raw::device(&s.broker.address, &name, new).await;
    assert!(matches!(
        fresh.subscribe(&s.topics.ack(id)).await,
        SubscribeReasonCode::Success(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_revoking_or_deleting_a_device_kicks_it_and_refuses_its_token() {
    let s = setup().await;
    for action in ["revoke", "delete"] {
        let (id, token) = s.device(&s.user, action).await;
        let name = id.to_string();
        let mut session = Raw::device(&s.broker.address, &name, &token).await;
        let status = if action == "revoke" {
            s.post(&format!("/api/v1/devices/{id}/revoke")).await
        } else {
            s.app
                .client
                .delete(s.app.url(&format!("/api/v1/devices/{id}")))
                .bearer_auth(&s.user)
                .send()
                .await
                .unwrap()
                .status()
        };
        assert!(status.is_success(), "{action}: {status}");
        assert!(
            session.ends_within(KICK_WITHIN).await,
            "{action}: the session survived"
        );
        assert!(
            refused(Raw::connect(&s.broker.address, &name, Some((&name, &token))).await),
            "{action}"
        );
        s.wait_until_gone(&name).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_reconcile_removes_logins_the_cloud_did_not_hear_about() {
    let s = setup_with(|config| config.mqtt.dynsec_reconcile_secs = 1).await;
    let (id, token) = s.device(&s.user, "Kitchen").await;
    let name = id.to_string();
    let mut session = Raw::device(&s.broker.address, &name, &token).await;

    // Another cloud on the same database, without MQTT, deletes the device:
    // this cloud's announcements never see it, its reconcile pass does.
    let database = s.app.data_dir().to_path_buf();
    let other = spawn_app_with(|config| {
        config.store.database_url = Some(format!(
            "sqlite://{}",
            database.join("lastseen.db").display()
        ));
        config.blob.blob_dir = Some(database.join("blobs"));
        config.mqtt.mode = MqttMode::Off;
    })
    .await;
    let deleted = other
        .client
        .delete(other.url(&format!("/api/v1/devices/{id}")))
        .bearer_auth(&s.user)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(
        session.ends_within(PATIENCE).await,
        "the deleted device's session survived"
    );
    s.wait_until_gone(&name).await;

    // A login for a device the store never had, marked as the cloud's, goes
    // too; a client the cloud did not make stays.
    let stray = uuid::Uuid::new_v4().to_string();
    let mut admin = Raw::connect(
        &s.broker.address,
        "operator",
        Some((ADMIN, &s.broker.admin_password)),
    )
    .await
    .expect("admin login");
    admin
        .publish(
            "$CONTROL/dynamic-security/v1",
            json!({"commands": [
                {"command": "createClient", "username": stray, "password": "x",
                 "textname": "lastseen device"},
                {"command": "createClient", "username": "operator-tool", "password": "x"}]})
            .to_string()
            .into_bytes(),
            false,
        )
        .await;
    s.wait_until_gone(&stray).await;
    assert!(s.broker_client("operator-tool").contains("Username:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_the_cloud_role_alone_is_enough_for_another_cloud_node() {
    let s = setup().await;
    // A second node's user with nothing but the role the cloud made.
    let created = s
        .broker
        .ctrl(&["createClient", "node2", "-p", "node2-password"]);
    assert!(created.status.success(), "{created:?}");
    let added = s.broker.ctrl(&["addClientRole", "node2", "lastseen-cloud"]);
    assert!(added.status.success(), "{added:?}");
    let mut node = Raw::connect(
        &s.broker.address,
        "node2",
        Some(("node2", "node2-password")),
    )
    .await
    .expect("node2 login");
    for kind in [TopicKind::Frames, TopicKind::Status] {
        let filter = s.topics.shared_filter(&s.group, kind);
        assert!(
            matches!(
                node.subscribe(&filter).await,
                SubscribeReasonCode::Success(_)
            ),
            "{filter}"
        );
    }
    assert_eq!(node.subscribe("#").await, SubscribeReasonCode::Failure);
    // It may answer any device, as the cloud does.
    let device = DeviceId::new();
    node.publish(&s.topics.ack(device), b"{}".to_vec(), false)
        .await;
}
