//! The MQTT transport against the machine's Mosquitto (127.0.0.1:1883), under
//! a topic prefix of its own. The test plays the cloud's side of the
//! contract: it reads frame envelopes, acks them (withholding the first ack
//! of some frames, as a full cloud does), and publishes retained settings,
//! signed with the device key as the cloud does. Mosquitto here lets anyone
//! publish anywhere, so it is also where forged acks and settings are tried
//! against the agent's own checks.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastseen_agent::Agent;
use lastseen_agent::config::TransportKind;
use lastseen_agent::counters::Counters;
use lastseen_agent::delivery::DeliveryOutcome;
use lastseen_shared::envelope::{self, Credential};
use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{Ack, DeviceId, DeviceKey, DeviceState, DeviceStatus, GateSettings, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::{mpsc, oneshot};

use crate::helpers::{Cloud, RunningAgent, agent_config, eventually, open_gates};

const LIMIT: Duration = Duration::from_secs(120);
const MOSQUITTO: &str = "mqtt://127.0.0.1:1883";

/// A client of the test's own on Mosquitto, subscribed to `filters`.
async fn observer(filters: &[String]) -> (AsyncClient, mpsc::Receiver<(String, Vec<u8>)>) {
    let mut options = MqttOptions::new(format!("test-{}", uuid::Uuid::now_v7()), "127.0.0.1", 1883);
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let (tx, rx) = mpsc::channel(1024);
    let (ready_tx, ready_rx) = oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let expected = filters.len();
    tokio::spawn(async move {
        let mut subscribed = 0;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscribed += 1;
                    if subscribed == expected
                        && let Some(ready) = ready_tx.take()
                    {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic, p.payload.to_vec())).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => panic!("Mosquitto at 127.0.0.1:1883 is needed: {error}"),
            }
        }
    });
    for filter in filters {
        client
            .subscribe(filter.as_str(), QoS::AtLeastOnce)
            .await
            .unwrap();
    }
    tokio::time::timeout(LIMIT, ready_rx)
        .await
        .expect("subscribed")
        .unwrap();
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_arrive_over_mqtt_and_leave_the_spool_only_when_acked() {
    // Only the device id and token matter here; the cloud's HTTP side is unused.
    let cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("mqtt").await;
    let prefix = format!("test-{}/lastseen/v1", uuid::Uuid::now_v7());
    let topics = Topics::new(&prefix).unwrap();
    let (cloud_side, mut inbox) = observer(&[topics.frames(device), topics.status(device)]).await;

    let spool = tempfile::tempdir().unwrap();
    let frames = 30;
    let mut config = agent_config(&cloud, device, &token, spool.path(), frames);
    config.gates = open_gates();
    config.cloud.transport = TransportKind::Mqtt;
    config.cloud.mqtt_url = MOSQUITTO.to_owned();
    config.cloud.mqtt_topic_prefix = prefix.clone();
    config.cloud.max_in_flight = 4;
    config.cloud.ack_timeout_secs = 1;
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let agent = Agent::build(config)
        .await
        .expect("agent builds")
        .report_deliveries(reports_tx);
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    let mut settings = running.settings.clone();

    // The cloud's side, until the test ends: ack each frame, except the first
    // delivery of every fifth seq (the agent must publish it again after
    // ack_timeout_secs), and note the device's status.
    let deliveries: Arc<Mutex<BTreeMap<u64, u32>>> = Arc::default();
    let online_status: Arc<Mutex<Option<DeviceStatus>>> = Arc::default();
    let ack_topic = topics.ack(device);
    let status_topic = topics.status(device);
    let acker = {
        let (deliveries, online_status, cloud_side) = (
            deliveries.clone(),
            online_status.clone(),
            cloud_side.clone(),
        );
        let key = DeviceKey::from_token(&token).expect("a device token with a key");
        tokio::spawn(async move {
            while let Some((topic, payload)) = inbox.recv().await {
                if topic == status_topic {
                    let status: DeviceStatus = serde_json::from_slice(&payload).unwrap();
                    if status.state == DeviceState::Online {
                        *online_status.lock().unwrap() = Some(status);
                    }
                    continue;
                }
                let envelope = envelope::decode(&payload).expect("a valid envelope");
                assert_eq!(envelope.header.device, device);
                // v2: signed with the key from the token, no token inside.
                assert!(matches!(envelope.credential, Credential::Mac(_)));
                assert!(envelope.verify(&payload, &key));
                assert!(image::load_from_memory(envelope.jpeg).is_ok());
                let seq = envelope.header.seq;
                let count = {
                    let mut deliveries = deliveries.lock().unwrap();
                    let count = deliveries.entry(seq).or_default();
                    *count += 1;
                    *count
                };
                if seq.is_multiple_of(5) && count == 1 {
                    continue;
                }
                let ack = Ack {
                    acked: vec![seq],
                    rejected: Vec::new(),
                    highest_seq: None,
                };
                let ack = signed::seal(
                    &key,
                    SignedKind::Ack,
                    device,
                    &serde_json::to_vec(&ack).unwrap(),
                );
                cloud_side
                    .publish(ack_topic.as_str(), QoS::AtLeastOnce, false, ack)
                    .await
                    .unwrap();
            }
        })
    };
    eventually("every frame acked and the spool drained", LIMIT, || {
        let done = Counters::get(&counters.captured) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0
            && online_status.lock().unwrap().is_some();
        async move { done }
    })
    .await;
    acker.abort();
    let deliveries = deliveries.lock().unwrap().clone();
    let seqs: BTreeSet<u64> = deliveries.keys().copied().collect();
    assert_eq!(seqs, (0..frames).collect::<BTreeSet<_>>());
    // Each frame is reported once, as acked, although some were published twice.
    let mut reported = Vec::new();
    while let Ok(delivery) = reports.try_recv() {
        assert_eq!(delivery.outcome, DeliveryOutcome::Acked);
        assert!(
            delivery.captured_at <= delivery.confirmed_at,
            "{delivery:?}"
        );
        reported.push(delivery.seq);
    }
    reported.sort_unstable();
    assert_eq!(reported, (0..frames).collect::<Vec<_>>());
    assert!(
        deliveries
            .iter()
            .filter(|(seq, _)| seq.is_multiple_of(5))
            .all(|(_, n)| *n >= 2)
    );
    assert_eq!(Counters::get(&counters.acked), frames);
    assert_eq!(Counters::get(&counters.unverified_messages), 0);
    let status = online_status.lock().unwrap().clone().unwrap();
    assert_eq!(status.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));

    // Remote config: retained settings on the config topic apply without a restart.
    let mut remote = GateSettings::default();
    remote.change.min_changed_fraction = 0.02;
    remote.heartbeat_secs = 120;
    let key = DeviceKey::from_token(&token).unwrap();
    cloud_side
        .publish(
            topics.config(device),
            QoS::AtLeastOnce,
            true,
            signed::seal(
                &key,
                SignedKind::Config,
                device,
                &serde_json::to_vec(&remote).unwrap(),
            ),
        )
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, settings.wait_for(|s| *s == remote))
        .await
        .expect("settings applied in time")
        .unwrap();
    assert_eq!(Counters::get(&counters.settings_applied), 1);
    // Clean up the retained message for other runs.
    cloud_side
        .publish(topics.config(device), QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_session_leaves_an_offline_last_will() {
    let prefix = format!("test-{}/lastseen/v1", uuid::Uuid::now_v7());
    let topics = Topics::new(&prefix).unwrap();
    let device = DeviceId::new();
    let (_observer, mut inbox) = observer(&[topics.status(device)]).await;
    // The agent's session options, driven by hand so the test can drop the
    // connection without a clean disconnect.
    let spool = tempfile::tempdir().unwrap();
    let mut config = lastseen_agent::config::Config::default();
    config.cloud.device_id = Some(device);
    config.cloud.token = Some(lastseen_agent::config::Secret::new("t"));
    config.cloud.transport = TransportKind::Mqtt;
    config.cloud.mqtt_url = MOSQUITTO.to_owned();
    config.cloud.mqtt_topic_prefix = prefix;
    config.cloud.mqtt_keep_alive_secs = 5;
    config.spool.dir = spool.path().to_path_buf();
    config.source.max_frames = 1;
    config.metrics.enabled = false;
    let agent = Agent::build(config).await.expect("agent builds");
    let running = tokio::spawn(agent.run(std::future::pending()));
    let online = tokio::time::timeout(LIMIT, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    let status: DeviceStatus = serde_json::from_slice(&online.1).unwrap();
    assert_eq!(status.state, DeviceState::Online);
    // Aborting the task drops the TCP connection without DISCONNECT, like a crash.
    running.abort();
    let will = tokio::time::timeout(LIMIT, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(will.1, br#"{"state":"offline"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_acks_and_settings_change_nothing_and_only_the_real_ack_empties_the_spool() {
    // A broker without ACLs and no cloud: nothing acks, frames stay spooled.
    let cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("mqtt-forged").await;
    let (_, _, other_token) = cloud.device("mqtt-other").await;
    let key = DeviceKey::from_token(&token).expect("a device token with a key");
    let other_key = DeviceKey::from_token(&other_token).unwrap();
    let prefix = format!("test-{}/lastseen/v1", uuid::Uuid::now_v7());
    let topics = Topics::new(&prefix).unwrap();
    let (attacker, _inbox) = observer(&[topics.status(device)]).await;

    let spool = tempfile::tempdir().unwrap();
    let frames = 8;
    let mut config = agent_config(&cloud, device, &token, spool.path(), frames);
    config.gates = open_gates();
    config.cloud.transport = TransportKind::Mqtt;
    config.cloud.mqtt_url = MOSQUITTO.to_owned();
    config.cloud.mqtt_topic_prefix = prefix.clone();
    config.cloud.max_in_flight = 16;
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    let settings = running.settings.clone();
    let depth = || spool_state.gauge().frames.load(Ordering::Relaxed);
    eventually("every frame spooled and published", LIMIT, || {
        let done = depth() == frames && Counters::get(&counters.sent) >= frames;
        async move { done }
    })
    .await;
    let before = settings.borrow().clone();

    let every_seq = Ack {
        acked: (0..1000).collect(),
        rejected: Vec::new(),
        highest_seq: None,
    };
    let body = serde_json::to_vec(&every_seq).unwrap();
    let blind = GateSettings {
        heartbeat_secs: 0,
        light: lastseen_shared::messages::LightGate {
            min_mean_luma: 254.0,
            max_mean_luma: 255.0,
            ..Default::default()
        },
        ..GateSettings::default()
    };
    let blind = serde_json::to_vec(&blind).unwrap();
    let forgeries = [
        // Plain JSON, as an ack was before 0.2.
        (topics.ack(device), body.clone()),
        // Signed, but with another device's key.
        (
            topics.ack(device),
            signed::seal(&other_key, SignedKind::Ack, device, &body),
        ),
        // The right key, but sealed for another device.
        (
            topics.ack(device),
            signed::seal(&key, SignedKind::Ack, DeviceId::new(), &body),
        ),
        // Settings that would blind the camera: unsigned, then signed by another key.
        (topics.config(device), blind.clone()),
        (
            topics.config(device),
            signed::seal(&other_key, SignedKind::Config, device, &blind),
        ),
    ];
    let count = forgeries.len() as u64;
    for (topic, payload) in forgeries {
        attacker
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    eventually("every forgery seen and refused", LIMIT, || {
        let seen = Counters::get(&counters.unverified_messages);
        async move { seen == count }
    })
    .await;
    assert_eq!(depth(), frames, "a forged ack removed frames");
    assert_eq!(Counters::get(&counters.acked), 0);
    assert_eq!(*settings.borrow(), before);
    assert_eq!(Counters::get(&counters.settings_applied), 0);

    // A genuine ack for seqs never published: signed right, still ignored.
    let never_sent = Ack {
        acked: vec![frames + 100, frames + 101],
        rejected: Vec::new(),
        highest_seq: None,
    };
    attacker
        .publish(
            topics.ack(device),
            QoS::AtLeastOnce,
            false,
            signed::seal(
                &key,
                SignedKind::Ack,
                device,
                &serde_json::to_vec(&never_sent).unwrap(),
            ),
        )
        .await
        .unwrap();
    eventually("the unknown seqs ignored", LIMIT, || {
        let ignored = Counters::get(&counters.acks_ignored);
        async move { ignored == 2 }
    })
    .await;
    assert_eq!(depth(), frames);

    // The same ack the forgeries carried, signed with the device's key: the
    // spool empties, so the checks above are what kept the frames.
    attacker
        .publish(
            topics.ack(device),
            QoS::AtLeastOnce,
            false,
            signed::seal(&key, SignedKind::Ack, device, &body),
        )
        .await
        .unwrap();
    eventually("the real ack empties the spool", LIMIT, || {
        let done = depth() == 0 && Counters::get(&counters.acked) == frames;
        async move { done }
    })
    .await;
    // It named 1000 seqs; only the published ones counted.
    assert_eq!(Counters::get(&counters.acks_ignored), 2 + 1000 - frames);
    running.stop().await;
}
