//! The attacker's suite: Bob's device, logged in with its own valid token,
//! goes after Alice's device (the victim) on the broker. Each attack is an
//! `async fn name(broker: Broker)` run per broker by a `#[tokio::test]`
//! wrapper; broker-specific code stays in `Scene`.
//!
//! A broker may deny with a SUBACK failure, a disconnect or silence, so the
//! attacks assert the *effect*: the attacker receives nothing of the victim,
//! and the victim's status, settings, frames and inbox are unchanged (and,
//! where the broker counts denials, the denial is counted).

use std::time::{Duration, Instant};

use lastseen_cloud::config::Config;
use lastseen_shared::{DeviceId, DeviceState, DeviceStatus, GateSettings, Topics};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fixture_jpeg, spawn_app_with, wait_for_metric};
use crate::mqtt_client::{
    Broker, MqttDevice, MqttPeer, PATIENCE, connect_device, connect_peer, envelope, observer,
    try_login, try_login_as, use_broker, wait_for_login,
};

/// How long a test listens for something that must not arrive.
const QUIET: Duration = Duration::from_millis(1500);
/// Revoking, rotating or deleting a device ends its session within this.
const KICK_WITHIN: Duration = Duration::from_secs(5);

/// A cloud with two tenants, each with one connected device.
struct Scene {
    app: TestApp,
    broker: Broker,
    address: String,
    topics: Topics,
    group: String,
    /// Alice's user token, and her device (the victim).
    alice: String,
    victim: MqttDevice,
    victim_token: String,
    /// Bob's user token, and his device's credentials (the attacker).
    bob: String,
    attacker_id: String,
    attacker_token: String,
    /// The last settings Alice gave the victim.
    settings: GateSettings,
}

/// What the victim's owner sees of it.
#[derive(Debug, PartialEq)]
struct VictimState {
    device: Value,
    settings: Value,
    frames: Value,
}

async fn scene(broker: Broker) -> Scene {
    scene_with(broker, |_| {}).await
}

async fn scene_with(broker: Broker, customize: impl FnOnce(&mut Config)) -> Scene {
    let mut address = String::new();
    let mut prefix = String::new();
    let mut group = String::new();
    let app = spawn_app_with(|config| {
        address = use_broker(config, broker);
        customize(config);
        prefix = config.mqtt.topic_prefix.clone();
        group = config.mqtt.shared_group.clone();
    })
    .await;
    let topics = Topics::new(&prefix).expect("prefix");
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (victim_id, victim_token) = app.device(&alice, "Front door").await;
    let (attacker_id, attacker_token) = app.device(&bob, "Mallory's cam").await;
    let victim = connect_device(&address, &topics, &victim_id, &victim_token).await;
    Scene {
        app,
        broker,
        address,
        topics,
        group,
        alice,
        victim,
        victim_token,
        bob,
        attacker_id,
        attacker_token,
        settings: GateSettings::default(),
    }
}

impl Scene {
    fn victim_id(&self) -> DeviceId {
        self.victim.id
    }

    /// Bob's device, logged in as itself.
    async fn attacker(&self) -> MqttPeer {
        wait_for_login(&self.address, &self.attacker_id, &self.attacker_token).await;
        connect_peer(&self.address, &self.attacker_id, &self.attacker_token).await
    }

    /// The victim does what a device does: it is given new settings, sends
    /// its status and two frames, and gets their acks.
    async fn victim_lives(&mut self, first_seq: u64) {
        self.settings.heartbeat_secs = 100 + first_seq as u32;
        let path = format!("/api/v1/devices/{}/settings", self.victim_id());
        let response = self
            .app
            .client
            .put(self.app.url(&path))
            .bearer_auth(&self.alice)
            .json(&self.settings)
            .send()
            .await
            .expect("PUT settings");
        assert_eq!(response.status(), StatusCode::OK);
        self.victim_hears_config(&self.settings.clone()).await;

        let mut online = DeviceStatus::offline();
        online.state = DeviceState::Online;
        online.counters.insert("captured".to_owned(), first_seq);
        self.victim.publish_status(&online).await;
        self.wait_for_status_counter(first_seq).await;

        let jpeg = fixture_jpeg("dog.jpg");
        let id = self.victim_id();
        for seq in [first_seq, first_seq + 1] {
            self.victim
                .publish_frame(id, envelope(id, &self.victim_token, seq, &jpeg))
                .await;
        }
        let mut acked = Vec::new();
        while acked.len() < 2 {
            acked.extend(self.victim.next_ack().await.acked);
        }
        acked.sort_unstable();
        assert_eq!(acked, [first_seq, first_seq + 1]);
    }

