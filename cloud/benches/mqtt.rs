//! Frames per second and ack latency over MQTT: the cloud in this process
//! (SQLite and blobs in a temp dir), DEVICES rumqttc devices each keeping up
//! to WINDOW frames unacknowledged, publishing FRAMES envelopes in all.
//!
//! `cargo bench -p lastseen-cloud --bench mqtt` (see BENCHMARKS.md).
//! Environment: BROKER (`embedded` or `mosquitto`, the machine's on
//! 127.0.0.1:1883), MQTT_PATH (embedded only: `guard`, the default, devices
//! connect to `mqtt_listen` through the guard as in production; `direct`,
//! the same devices log in to rumqttd's guard listener behind it, to measure
//! what the guard costs), DETECT (1, or 0 for `detect_enabled = false`),
//! FRAMES (default 400), DEVICES (4), WINDOW (8), WORKERS (2), IMAGE
//! (`dog.jpg`, or `tiny` for a 64x48 JPEG).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use chrono::Utc;
use lastseen_cloud::mqtt::MqttMode;
use lastseen_cloud::testkit::{
    Api, CloudMqtt, LocalCloud, MOSQUITTO, PASSWORD, fixture_jpeg, tiny_jpeg,
};
use lastseen_shared::envelope::{self, EnvelopeHeader};
use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{Ack, DeviceId, DeviceKey, Topics};
use rumqttc::{AsyncClient, Event, MqttOptions, NetworkOptions, Packet, QoS};
use tokio::sync::mpsc;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn image() -> Result<Vec<u8>> {
    let name = std::env::var("IMAGE").unwrap_or_else(|_| "dog.jpg".to_owned());
    if name == "tiny" {
        return Ok(tiny_jpeg(90)?);
    }
    Ok(fixture_jpeg(&name, 95)?)
}

