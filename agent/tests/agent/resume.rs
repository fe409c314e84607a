//! An agent that lost its spool (a reflash, a new SD card, a restored
//! backup) with the same token: the cloud has seqs stored that the new spool
//! would number again. The agent learns the device's highest stored seq
//! (HTTPS: `GET /device/seq`; MQTT: a signed ack when it comes online),
//! numbers its new frames above it, and sends again under a new seq every
//! spooled frame the cloud refuses as `seq_conflict`: every frame is stored,
//! none is acked and dropped, and the first agent's frames stay as they were.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lastseen_agent::Agent;
use lastseen_agent::config::{Config, TransportKind};
use lastseen_agent::counters::Counters;
use lastseen_agent::spool::SpooledFrame;
use lastseen_agent::spool::record;
use lastseen_cloud::store::FrameStore;

use crate::helpers::{
    Cloud, CloudMqtt, RunningAgent, agent_config, eventually, open_gates, stored_seqs, trace_dir,
};

const LIMIT: Duration = Duration::from_secs(180);
/// Frames the first agent stores.
const FIRST: u64 = 20;
/// Frames left in the restored spool, under seqs 0.. the cloud has stored.
const RESTORED: u64 = 5;
/// Frames the second agent captures.
const SECOND: u64 = 20;

#[derive(Clone, Copy, Debug)]
enum Over {
    Https,
    Mqtt,
}

fn transport(mut config: Config, cloud: &Cloud, over: Over) -> Config {
    config.gates = open_gates();
    if let Over::Mqtt = over {
        config.cloud.transport = TransportKind::Mqtt;
        config.cloud.mqtt_url = cloud.mqtt_url().expect("the cloud takes MQTT");
        config.cloud.ack_timeout_secs = 2;
        config.cloud.status_interval_secs = 1;
    }
    config
}

/// Runs an agent until it captured `frames` and its spool is empty.
async fn run_until_drained(config: Config, frames: u64) -> std::collections::BTreeMap<String, u64> {
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool) = (running.counters.clone(), running.spool.clone());
    eventually("every frame captured and the spool drained", LIMIT, || {
        let done = Counters::get(&counters.captured) == frames
            && spool.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    running.stop().await;
    counters.snapshot()
}

/// Spool files as a backup would bring them back: unsent frames under
/// `0..RESTORED` (which the cloud stored for other frames), and no seq file.
fn restore_backup(spool: &std::path::Path) -> Vec<DateTime<Utc>> {
    let frames = spool.join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    // Whole milliseconds, as the spool keeps them.
    let base = DateTime::from_timestamp_millis(Utc::now().timestamp_millis() - 300_000).unwrap();
    (0..RESTORED)
        .map(|seq| {
            let captured_at = base + chrono::Duration::seconds(seq as i64);
            let jpeg =
                std::fs::read(trace_dir().join(format!("frame_{:04}.jpg", 100 + seq))).unwrap();
            let bytes = record::encode(&SpooledFrame {
                seq,
                captured_at,
                measurements: Vec::new(),
                jpeg,
            });
            std::fs::write(frames.join(format!("{seq:020}.frame")), bytes).unwrap();
            captured_at
        })
        .collect()
}

async fn a_lost_spool_resumes_above_the_stored_seq_and_loses_nothing(over: Over) {
    let mqtt = match over {
        Over::Https => CloudMqtt::Off,
        Over::Mqtt => CloudMqtt::Embedded,
    };
    let cloud = Cloud::start_with(mqtt).await;
    let (_, device, token) = cloud.device("reflashed").await;

    // The first life of the device.
    let first_spool = tempfile::tempdir().unwrap();
    let config = agent_config(&cloud, device, &token, first_spool.path(), FIRST);
    let totals = run_until_drained(transport(config, &cloud, over), FIRST).await;
    assert_eq!(totals["acked"], FIRST, "{totals:?}");
    let store = cloud.store().await;
    let mut before = Vec::new();
    for seq in 0..FIRST {
        let frame = store.frame_by_seq(device, seq).await.unwrap();
        before.push(frame.expect("the first agent's frame is stored").frame);
    }

    // Reflashed: a new data dir with the same token, and a few unsent
    // frames from a backup under seqs the cloud already has.
    let second_spool = tempfile::tempdir().unwrap();
    let restored = restore_backup(second_spool.path());
    let config = agent_config(&cloud, device, &token, second_spool.path(), SECOND);
    let totals = run_until_drained(transport(config, &cloud, over), SECOND).await;

    // Every frame of the second life is stored: none acked and dropped.
    assert_eq!(totals["acked"], RESTORED + SECOND, "{totals:?}");
    assert_eq!(totals["rejected"], 0, "{totals:?}");
    // At least the restored frames were refused as conflicts and renumbered.
    assert!(totals["renumbered"] >= RESTORED, "{totals:?}");
    let all = stored_seqs(&store, device, 0..10_000).await;
    assert_eq!(
        all.len() as u64,
        FIRST + RESTORED + SECOND,
        "stored seqs: {all:?}"
    );
    // The first life's frames are untouched; the new ones are above them.
    for old in &before {
        let now = store.frame_by_seq(device, old.seq).await.unwrap().unwrap();
        assert_eq!(now.frame, *old);
    }
    assert!(
        all[FIRST as usize..].iter().all(|seq| *seq >= FIRST),
        "{all:?}"
    );
    // The restored frames are among them, each once.
    let mut captured = Vec::new();
    for seq in &all[FIRST as usize..] {
        let frame = store.frame_by_seq(device, *seq).await.unwrap().unwrap();
        captured.push(frame.frame.captured_at);
    }
    for at in restored {
        assert_eq!(
            captured.iter().filter(|c| **c == at).count(),
            1,
            "restored frame at {at} stored once"
        );
    }
    assert_eq!(
        store.highest_seq(device).await.unwrap(),
        all.last().copied()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_lost_spool_resumes_above_the_stored_seq_and_loses_nothing() {
    a_lost_spool_resumes_above_the_stored_seq_and_loses_nothing(Over::Https).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_a_lost_spool_resumes_above_the_stored_seq_and_loses_nothing() {
    a_lost_spool_resumes_above_the_stored_seq_and_loses_nothing(Over::Mqtt).await;
}
