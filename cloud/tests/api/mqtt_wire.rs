//! What travels on the MQTT wire since envelope v2: frames authenticated
//! with the device's key instead of its token, acks and configs signed with
//! it, and no reusable credential in any message. Each behaviour against the
//! embedded broker and the machine's Mosquitto, as in `mqtt.rs`.

use std::time::Duration;

use bytes::Bytes;
use lastseen_shared::envelope::{self, Credential};
use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{DeviceKey, DeviceState, DeviceStatus, GateSettings};
use reqwest::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use crate::helpers::fixture_jpeg;
use crate::helpers::{metric, wait_for_metric};
use crate::mqtt::{Setup, setup};
use crate::mqtt_client::{
    Broker, MOSQUITTO, PATIENCE, connect_device, envelope, envelope_v1, on_each_broker,
};

const DROPPED: &str = "lastseen_frames_dropped_total{transport=\"mqtt\",reason=";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn a_signed_frame_is_stored_and_its_ack_verifies(broker: Broker) {
    let s = setup(broker).await;
    let (_, token, mut device) = s.device("Kitchen").await;
    let key = device.key.clone().expect("new device tokens carry a key");
    let dog = fixture_jpeg("dog.jpg");

    let message = envelope(device.id, &token, 1, &dog);
    assert!(!contains(&message, token.as_bytes()));
    assert!(matches!(
        envelope::decode(&message).unwrap().credential,
        Credential::Mac(_)
    ));
    device.publish_frame(device.id, message).await;
    let raw = device.next_raw_ack().await;
    assert!(raw.starts_with(b"LSSM"), "the ack to a v2 frame is signed");
    assert!(!contains(&raw, token.as_bytes()));
    let body = signed::open(Some(&key), SignedKind::Ack, device.id, &raw).expect("verifies");
    let ack: lastseen_shared::Ack = serde_json::from_slice(body).unwrap();
    assert_eq!(ack.acked, [1]);
    // Only this device's key opens it, and only as an ack.
    let (_, other_token) = s.app.device(&s.user, "Other").await;
    let other = DeviceKey::from_token(&other_token).unwrap();
    assert!(signed::open(Some(&other), SignedKind::Ack, device.id, &raw).is_err());
    assert!(signed::open(Some(&key), SignedKind::Config, device.id, &raw).is_err());
    let (status, _) = s.app.get_json(&s.user, "/api/v1/last-seen?label=dog").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        metric(&s.app, "lastseen_frames_stored_total{transport=\"mqtt\"}").await,
        1
    );
    device.clear_retained().await;
}

on_each_broker!(a_signed_frame_is_stored_and_its_ack_verifies);

