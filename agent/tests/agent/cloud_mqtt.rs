//! The agent against the real cloud over MQTT: through the cloud's embedded
//! broker, and through the machine's Mosquitto with the cloud stopped for a
//! while. Every frame that passed the gates is stored once; the gate settings
//! set through the REST API reach the running agent.

use std::sync::atomic::Ordering;
use std::time::Duration;

use lastseen_agent::Agent;
use lastseen_agent::config::{Config, TransportKind};
use lastseen_agent::counters::Counters;
use lastseen_shared::GateSettings;
use serde_json::Value;

use crate::helpers::{
    Cloud, CloudMqtt, RunningAgent, agent_config, eventually, open_gates, stored_seqs,
};

const LIMIT: Duration = Duration::from_secs(180);

fn over_mqtt(mut config: Config, cloud: &Cloud, prefix: Option<&str>) -> Config {
    config.gates = open_gates();
    config.cloud.transport = TransportKind::Mqtt;
    config.cloud.mqtt_url = cloud.mqtt_url().expect("the cloud takes MQTT");
    if let Some(prefix) = prefix {
        config.cloud.mqtt_topic_prefix = prefix.to_owned();
    }
    config.cloud.ack_timeout_secs = 2;
    config.cloud.status_interval_secs = 1;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_through_the_embedded_broker_are_stored_once_and_settings_reach_the_agent() {
    let cloud = Cloud::start_with(CloudMqtt::Embedded).await;
    let (user, device, token) = cloud.device("mqtt-e2e").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 40;
    let config = over_mqtt(
        agent_config(&cloud, device, &token, spool.path(), frames),
        &cloud,
        None,
    );
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    let mut settings = running.settings.clone();

    eventually("every frame acked and the spool drained", LIMIT, || {
        let done = Counters::get(&counters.acked) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    let store = cloud.store().await;
    let stored = stored_seqs(&store, device, 0..frames + 10).await;
    assert_eq!(stored, (0..frames).collect::<Vec<_>>());
    assert_eq!(Counters::get(&counters.rejected), 0);

    // Settings set by the owner arrive as the retained config message.
    let mut wanted = open_gates();
    wanted.heartbeat_secs = 1234;
    wanted.change.min_changed_fraction = 0.031;
    let client = reqwest::Client::new();
    let response = client
        .put(cloud.url(&format!("/api/v1/devices/{device}/settings")))
        .bearer_auth(&user)
        .json(&wanted)
        .send()
        .await
        .expect("PUT settings");
    assert!(response.status().is_success(), "{}", response.status());
    tokio::time::timeout(LIMIT, settings.wait_for(|s: &GateSettings| *s == wanted))
        .await
        .expect("the settings arrive in time")
        .expect("the agent is running");

    // The status message reaches the owner's device listing.
    eventually("the device reports its status", LIMIT, || {
        let request = client
            .get(cloud.url(&format!("/api/v1/devices/{device}")))
            .bearer_auth(&user)
            .send();
        async move {
            let Ok(response) = request.await else {
                return false;
            };
            let device: Value = response.json().await.unwrap_or_default();
            device["status"]["state"] == "online"
        }
    })
    .await;

    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_arrives_once_over_mosquitto_after_the_cloud_was_down() {
    let prefix = format!("test-{}/lastseen/v1", uuid::Uuid::now_v7());
    let mut cloud = Cloud::start_with(CloudMqtt::Mosquitto {
        prefix: prefix.clone(),
    })
    .await;
    let (_, device, token) = cloud.device("mqtt-outage").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 40;
    let mut config = over_mqtt(
        agent_config(&cloud, device, &token, spool.path(), frames),
        &cloud,
        Some(&prefix),
    );
    // 10 s of capture: the cloud must stop while frames are still to come,
    // even when a loaded machine takes seconds to stop it.
    config.source.fps = 4.0;
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());

    eventually("a few frames acked", LIMIT, || {
        let acked = Counters::get(&counters.acked);
        async move { acked >= 5 }
    })
    .await;
    cloud.stop().await;
    eventually("the rest captured while the cloud is down", LIMIT, || {
        let captured = Counters::get(&counters.captured);
        async move { captured == frames }
    })
    .await;
    let acked_while_down = Counters::get(&counters.acked);
    assert!(
        acked_while_down < frames,
        "frames were waiting when the cloud came back ({acked_while_down} acked)"
    );
    cloud.restart().await;

    eventually("every frame acked after the restart", LIMIT, || {
        let done = Counters::get(&counters.acked) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    running.stop().await;

    let store = cloud.store().await;
    let stored = stored_seqs(&store, device, 0..frames + 10).await;
    assert_eq!(stored, (0..frames).collect::<Vec<_>>());
}

/// Writes the token file the way an operator's tooling should: whole or not at all.
fn write_token(path: &std::path::Path, token: &str) {
    let temporary = path.with_extension("new");
    std::fs::write(&temporary, format!("{token}\n")).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_dropped_in_its_file_is_picked_up_and_frames_keep_arriving() {
    let cloud = Cloud::start_with(CloudMqtt::Embedded).await;
    let (user, device, token) = cloud.device("mqtt-rotate").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("device.token");
    write_token(&token_file, &token);
    let frames = 60;
    let mut config = over_mqtt(
        agent_config(&cloud, device, &token, &dir.path().join("spool"), frames),
        &cloud,
        None,
    );
    config.cloud.token = None;
    config.cloud.token_file = Some(token_file.clone());
    config.source.fps = 5.0;
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    eventually("a few frames acked with the first token", LIMIT, || {
        let acked = Counters::get(&counters.acked);
        async move { acked >= 5 }
    })
    .await;

    // The owner rotates the token: the old one (and its key) stop at once.
    let response = reqwest::Client::new()
        .post(cloud.url(&format!("/api/v1/devices/{device}/rotate")))
        .bearer_auth(&user)
        .send()
        .await
        .expect("rotate");
    assert!(response.status().is_success(), "{}", response.status());
    let rotated: Value = response.json().await.unwrap();
    let captured_at_rotation = Counters::get(&counters.captured);
    assert!(
        captured_at_rotation < frames,
        "frames are still to come after the rotation"
    );
    write_token(&token_file, rotated["token"].as_str().expect("new token"));

    eventually("every frame acked after the rotation", LIMIT, || {
        let done = Counters::get(&counters.acked) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    running.stop().await;
    // Frames captured after the rotation are only stored if the agent signed
    // them with the new token's key.
    let store = cloud.store().await;
    let stored = stored_seqs(&store, device, 0..frames + 10).await;
    assert_eq!(stored, (0..frames).collect::<Vec<_>>());
}