    /// Waits for these settings on the victim's config topic.
    async fn victim_hears_config(&mut self, want: &GateSettings) {
        let config_topic = self.topics.config(self.victim_id());
        loop {
            let (topic, payload) = self
                .victim
                .next_message(PATIENCE)
                .await
                .expect("the victim's config in time");
            if topic == config_topic && self.victim.settings_in(&payload, None) == *want {
                return;
            }
        }
    }

    async fn wait_for_status_counter(&self, captured: u64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let state = self.victim_state().await;
            if state.device["status"]["counters"]["captured"] == captured {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status never recorded: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn victim_state(&self) -> VictimState {
        let id = self.victim_id();
        let get = |path: String| async move {
            let (status, body) = self.app.get_json(&self.alice, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        };
        VictimState {
            device: get(format!("/api/v1/devices/{id}")).await,
            settings: get(format!("/api/v1/devices/{id}/settings")).await,
            frames: get(format!("/api/v1/devices/{id}/frames")).await,
        }
    }

    /// The victim's state stays as it was for a quiet period, and its
    /// device hears nothing.
    async fn assert_victim_untouched(&mut self, before: &VictimState) {
        let heard = self.victim.next_message(QUIET).await;
        assert!(
            heard.is_none(),
            "the victim received {:?}",
            heard.map(|(topic, _)| topic)
        );
        assert_eq!(&self.victim_state().await, before);
    }

    /// The broker counted `count` denials of `action` (where it counts them).
    async fn expect_denied(&self, action: &str, count: u64) {
        match self.broker {
            Broker::Embedded => {
                let sample = format!("lastseen_mqtt_denied_total{{action=\"{action}\"}}");
                wait_for_metric(&self.app, &sample, count).await;
            }
            // Mosquitto refuses and logs, but tells the cloud nothing; the
            // machine's anonymous one enforces nothing at all.
            Broker::Mosquitto | Broker::Dynsec => {}
        }
    }

    /// The broker counted `count` sessions ended by a credential change.
    async fn expect_kicked(&self, count: u64) {
        match self.broker {
            Broker::Embedded => {
                wait_for_metric(&self.app, "lastseen_mqtt_kicked_total", count).await;
            }
            // The plugin kicks; the tests see it as the session ending.
            Broker::Mosquitto | Broker::Dynsec => {}
        }
    }

    /// The attacker's session has ended and its old token logs in no more.
    async fn assert_kicked_out(&self, session: &mut MqttPeer, what: &str) {
        assert!(
            session.closed_within(KICK_WITHIN).await,
            "{what} is still connected"
        );
        assert!(
            try_login(&self.address, &self.attacker_id, &self.attacker_token)
                .await
                .is_err(),
            "{what}: the old token still logs in"
        );
        self.expect_kicked(1).await;
    }

    /// Bob acts on his own device.
    async fn bob_posts(&self, action: &str) -> Value {
        self.app
            .act_on_device(&self.bob, &self.attacker_id, action)
            .await
    }

    /// Leaves nothing retained behind on a shared broker.
    async fn finish(self) {
        self.victim.clear_retained().await;
    }
}

/// Subscribes the attacker to `filter` while the victim lives; it receives
/// nothing, and the subscription is denied.
async fn subscription_yields_nothing(broker: Broker, filter: impl FnOnce(&Scene) -> String) {
    let mut s = scene(broker).await;
    let filter = filter(&s);
    let mut attacker = s.attacker().await;
    // Denied with a SUBACK failure, a disconnect, or not at all (then it
    // must deliver nothing).
    let _answer = attacker.subscribe(&filter).await;
    s.victim_lives(1).await;
    let stolen = attacker.messages_within(QUIET).await;
    let topics: Vec<&String> = stolen.iter().map(|(topic, _)| topic).collect();
    assert!(topics.is_empty(), "{filter} gave the attacker {topics:?}");
    s.expect_denied("subscribe", 1).await;
    s.finish().await;
}

async fn subscribing_to_everything_yields_nothing(broker: Broker) {
    subscription_yields_nothing(broker, |_| "#".to_owned()).await;
}

async fn subscribing_to_every_devices_frames_yields_nothing(broker: Broker) {
    subscription_yields_nothing(broker, |s| format!("{}/+/frames", s.topics.prefix())).await;
}

async fn subscribing_to_the_victims_acks_yields_nothing(broker: Broker) {
    subscription_yields_nothing(broker, |s| s.topics.ack(s.victim_id())).await;
}

async fn subscribing_to_the_victims_config_yields_nothing(broker: Broker) {
    subscription_yields_nothing(broker, |s| s.topics.config(s.victim_id())).await;
}

/// Joining the cloud's shared subscription would take a share of every
/// device's frames (and stall ingest); the victim's frames are all acked.
async fn joining_the_clouds_shared_subscription_yields_nothing(broker: Broker) {
    subscription_yields_nothing(broker, |s| {
        format!("$share/{}-frames/{}/+/frames", s.group, s.topics.prefix())
    })
    .await;
}

async fn forging_an_ack_for_the_victim_changes_nothing(broker: Broker) {
    let mut s = scene(broker).await;
    s.victim_lives(1).await;
    let before = s.victim_state().await;
    let attacker = s.attacker().await;
    // An agent deletes acked frames from its spool: a forged ack loses data.
    let forged =
        json!({"acked": [3, 4, 5, 6], "rejected": [{"seq": 7, "code": "x", "message": "x"}]});
    attacker
        .publish(
            &s.topics.ack(s.victim_id()),
            forged.to_string().into_bytes(),
            false,
        )
        .await;
    s.assert_victim_untouched(&before).await;
    s.expect_denied("publish", 1).await;
    s.finish().await;
}

async fn forging_a_config_for_the_victim_changes_nothing(broker: Broker) {
    let mut s = scene(broker).await;
    s.victim_lives(1).await;
    let before = s.victim_state().await;
    let attacker = s.attacker().await;
    let mut forged = GateSettings {
        heartbeat_secs: 1,
        ..GateSettings::default()
    };
    forged.person.enabled = true;
    let forged = serde_json::to_vec(&forged).expect("JSON");
    attacker
        .publish(&s.topics.config(s.victim_id()), forged, true)
        .await;
    s.assert_victim_untouched(&before).await;
    // What a reconnecting victim would be handed: still Alice's settings.
    let mut look = observer(s.broker, &s.address).await;
    look.subscribe(&s.topics.config(s.victim_id())).await;
    let retained = look.messages_within(QUIET).await;
    assert_eq!(retained.len(), 1, "{retained:?}");
    assert_eq!(s.victim.settings_in(&retained[0].1, None), s.settings);
    s.expect_denied("publish", 1).await;
    s.finish().await;
}

async fn forging_a_status_for_the_victim_changes_nothing(broker: Broker) {
    let mut s = scene(broker).await;
    s.victim_lives(1).await;
    let before = s.victim_state().await;
    let attacker = s.attacker().await;
    let mut forged = DeviceStatus::offline();
    forged.counters.insert("captured".to_owned(), 666);
    let forged = serde_json::to_vec(&forged).expect("JSON");
    attacker
        .publish(&s.topics.status(s.victim_id()), forged, true)
        .await;
    s.assert_victim_untouched(&before).await;
    // The retained status is still the victim's own.
    let mut look = observer(s.broker, &s.address).await;
    look.subscribe(&s.topics.status(s.victim_id())).await;
    let retained = look.messages_within(QUIET).await;
    assert_eq!(retained.len(), 1, "{retained:?}");
    let held: DeviceStatus = serde_json::from_slice(&retained[0].1).expect("status");
    assert_eq!(held.counters.get("captured"), Some(&1));
    s.expect_denied("publish", 1).await;
    s.finish().await;
}

async fn forging_frames_for_the_victim_stores_nothing(broker: Broker) {
    let mut s = scene(broker).await;
    s.victim_lives(1).await;
    let before = s.victim_state().await;
    let attacker = s.attacker().await;
    let id = s.victim_id();
    let jpeg = fixture_jpeg("dog.jpg");
    attacker
        .publish(
            &s.topics.frames(id),
            envelope(id, &s.attacker_token, 9, &jpeg),
            false,
        )
        .await;
    s.assert_victim_untouched(&before).await;
    s.expect_denied("publish", 1).await;
    s.finish().await;
}

/// Retained junk on any topic would sit in the cloud's memory for good.
async fn retaining_junk_leaves_nothing_behind(broker: Broker) {
    let s = scene(broker).await;
    let attacker = s.attacker().await;
    let junk = format!("junk/{}", uuid::Uuid::new_v4().simple());
    attacker.publish(&junk, vec![0xAB; 1 << 20], true).await;
    let mut look = observer(s.broker, &s.address).await;
    look.subscribe(&junk).await;
    let retained = look.messages_within(QUIET).await;
    assert!(retained.is_empty(), "{} retained", retained.len());
    s.expect_denied("publish", 1).await;
    s.finish().await;
}

/// A thief holding Bob's token: Bob revokes the device and the thief's
/// session ends; the token gets no new one.
async fn a_revoked_device_is_disconnected_and_refused(broker: Broker) {
    let s = scene(broker).await;
    let mut thief = s.attacker().await;
    assert!(!thief.closed_within(Duration::from_millis(200)).await);
    s.bob_posts("revoke").await;
    s.assert_kicked_out(&mut thief, "the revoked device").await;
    s.finish().await;
}

/// Rotation ends the session on the old token; one on the new token stays
/// through later re-checks.
async fn a_rotated_device_is_disconnected_and_refused(broker: Broker) {
    let s = scene_with(broker, |config| config.mqtt.session_recheck_secs = 1).await;
    let mut old = s.attacker().await;
    let rotated = s.bob_posts("rotate").await;
    let new_token = rotated["token"].as_str().expect("token");
    s.assert_kicked_out(&mut old, "the session on the old token")
        .await;
    let mut renewed = connect_peer(&s.address, &s.attacker_id, new_token).await;
    assert!(
        !renewed.closed_within(Duration::from_millis(2500)).await,
        "the session on the new token was ended"
    );
    s.finish().await;
}

async fn a_deleted_device_is_disconnected_and_refused(broker: Broker) {
    let s = scene(broker).await;
    let mut thief = s.attacker().await;
    let path = format!("/api/v1/devices/{}", s.attacker_id);
    let response = s
        .app
        .client
        .delete(s.app.url(&path))
        .bearer_auth(&s.bob)
        .send()
        .await
        .expect("DELETE");
    assert!(response.status().is_success(), "{}", response.status());
    s.assert_kicked_out(&mut thief, "the deleted device").await;
    s.finish().await;
}

/// Devices cannot log in as the cloud, whatever they guess.
async fn the_clouds_username_is_refused_on_the_device_port(broker: Broker) {
    let s = scene(broker).await;
    for (client_id, password) in [
        ("lastseen-cloud", "guess"),
        ("lastseen-cloud-0123456789abcdef", ""),
    ] {
        assert!(
            try_login_as(&s.address, client_id, "lastseen-cloud", password)
                .await
                .is_err(),
            "{client_id}"
        );
    }
    s.expect_denied("connect", 2).await;
    s.finish().await;
}

/// One `#[tokio::test]` per attack against one broker, named after the attack.
macro_rules! attacks_against {
    ($broker:expr) => {
        attacks_against!($broker;
        subscribing_to_everything_yields_nothing,
        subscribing_to_every_devices_frames_yields_nothing,
        subscribing_to_the_victims_acks_yields_nothing,
        subscribing_to_the_victims_config_yields_nothing,
        joining_the_clouds_shared_subscription_yields_nothing,
        forging_an_ack_for_the_victim_changes_nothing,
        forging_a_config_for_the_victim_changes_nothing,
        forging_a_status_for_the_victim_changes_nothing,
        forging_frames_for_the_victim_stores_nothing,
        retaining_junk_leaves_nothing_behind,
        a_revoked_device_is_disconnected_and_refused,
        a_rotated_device_is_disconnected_and_refused,
        a_deleted_device_is_disconnected_and_refused,
        the_clouds_username_is_refused_on_the_device_port,
        );
    };
    ($broker:expr; $($attack:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $attack() {
                super::$attack($broker).await;
            }
        )*
    };
}

/// The embedded broker, behind its guard.
mod embedded {
    use super::Broker;
    attacks_against!(Broker::Embedded);
}

/// Mosquitto with the dynamic-security plugin, as the cloud provisions it.
mod dynsec {
    use super::Broker;
    attacks_against!(Broker::Dynsec);
}

/// Embedded only: the guard's own login to rumqttd is worthless on the
/// device port, and a denied subscription is answered, not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_its_own_secret_and_answers_denied_subscriptions() {
    let s = scene(Broker::Embedded).await;
    let device_port = s.address.parse().expect("host:port");
    let (_, secret) = lastseen_cloud::mqtt::unguarded_upstream(device_port).expect("embedded");
    assert!(
        try_login(&s.address, &s.attacker_id, secret.expose())
            .await
            .is_err()
    );
    s.expect_denied("connect", 1).await;

    let mut attacker = s.attacker().await;
    let answer = attacker.subscribe("#").await;
    assert_eq!(
        answer,
        Some(vec![rumqttc::SubscribeReasonCode::Failure]),
        "a SUBACK failure"
    );
    let own = s.topics.ack(DeviceId::parse(&s.attacker_id).expect("id"));
    assert_eq!(
        attacker.subscribe(&own).await,
        Some(vec![rumqttc::SubscribeReasonCode::Success(
            rumqttc::QoS::AtLeastOnce
        )]),
        "the connection stays and its own topics work"
    );
    s.expect_denied("subscribe", 1).await;
    s.finish().await;
}