/// One device: publishes its share of the frames with at most `window`
/// unacknowledged, and reports each frame's publish-to-ack time.
#[allow(clippy::too_many_arguments)]
async fn device(
    broker: SocketAddr,
    topics: Topics,
    id: DeviceId,
    token: String,
    password: String,
    jpeg: Vec<u8>,
    frames: usize,
    window: usize,
) -> Result<Vec<Duration>> {
    let mut options = MqttOptions::new(id.to_string(), broker.ip().to_string(), broker.port());
    options
        .set_credentials(id.to_string(), password)
        .set_keep_alive(Duration::from_secs(30))
        .set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    // Envelopes v2 and signed acks, as agents send and check them.
    let key = DeviceKey::from_token(&token).context("the device token carries no key")?;
    let (acks, mut ack_rx) = mpsc::unbounded_channel::<Ack>();
    let (ready, ready_rx) = tokio::sync::oneshot::channel();
    let ack_topic = topics.ack(id);
    let subscriber = client.clone();
    let ack_key = key.clone();
    let poller = tokio::spawn(async move {
        let mut ready = Some(ready);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = subscriber
                        .subscribe(ack_topic.clone(), QoS::AtLeastOnce)
                        .await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let body = signed::open(Some(&ack_key), SignedKind::Ack, id, &p.payload);
                    if let Some(ack) = body.ok().and_then(|b| serde_json::from_slice(b).ok()) {
                        let _ = acks.send(ack);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("device connection: {error}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready_rx).await??;

    let mut sent_at: HashMap<u64, Instant> = HashMap::new();
    let mut latencies = Vec::with_capacity(frames);
    let mut next = 1u64;
    let last = frames as u64;
    while latencies.len() < frames {
        while next <= last && sent_at.len() < window {
            let header = EnvelopeHeader {
                device: id,
                seq: next,
                captured_at: Utc::now(),
                measurements: Vec::new(),
            };
            let message = envelope::encode_v2(&header, &jpeg, &key)?;
            sent_at.insert(next, Instant::now());
            client
                .publish(topics.frames(id), QoS::AtLeastOnce, false, message)
                .await?;
            next += 1;
        }
        // A frame without an ack for this long was withheld (queue full):
        // send it again, as the agent does.
        match tokio::time::timeout(Duration::from_secs(5), ack_rx.recv()).await {
            Ok(Some(ack)) => {
                ensure!(ack.rejected.is_empty(), "rejected: {:?}", ack.rejected);
                for seq in ack.acked {
                    if let Some(at) = sent_at.remove(&seq) {
                        latencies.push(at.elapsed());
                    }
                }
            }
            Ok(None) => bail!("the device connection ended"),
            Err(_) => {
                for (&seq, at) in sent_at.iter_mut() {
                    let header = EnvelopeHeader {
                        device: id,
                        seq,
                        captured_at: Utc::now(),
                        measurements: Vec::new(),
                    };
                    *at = Instant::now();
                    client
                        .publish(
                            topics.frames(id),
                            QoS::AtLeastOnce,
                            false,
                            envelope::encode_v2(&header, &jpeg, &key)?,
                        )
                        .await?;
                }
            }
        }
    }
    poller.abort();
    Ok(latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let broker_kind = std::env::var("BROKER").unwrap_or_else(|_| "embedded".to_owned());
    let path = std::env::var("MQTT_PATH").unwrap_or_else(|_| "guard".to_owned());
    ensure!(
        matches!(path.as_str(), "guard" | "direct"),
        "MQTT_PATH must be guard or direct, not {path}"
    );
    ensure!(
        path == "guard" || broker_kind == "embedded",
        "MQTT_PATH=direct needs BROKER=embedded"
    );
    let detect = env_or("DETECT", 1) != 0;
    let frames = env_or("FRAMES", 400);
    let devices = env_or("DEVICES", 4).max(1);
    let window = env_or("WINDOW", 8).max(1);
    let workers = env_or("WORKERS", 2);
    let jpeg = image()?;

    let unique = uuid::Uuid::new_v4().simple().to_string();
    let mqtt = match broker_kind.as_str() {
        "embedded" => CloudMqtt::Embedded,
        "mosquitto" => CloudMqtt::Mosquitto {
            prefix: format!("lastseen-bench/{unique}"),
        },
        other => bail!("BROKER must be embedded or mosquitto, not {other}"),
    };
    let mut cloud = LocalCloud::start(mqtt, |config| {
        config.detect.workers = workers;
        config.detect.enabled = detect;
        config.detect.queue_depth = 128;
        config.mqtt.shared_group = format!("b{unique}");
    })
    .await?;
    let config = cloud.config();
    let broker: SocketAddr = match config.mqtt.mode {
        MqttMode::Embedded => config.mqtt.listen,
        _ => MOSQUITTO.parse()?,
    };
    let topics = Topics::new(&config.mqtt.topic_prefix)?;
    let api = Api::new(&cloud.http_url())?;
    let user = api.user("bench", PASSWORD).await?.token;

    // The direct path skips the guard: rumqttd's listener behind it, with
    // the guard's password for every device.
    let (broker, direct_password) = if path == "direct" {
        let (upstream, secret) = lastseen_cloud::mqtt::unguarded_upstream(broker)
            .context("the embedded broker's guard listener")?;
        (upstream, Some(secret.expose().to_owned()))
    } else {
        (broker, None)
    };
    let mut credentials = Vec::new();
    for index in 0..devices {
        let name = format!("bench-{index}");
        credentials.push(api.device(&user, &name, None).await?);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, (id, token)) in credentials.into_iter().enumerate() {
        let share = frames / devices + usize::from(index < frames % devices);
        let password = direct_password.clone().unwrap_or_else(|| token.clone());
        tasks.push(tokio::spawn(device(
            broker,
            topics.clone(),
            id,
            token,
            password,
            jpeg.clone(),
            share,
            window,
        )));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    println!(
        "broker={broker_kind} path={path} detect={detect} image={}B frames={} devices={devices} window={window} workers={workers}: \
         {:.1} frames/s, ack latency p50 {:.1} ms, p99 {:.1} ms",
        jpeg.len(),
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
    cloud.stop().await?;
    Ok(())
}
