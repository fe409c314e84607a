//! MQTT ingest end to end, each behaviour against the embedded broker and
//! against the machine's Mosquitto (under a unique topic prefix); the main
//! ones also against a Mosquitto with dynamic security (mqtt_dynsec.rs has
//! that mode's own tests).

use std::time::{Duration, Instant};

use lastseen_shared::{DeviceState, DeviceStatus, GateSettings, Topics};
use reqwest::StatusCode;
use serde_json::{Value, json};

use lastseen_cloud::testkit::{CloudMqtt, LocalCloud};

use crate::helpers::{TestApp, fixture_jpeg, metric, spawn_app_with, wait_for_metric};
use crate::mqtt_client::{
    Broker, MqttDevice, PATIENCE, connect_device, envelope, envelope_v1, on_each_broker, use_broker,
};

pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) broker: String,
    pub(crate) topics: Topics,
    pub(crate) user: String,
}

pub(crate) async fn setup(broker: Broker) -> Setup {
    let mut address = String::new();
    let mut prefix = String::new();
    let app = spawn_app_with(|config| {
        address = use_broker(config, broker);
        prefix = config.mqtt.topic_prefix.clone();
    })
    .await;
    let user = app.user("alice").await;
    Setup {
        app,
        broker: address,
        topics: Topics::new(&prefix).unwrap(),
        user,
    }
}

impl Setup {
    pub(crate) async fn device(&self, name: &str) -> (String, String, MqttDevice) {
        let (id, token) = self.app.device(&self.user, name).await;
        let device = connect_device(&self.broker, &self.topics, &id, &token).await;
        (id, token, device)
    }
}

async fn frames_are_stored_once_and_acked(broker: Broker) {
    let s = setup(broker).await;
    let (_, token, mut device) = s.device("Kitchen").await;
    let dog = fixture_jpeg("dog.jpg");
    let frame = envelope(device.id, &token, 1, &dog);

    device.publish_frame(device.id, frame.clone()).await;
    let ack = device.next_ack().await;
    assert_eq!(ack.acked, [1]);
    assert!(ack.rejected.is_empty());
    // Detections are stored by the time the ack leaves.
    let (status, seen) = s.app.get_json(&s.user, "/api/v1/last-seen?label=dog").await;
    assert_eq!(status, StatusCode::OK, "{seen}");

    // A resend (the ack was lost): the same frame, acked again, stored once.
    device.publish_frame(device.id, frame).await;
    assert_eq!(device.next_ack().await.acked, [1]);
    let (_, dogs) = s
        .app
        .get_json(&s.user, "/api/v1/detections?label=dog")
        .await;
    assert_eq!(dogs["items"].as_array().unwrap().len(), 1, "{dogs}");
    assert_eq!(s.app.blob_count(), 1);
    assert_eq!(
        metric(&s.app, "lastseen_frames_stored_total{transport=\"mqtt\"}").await,
        1
    );
    assert_eq!(
        metric(&s.app, "lastseen_frames_resent_total{transport=\"mqtt\"}").await,
        1
    );
    assert_eq!(metric(&s.app, "lastseen_mqtt_acks_sent_total").await, 2);
    device.clear_retained().await;
}

on_each_broker!(frames_are_stored_once_and_acked);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_frames_are_stored_once_and_acked() {
    frames_are_stored_once_and_acked(Broker::Dynsec).await;
}

async fn a_broken_image_is_rejected_for_good(broker: Broker) {
    let s = setup(broker).await;
    let (_, token, mut device) = s.device("Kitchen").await;
    device
        .publish_frame(device.id, envelope(device.id, &token, 3, b"not a jpeg"))
        .await;
    let ack = device.next_ack().await;
    assert!(ack.acked.is_empty());
    assert_eq!(ack.rejected.len(), 1);
    assert_eq!(ack.rejected[0].seq, 3);
    assert_eq!(ack.rejected[0].code, "unsupported_media_type");
    assert_eq!(
        metric(
            &s.app,
            "lastseen_frames_rejected_total{transport=\"mqtt\",reason=\"unsupported_media_type\"}"
        )
        .await,
        1
    );
    assert_eq!(s.app.blob_count(), 0);
    device.clear_retained().await;
}