async fn frames_without_the_devices_tag_are_dropped_and_counted(broker: Broker) {
    let s = setup(broker).await;
    let (_, mallory_token, mut mallory) = s.device("Mallory").await;
    let (victim_id, victim_token, mut victim) = s.device("Victim").await;
    let jpeg = fixture_jpeg("dog.jpg");
    // The forgeries go out on the victim's own topic through its own
    // session: what the cloud does with them must not depend on a broker
    // keeping others off that topic.

    // Signed with Mallory's key, naming the victim.
    victim
        .publish_frame(victim.id, envelope(victim.id, &mallory_token, 1, &jpeg))
        .await;
    // The victim's genuine frame with one byte of the image changed.
    let mut altered = envelope(victim.id, &victim_token, 2, &jpeg);
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    victim.publish_frame(victim.id, altered).await;
    // A tag of zeros.
    let genuine = envelope(victim.id, &victim_token, 3, &jpeg);
    let zeroed = envelope::Envelope {
        credential: Credential::Mac([0; 32]),
        ..envelope::decode(&genuine).unwrap()
    };
    victim
        .publish_frame(victim.id, envelope::encode(&zeroed).unwrap())
        .await;
    wait_for_metric(&s.app, &format!("{DROPPED}\"bad_mac\"}}"), 3).await;

    // Nothing was stored and nobody got an answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(mallory.drain().is_empty());
    assert!(victim.drain().is_empty());
    assert_eq!(s.app.blob_count(), 0);
    assert_eq!(metric(&s.app, "lastseen_mqtt_acks_sent_total").await, 0);

    // The victim's genuine frame goes through.
    victim.publish_frame(victim.id, genuine).await;
    assert_eq!(victim.next_ack().await.acked, [3]);

    if matches!(broker, Broker::Mosquitto) {
        // A revoked device's correctly signed frame: its key went with it.
        // (The embedded broker refuses a revoked device before this point;
        // the machine's Mosquitto lets anyone publish anywhere.)
        s.app.act_on_device(&s.user, &victim_id, "revoke").await;
        mallory
            .publish_frame(victim.id, envelope(victim.id, &victim_token, 4, &jpeg))
            .await;
        wait_for_metric(&s.app, &format!("{DROPPED}\"forged_token\"}}"), 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(victim.drain().is_empty());
        assert_eq!(s.app.blob_count(), 1);
    }
    mallory.clear_retained().await;
    victim.clear_retained().await;
}

on_each_broker!(frames_without_the_devices_tag_are_dropped_and_counted);

async fn a_legacy_v1_frame_is_stored_and_acked_in_plain_json(broker: Broker) {
    let s = setup(broker).await;
    let (_, token, mut device) = s.device("Legacy").await;
    let dog = fixture_jpeg("dog.jpg");
    device
        .publish_frame(device.id, envelope_v1(device.id, &token, 7, &dog))
        .await;
    // Agents before 0.2 read the ack as JSON: it stays unsigned for them.
    let raw = device.next_raw_ack().await;
    let ack: lastseen_shared::Ack = serde_json::from_slice(&raw).expect("a plain JSON ack");
    assert_eq!(ack.acked, [7]);
    assert_eq!(s.app.blob_count(), 1);
    device.clear_retained().await;
}

on_each_broker!(a_legacy_v1_frame_is_stored_and_acked_in_plain_json);

async fn put_settings(s: &Setup, id: &str, settings: &GateSettings) {
    let response = s
        .app
        .client
        .put(s.app.url(&format!("/api/v1/devices/{id}/settings")))
        .bearer_auth(&s.user)
        .json(settings)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn rotate(s: &Setup, id: &str) -> String {
    let body = s.app.act_on_device(&s.user, id, "rotate").await;
    body["token"].as_str().expect("a new token").to_owned()
}

async fn settings_are_signed_and_signed_again_after_a_rotation(broker: Broker) {
    let s = setup(broker).await;
    let (id, token, mut device) = s.device("Porch").await;
    let config_topic = s.topics.config(device.id);
    let settings = GateSettings {
        heartbeat_secs: 77,
        ..GateSettings::default()
    };
    put_settings(&s, &id, &settings).await;
    let (topic, payload) = device.next_message(PATIENCE).await.expect("config");
    assert_eq!(topic, config_topic);
    assert!(payload.starts_with(b"LSSM"));
    assert!(!contains(&payload, token.as_bytes()));
    assert_eq!(device.settings_in(&payload, None), settings);
    let old_key = device.key.clone().unwrap();
    // Its successor takes the same client id: two live sessions would keep
    // taking it from each other.
    device.vanish();

    // Rotated: the retained settings are published again, signed with the
    // new key (which the agent reads from its new token), not the old one.
    let new_token = rotate(&s, &id).await;
    let new_key = DeviceKey::from_token(&new_token).expect("the new token carries a key");
    assert_ne!(new_key.as_bytes(), old_key.as_bytes());
    let mut fresh = connect_device(&s.broker, &s.topics, &id, &new_token).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (topic, payload) = fresh
            .next_message(deadline - tokio::time::Instant::now())
            .await
            .expect("the settings signed with the new key");
        assert_eq!(topic, config_topic);
        if signed::open(Some(&new_key), SignedKind::Config, fresh.id, &payload).is_ok() {
            assert_eq!(fresh.settings_in(&payload, Some(&new_key)), settings);
            assert!(signed::open(Some(&old_key), SignedKind::Config, fresh.id, &payload).is_err());
            break;
        }
    }
    // The new key signs frames that are stored; the old one no longer does.
    let jpeg = fixture_jpeg("dog.jpg");
    fresh
        .publish_frame(fresh.id, envelope(fresh.id, &token, 1, &jpeg))
        .await;
    wait_for_metric(&s.app, &format!("{DROPPED}\"bad_mac\"}}"), 1).await;
    fresh
        .publish_frame(fresh.id, envelope(fresh.id, &new_token, 2, &jpeg))
        .await;
    assert_eq!(fresh.next_ack().await.acked, [2]);
    fresh.clear_retained().await;
}

on_each_broker!(settings_are_signed_and_signed_again_after_a_rotation);

/// Everything published under the test's prefix on the machine's anonymous
/// Mosquitto: what any subscriber (or a broker log) would see.
async fn wiretap(prefix: &str) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<Bytes>) {
    let (host, port) = MOSQUITTO.rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(
        format!("wiretap-{}", uuid::Uuid::new_v4().simple()),
        host,
        port.parse().unwrap(),
    );
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (sender, received) = tokio::sync::mpsc::unbounded_channel();
    let (ready, subscribed) = tokio::sync::oneshot::channel();
    let subscriber = client.clone();
    let filter = format!("{prefix}/#");
    tokio::spawn(async move {
        let mut ready = Some(ready);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    subscriber
                        .subscribe(filter.clone(), QoS::AtLeastOnce)
                        .await
                        .unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if sender.send(publish.payload).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => panic!("Mosquitto at {MOSQUITTO} is needed: {error}"),
            }
        }
    });
    tokio::time::timeout(PATIENCE, subscribed)
        .await
        .unwrap()
        .unwrap();
    (client, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_on_the_wire_carries_a_device_token() {
    let s = setup(Broker::Mosquitto).await;
    let (_tap, mut seen) = wiretap(s.topics.prefix()).await;
    let (id, token, mut device) = s.device("Hallway").await;
    let jpeg = fixture_jpeg("dog.jpg");

    // A whole conversation: status, settings, frames and their acks.
    let mut online = DeviceStatus::offline();
    online.state = DeviceState::Online;
    device.publish_status(&online).await;
    wait_for_metric(&s.app, "lastseen_mqtt_configs_published_total", 1).await;
    let settings = GateSettings {
        heartbeat_secs: 42,
        ..GateSettings::default()
    };
    put_settings(&s, &id, &settings).await;
    for seq in 1..=3 {
        device
            .publish_frame(device.id, envelope(device.id, &token, seq, &jpeg))
            .await;
        assert_eq!(device.next_ack().await.acked, [seq]);
    }
    wait_for_metric(&s.app, "lastseen_mqtt_configs_published_total", 2).await;

    // Every message reaches the tap; none holds the token or its signature.
    let signature = token.rsplit('.').next().unwrap().as_bytes();
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // 1 status + 2 configs + 3 frames + 3 acks.
    while messages.len() < 9 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, seen.recv()).await {
            Ok(Some(payload)) => messages.push(payload),
            _ => panic!("only {} of 9 messages seen", messages.len()),
        }
    }
    for payload in &messages {
        assert!(!contains(payload, token.as_bytes()));
        assert!(!contains(payload, signature));
    }
    device.clear_retained().await;
}
