//! Frames over HTTPS: every frame that passed the gates arrives once, also
//! when the cloud is down for a while.

use std::sync::atomic::Ordering;
use std::time::Duration;

use lastseen_agent::Agent;
use lastseen_agent::counters::Counters;
use lastseen_agent::delivery::DeliveryOutcome;

use crate::helpers::{
    Cloud, CloudMqtt, RunningAgent, agent_config, eventually, open_gates, stored_seqs,
};

const LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_pass_the_gates_arrive_once_each() {
    let cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("hall").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 60;
    let config = agent_config(&cloud, device, &token, spool.path(), frames);
    let (reports_tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let agent = Agent::build(config)
        .await
        .expect("agent builds")
        .report_deliveries(reports_tx);
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());

    eventually("every frame captured and the spool drained", LIMIT, || {
        let done = Counters::get(&counters.captured) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0
            && Counters::get(&counters.acked) == Counters::get(&counters.spooled);
        async move { done }
    })
    .await;
    running.stop().await;

    let totals = counters.snapshot();
    let spooled = totals["spooled"];
    // The default gates at work on the busy hall: some frames pass, some do not.
    assert!(spooled > 0, "{totals:?}");
    assert_eq!(
        totals["captured"],
        spooled + totals["dropped_light"] + totals["dropped_change"],
        "{totals:?}"
    );
    // Exactly the spooled seqs are stored: 0..spooled, nothing after.
    let store = cloud.store().await;
    let stored = stored_seqs(&store, device, 0..spooled + 10).await;
    assert_eq!(stored, (0..spooled).collect::<Vec<_>>());
    assert_eq!(totals["rejected"], 0);
    // Every stored frame was reported once, as acked, in the order sent.
    let mut reported = Vec::new();
    while let Ok(delivery) = reports.try_recv() {
        assert_eq!(delivery.outcome, DeliveryOutcome::Acked);
        assert!(
            delivery.captured_at <= delivery.confirmed_at,
            "{delivery:?}"
        );
        reported.push(delivery.seq);
    }
    assert_eq!(reported, stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_arrives_once_after_the_cloud_was_down() {
    let mut cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("outage").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 50;
    let mut config = agent_config(&cloud, device, &token, spool.path(), frames);
    config.gates = open_gates();
    let agent = Agent::build(config).await.expect("agent builds");
    let running = RunningAgent::start(agent);
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());

    eventually("a few frames acked", LIMIT, || {
        let acked = Counters::get(&counters.acked);
        async move { acked >= 5 }
    })
    .await;
    cloud.stop().await;
    eventually(
        "the rest captured into the spool while the cloud is down",
        LIMIT,
        || {
            let captured = Counters::get(&counters.captured);
            async move { captured == frames }
        },
    )
    .await;
    let waiting = spool_state.gauge().frames.load(Ordering::Relaxed);
    assert!(
        waiting > 0,
        "frames wait in the spool while the cloud is down"
    );
    // Give the transport time to fail and back off a few times.
    eventually("the transport notices the outage", LIMIT, || {
        let errors = Counters::get(&counters.transport_errors);
        async move { errors >= 2 }
    })
    .await;

    cloud.restart().await;
    eventually("the spool drained after the cloud came back", LIMIT, || {
        let depth = spool_state.gauge().frames.load(Ordering::Relaxed);
        async move { depth == 0 }
    })
    .await;
    running.stop().await;

    assert_eq!(Counters::get(&counters.spooled), frames);
    let store = cloud.store().await;
    let stored = stored_seqs(&store, device, 0..frames + 10).await;
    assert_eq!(stored, (0..frames).collect::<Vec<_>>());
    assert_eq!(Counters::get(&counters.spool_dropped), 0);
}

/// A typo in `http_url` (here a path the cloud answers 404 to) must not
/// cost frames: they stay spooled and arrive once the URL is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_pointed_at_a_wrong_url_keeps_its_frames() {
    let cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("hall").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 12;
    let mut config = agent_config(&cloud, device, &token, spool.path(), frames);
    config.cloud.http_url = format!("http://{}/typo", cloud.addr);
    config.gates = open_gates();
    let running = RunningAgent::start(Agent::build(config.clone()).await.expect("agent builds"));
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    eventually(
        "every frame captured and refused by the wrong URL",
        LIMIT,
        || {
            let done = Counters::get(&counters.captured) == frames
                && Counters::get(&counters.transport_errors) >= 3;
            async move { done }
        },
    )
    .await;
    running.stop().await;
    assert_eq!(Counters::get(&counters.rejected), 0);
    assert_eq!(Counters::get(&counters.acked), 0);
    assert_eq!(spool_state.gauge().frames.load(Ordering::Relaxed), frames);

    // The same spool with the right URL: every frame arrives.
    config.cloud.http_url = format!("http://{}", cloud.addr);
    config.source.max_frames = 0;
    let running = RunningAgent::start(Agent::build(config).await.expect("agent builds"));
    let spool_state = running.spool.clone();
    eventually("the kept frames delivered", LIMIT, || {
        let done = spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    running.stop().await;
    let store = cloud.store().await;
    assert_eq!(
        stored_seqs(&store, device, 0..frames + 10).await,
        (0..frames).collect::<Vec<_>>()
    );
}

/// A full storage quota (507 `quota_exceeded`) must not cost frames: they
/// stay spooled, counted in `quota_refusals` (which the status carries), and
/// arrive once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_over_its_quota_keeps_its_frames() {
    // Room for two or three of the trace's frames (about 30-40 KB each).
    let mut cloud = Cloud::start_configured(CloudMqtt::Off, |config| {
        config.ingest.user_quota_bytes = Some(100_000);
        config.ingest.skip_unchanged_images = false;
    })
    .await;
    let (_, device, token) = cloud.device("hall").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 12;
    let mut config = agent_config(&cloud, device, &token, spool.path(), frames);
    config.gates = open_gates();
    let running = RunningAgent::start(Agent::build(config.clone()).await.expect("agent builds"));
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    eventually(
        "every frame captured, the quota hit a few times",
        LIMIT,
        || {
            let done = Counters::get(&counters.captured) == frames
                && Counters::get(&counters.quota_refusals) >= 3;
            async move { done }
        },
    )
    .await;
    running.stop().await;
    assert_eq!(Counters::get(&counters.rejected), 0);
    let acked = Counters::get(&counters.acked);
    assert!(acked < frames, "{acked} acked: the quota never held");
    let waiting = spool_state.gauge().frames.load(Ordering::Relaxed);
    assert_eq!(acked + waiting, frames);
    let store = cloud.store().await;
    assert_eq!(
        stored_seqs(&store, device, 0..frames + 10).await,
        (0..acked).collect::<Vec<_>>()
    );

    // The operator raises the quota: the same spool delivers every frame.
    cloud.stop().await;
    cloud.reconfigure(|config| config.ingest.user_quota_bytes = None);
    cloud.restart().await;
    config.cloud.http_url = format!("http://{}", cloud.addr);
    config.source.max_frames = 0;
    let running = RunningAgent::start(Agent::build(config).await.expect("agent builds"));
    let spool_state = running.spool.clone();
    eventually("the kept frames delivered", LIMIT, || {
        let done = spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    running.stop().await;
    let store = cloud.store().await;
    assert_eq!(
        stored_seqs(&store, device, 0..frames + 10).await,
        (0..frames).collect::<Vec<_>>()
    );
}