on_each_broker!(a_broken_image_is_rejected_for_good);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_a_broken_image_is_rejected_for_good() {
    a_broken_image_is_rejected_for_good(Broker::Dynsec).await;
}

async fn forged_frames_are_dropped_counted_and_never_acked(broker: Broker) {
    let s = setup(broker).await;
    let (_, _, mut mallory) = s.device("Mallory").await;
    let (_, victim_token, mut victim) = s.device("Victim").await;
    let jpeg = fixture_jpeg("dog.jpg");

    // Everything on Mallory's own topic: publishing on the victim's is the
    // broker's to refuse (mqtt_attacks.rs).
    // The victim's token inside a (legacy) envelope naming Mallory.
    mallory
        .publish_frame(mallory.id, envelope_v1(mallory.id, &victim_token, 1, &jpeg))
        .await;
    // A token that is no token.
    mallory
        .publish_frame(mallory.id, envelope_v1(mallory.id, "not.a.token", 2, &jpeg))
        .await;
    // The victim's real envelope replayed on Mallory's topic.
    mallory
        .publish_frame(mallory.id, envelope(victim.id, &victim_token, 3, &jpeg))
        .await;
    // Not an envelope at all.
    mallory.publish_frame(mallory.id, b"garbage".to_vec()).await;

    let dropped = "lastseen_frames_dropped_total{transport=\"mqtt\",reason=";
    wait_for_metric(&s.app, &format!("{dropped}\"forged_token\"}}"), 2).await;
    wait_for_metric(&s.app, &format!("{dropped}\"topic_mismatch\"}}"), 1).await;
    wait_for_metric(&s.app, &format!("{dropped}\"bad_envelope\"}}"), 1).await;
    // Nothing was stored and nobody got an answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mallory.drain().is_empty());
    assert!(victim.drain().is_empty());
    assert_eq!(s.app.blob_count(), 0);
    assert_eq!(metric(&s.app, "lastseen_mqtt_acks_sent_total").await, 0);

    // The victim's own frame still goes through.
    victim
        .publish_frame(victim.id, envelope(victim.id, &victim_token, 4, &jpeg))
        .await;
    assert_eq!(victim.next_ack().await.acked, [4]);
    mallory.clear_retained().await;
    victim.clear_retained().await;
}

on_each_broker!(forged_frames_are_dropped_counted_and_never_acked);

/// Another frame under a stored seq (the device lost its spool) is rejected
/// with `seq_conflict` and the device's highest seq, and stores nothing; a
/// device coming online is told its highest seq.
async fn a_reused_seq_is_rejected_with_the_highest_seq(broker: Broker) {
    let s = setup(broker).await;
    let (id, token, mut device) = s.device("Kitchen").await;
    let dog = fixture_jpeg("dog.jpg");
    let first = envelope(device.id, &token, 4, &dog);
    for (seq, message) in [
        (4, first.clone()),
        (9, envelope(device.id, &token, 9, &dog)),
    ] {
        device.publish_frame(device.id, message).await;
        assert_eq!(device.next_ack().await.acked, [seq]);
    }
    // The same frame again is a resend.
    device.publish_frame(device.id, first).await;
    assert_eq!(device.next_ack().await.acked, [4]);

    // Another frame under seq 4: another image, and another time.
    let other = envelope(device.id, &token, 4, &fixture_jpeg("coffee.png"));
    device.publish_frame(device.id, other).await;
    let ack = device.next_ack().await;
    assert!(ack.acked.is_empty(), "{ack:?}");
    assert_eq!(ack.rejected.len(), 1, "{ack:?}");
    assert_eq!(ack.rejected[0].seq, 4);
    assert_eq!(ack.rejected[0].code, "seq_conflict");
    assert_eq!(ack.highest_seq, Some(9));
    assert_eq!(
        metric(
            &s.app,
            "lastseen_frames_rejected_total{transport=\"mqtt\",reason=\"seq_conflict\"}"
        )
        .await,
        1
    );
    let (_, frames) = s
        .app
        .get_json(&s.user, &format!("/api/v1/devices/{id}/frames"))
        .await;
    assert_eq!(frames["items"].as_array().unwrap().len(), 2, "{frames}");
    let (_, cups) = s
        .app
        .get_json(&s.user, "/api/v1/detections?label=cup")
        .await;
    assert!(cups["items"].as_array().unwrap().is_empty(), "{cups}");
    assert_eq!(s.app.blob_count(), 1);

    // Online: an ack with nothing to settle, only where to continue.
    device.publish_status(&online_status()).await;
    let ack = device.next_ack().await;
    assert_eq!(
        (ack.acked.len(), ack.rejected.len(), ack.highest_seq),
        (0, 0, Some(9))
    );
    device.clear_retained().await;
}

on_each_broker!(a_reused_seq_is_rejected_with_the_highest_seq);

async fn settings_reach_the_device_as_a_retained_config(broker: Broker) {
    let s = setup(broker).await;
    let (id, token) = s.app.device(&s.user, "Porch").await;
    let path = format!("/api/v1/devices/{id}/settings");
    let mut settings = GateSettings::default();
    settings.change.min_changed_fraction = 0.02;
    settings.person.enabled = true;
    let response = s
        .app
        .client
        .put(s.app.url(&path))
        .bearer_auth(&s.user)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // The device connects later and finds the settings waiting (retained).
    let mut device = connect_device(&s.broker, &s.topics, &id, &token).await;
    let config_topic = s.topics.config(device.id);
    let (topic, payload) = device.next_message(PATIENCE).await.expect("config");
    assert_eq!(topic, config_topic);
    assert_eq!(device.settings_in(&payload, None), settings);

    // A change while it is connected arrives at once.
    settings.heartbeat_secs = 60;
    let response = s
        .app
        .client
        .put(s.app.url(&path))
        .bearer_auth(&s.user)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (topic, payload) = device.next_message(PATIENCE).await.expect("config");
    assert_eq!(topic, config_topic);
    assert_eq!(device.settings_in(&payload, None), settings);
    device.clear_retained().await;
}

on_each_broker!(settings_reach_the_device_as_a_retained_config);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_settings_reach_the_device_as_a_retained_config() {
    settings_reach_the_device_as_a_retained_config(Broker::Dynsec).await;
}

async fn device_status(app: &TestApp, user: &str, id: &str) -> Value {
    let (status, body) = app.get_json(user, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    body
}

async fn wait_for_state(app: &TestApp, user: &str, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let body = device_status(app, user, id).await;
        if body["status"]["state"] == state {
            return body;
        }
        assert!(Instant::now() < deadline, "never {state}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn the_last_will_marks_a_device_offline(broker: Broker) {
    let s = setup(broker).await;
    let (id, token, device) = s.device("Garage").await;
    let before = device_status(&s.app, &s.user, &id).await;
    assert_eq!(before["status"], Value::Null);
    assert_eq!(before["last_status_at"], Value::Null);

    let mut online = DeviceStatus::offline();
    online.state = DeviceState::Online;
    online.spool_depth = Some(2);
    online.counters.insert("captured".to_owned(), 10);
    device.publish_status(&online).await;
    let body = wait_for_state(&s.app, &s.user, &id, "online").await;
    assert_eq!(body["status"]["counters"], json!({"captured": 10}));
    assert_eq!(body["status"]["spool_depth"], 2);
    assert!(body["last_status_at"].is_string());
    // Coming online, the device was sent its settings (the defaults).
    wait_for_metric(&s.app, "lastseen_mqtt_configs_published_total", 1).await;

    // The connection drops without a goodbye: the broker publishes the will.
    device.vanish();
    let body = wait_for_state(&s.app, &s.user, &id, "offline").await;
    assert_eq!(body["status"], json!({"state": "offline"}));
    let (list_status, list) = s.app.get_json(&s.user, "/api/v1/devices").await;
    assert_eq!(list_status, StatusCode::OK);
    assert_eq!(list["items"][0]["status"]["state"], "offline");
    connect_device(&s.broker, &s.topics, &id, &token)
        .await
        .clear_retained()
        .await;
}

on_each_broker!(the_last_will_marks_a_device_offline);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynsec_the_last_will_marks_a_device_offline() {
    the_last_will_marks_a_device_offline(Broker::Dynsec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_refuses_logins_without_a_valid_device_token() {
    let s = setup(Broker::Embedded).await;
    let (id, token) = s.app.device(&s.user, "Shed").await;
    let (other, _) = s.app.device(&s.user, "Other").await;
    // rumqttd drops the connection rather than answering with a refusal.
    let refused = |outcome: Result<(), rumqttc::ConnectionError>| outcome.is_err();
    assert!(refused(
        crate::mqtt_client::try_login(&s.broker, &id, "wrong").await
    ));
    // A real token, but another device's client id.
    assert!(refused(
        crate::mqtt_client::try_login(&s.broker, &other, &token).await
    ));
    assert!(refused(
        crate::mqtt_client::try_login(&s.broker, "lastseen-cloud-x", "guess").await
    ));
    assert!(
        crate::mqtt_client::try_login(&s.broker, &id, &token)
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_mqtt_port_is_a_startup_error_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let started = LocalCloud::start(CloudMqtt::Embedded, |config| {
        config.mqtt.listen = taken_addr;
    })
    .await;
    let Err(error) = started else {
        panic!("the port is taken");
    };
    assert!(error.to_string().contains("mqtt_listen"), "{error}");
}

/// The next ack within `within`, if one comes.
async fn ack_within(device: &mut MqttDevice, within: Duration) -> Option<lastseen_shared::Ack> {
    let ack_topic = device.topics.ack(device.id);
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let (topic, payload) = device.next_message(left).await?;
        if topic == ack_topic {
            return Some(device.open_ack(&payload).expect("a signed Ack"));
        }
    }
    None
}

fn online_status() -> DeviceStatus {
    let mut online = DeviceStatus::offline();
    online.state = DeviceState::Online;
    online
}

/// Regression: with one shared-subscription name for both filters, rumqttd
/// read the frames log at the offset the status log had advanced, so a
/// device's first frame after its status was skipped until the agent's
/// 30 s resend.
async fn a_first_frame_after_a_status_is_acked_at_once(broker: Broker) {
    let s = setup(broker).await;
    let (id, token, mut device) = s.device("Porch").await;
    device.publish_status(&online_status()).await;
    wait_for_state(&s.app, &s.user, &id, "online").await;
    device
        .publish_frame(
            device.id,
            envelope(device.id, &token, 0, &fixture_jpeg("dog.jpg")),
        )
        .await;
    let ack = ack_within(&mut device, Duration::from_secs(2))
        .await
        .expect("the first frame is acked within 2 s, not after a resend");
    assert_eq!(ack.acked, [0]);
    device.clear_retained().await;
}

on_each_broker!(a_first_frame_after_a_status_is_acked_at_once);

/// Regression, the other half of the same cursor bug: once frames flowed,
/// statuses (and so last wills) were read past the end of their log and lost.
async fn a_status_after_frames_is_recorded(broker: Broker) {
    let s = setup(broker).await;
    let (id, token, mut device) = s.device("Attic").await;
    let dog = fixture_jpeg("dog.jpg");
    for seq in 0..2 {
        device
            .publish_frame(device.id, envelope(device.id, &token, seq, &dog))
            .await;
        assert_eq!(device.next_ack().await.acked, [seq]);
    }
    device.publish_status(&online_status()).await;
    wait_for_state(&s.app, &s.user, &id, "online").await;
    device.clear_retained().await;
}

on_each_broker!(a_status_after_frames_is_recorded);
