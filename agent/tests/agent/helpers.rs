//! The real cloud in-process (stoppable and restartable on the same port and
//! data), a user and a device on it, and agent configs pointing at it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lastseen_agent::config::{Config, SourceKind, TransportKind};
use lastseen_agent::counters::Counters;
use lastseen_agent::spool::SharedSpool;
use lastseen_agent::{Agent, AgentError};
use lastseen_cloud::store::{FrameStore, SqliteStore};
use lastseen_shared::{DeviceId, GateSettings};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

pub(crate) const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";
const PASSWORD: &str = "correct horse battery staple";

pub(crate) fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub(crate) fn trace_dir() -> PathBuf {
    shared_dir().join("fixtures/trace")
}

/// How a test cloud takes MQTT frames.
#[derive(Clone, Debug)]
pub(crate) enum CloudMqtt {
    /// HTTPS only: the default embedded broker would want 1883, which this
    /// machine's Mosquitto holds.
    Off,
    /// Its own rumqttd on a free port (it cannot be restarted in-process).
    Embedded,
    /// A client of the machine's Mosquitto under a topic prefix of the test's own.
    Mosquitto { prefix: String },
}

/// A cloud node; its data dir and configuration outlive restarts.
pub(crate) struct Cloud {
    pub(crate) addr: SocketAddr,
    config: lastseen_cloud::config::Config,
    /// Kept for the node's lifetime: `config.data_dir` points into it.
    _data_dir: tempfile::TempDir,
    running: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

fn cloud_config(data_dir: &Path, mqtt: &CloudMqtt) -> lastseen_cloud::config::Config {
    use lastseen_cloud::config::MqttMode;
    let mut config = lastseen_cloud::config::Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_path_buf(),
        model_path: shared_dir().join("models/yolox_nano.onnx"),
        detect_workers: 1,
        detect_threads: 1,
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        jwt_secret: Some(lastseen_cloud::config::Secret::new(TEST_JWT_SECRET)),
        log: "warn".to_owned(),
        ..lastseen_cloud::config::Config::default()
    };
    match mqtt {
        CloudMqtt::Off => config.mqtt = MqttMode::Off,
        CloudMqtt::Embedded => {
            config.mqtt = MqttMode::Embedded;
            config.mqtt_listen =
                lastseen_cloud::mqtt::free_loopback_port().expect("a free port for the broker");
        }
        CloudMqtt::Mosquitto { prefix } => {
            config.mqtt = MqttMode::External;
            config.mqtt_url = Some("mqtt://127.0.0.1:1883".to_owned());
            config.mqtt_topic_prefix = prefix.clone();
        }
    }
    config
}

impl Cloud {
    /// A node taking frames over HTTPS only.
    pub(crate) async fn start() -> Self {
        Self::start_with(CloudMqtt::Off).await
    }

    pub(crate) async fn start_with(mqtt: CloudMqtt) -> Self {
        Self::start_configured(mqtt, |_| {}).await
    }

    /// A node with settings of the test's own.
    pub(crate) async fn start_configured(
        mqtt: CloudMqtt,
        customize: impl FnOnce(&mut lastseen_cloud::config::Config),
    ) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = cloud_config(data_dir.path(), &mqtt);
        customize(&mut config);
        let mut cloud = Self {
            addr: config.bind,
            config,
            _data_dir: data_dir,
            running: None,
        };
        cloud.restart().await;
        cloud
    }

    /// Starts the node again, on the same address with the same data.
    pub(crate) async fn restart(&mut self) {
        assert!(self.running.is_none(), "the cloud is running");
        lastseen_shared::service::init_logs(&self.config.log);
        let listener = lastseen_cloud::bind(self.addr).await.expect("binds");
        self.addr = listener.local_addr().expect("local addr");
        let config = lastseen_cloud::config::Config {
            bind: self.addr,
            ..self.config.clone()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let outcome = lastseen_cloud::run(config, listener, async {
                let _ = stopped.await;
            })
            .await;
            if let Err(error) = outcome {
                panic!("the cloud failed: {error}");
            }
        });
        self.running = Some((stop, server));
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = client.get(self.url("/api/v1/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the cloud did not come up");
    }

    /// Changes the settings of the next [`Cloud::restart`].
    pub(crate) fn reconfigure(
        &mut self,
        customize: impl FnOnce(&mut lastseen_cloud::config::Config),
    ) {
        customize(&mut self.config);
    }

    /// Stops the node and waits until it has closed its port.
    pub(crate) async fn stop(&mut self) {
        let (stop, server) = self.running.take().expect("the cloud is running");
        let _ = stop.send(());
        server.await.expect("the cloud stops cleanly");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Where devices connect for MQTT, unless the node takes none.
    pub(crate) fn mqtt_url(&self) -> Option<String> {
        use lastseen_cloud::config::MqttMode;
        match self.config.mqtt {
            MqttMode::Off => None,
            MqttMode::Embedded => Some(format!("mqtt://{}", self.config.mqtt_listen)),
            MqttMode::External => self.config.mqtt_url.clone(),
        }
    }

    /// Registers a user and a device; returns `(user token, device id, device token)`.
    pub(crate) async fn device(&self, username: &str) -> (String, DeviceId, String) {
        let client = reqwest::Client::new();
        let response = client
            .post(self.url("/api/v1/auth/register"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        assert!(
            response.status().is_success(),
            "register: {}",
            response.status()
        );
        let login: Value = client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": PASSWORD}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        let user = login["access_token"].as_str().expect("token").to_owned();
        let device: Value = client
            .post(self.url("/api/v1/devices"))
            .bearer_auth(&user)
            .json(&json!({"name": "hall camera"}))
            .send()
            .await
            .expect("create device")
            .json()
            .await
            .expect("device JSON");
        (
            user,
            DeviceId::parse(device["id"].as_str().expect("id")).expect("device id"),
            device["token"].as_str().expect("device token").to_owned(),
        )
    }

    /// The cloud's own store, read beside the running node.
    pub(crate) async fn store(&self) -> SqliteStore {
        let path = self.config.data_dir.join("lastseen.db");
        SqliteStore::connect(&format!("sqlite://{}", path.display()), 1)
            .await
            .expect("opens the cloud's database")
    }
}

/// The seqs of `device` stored by the cloud among `candidates`.
pub(crate) async fn stored_seqs(
    store: &SqliteStore,
    device: DeviceId,
    candidates: impl IntoIterator<Item = u64>,
) -> Vec<u64> {
    let mut stored = Vec::new();
    for seq in candidates {
        if store
            .frame_by_seq(device, seq)
            .await
            .expect("frame_by_seq")
            .is_some()
        {
            stored.push(seq);
        }
    }
    stored
}

/// Gate settings that let every frame through (for exact ledgers).
pub(crate) fn open_gates() -> GateSettings {
    let mut gates = GateSettings::default();
    gates.light.enabled = false;
    gates.change.enabled = false;
    gates.heartbeat_secs = 0;
    gates
}

/// An agent replaying `frames` frames of the trace at 20 fps to `cloud`.
pub(crate) fn agent_config(
    cloud: &Cloud,
    device: DeviceId,
    token: &str,
    spool: &Path,
    frames: u64,
) -> Config {
    let mut config = Config::default();
    config.cloud.device_id = Some(device);
    config.cloud.token = Some(lastseen_agent::config::Secret::new(token));
    config.cloud.transport = TransportKind::Https;
    config.cloud.http_url = format!("http://{}", cloud.addr);
    config.cloud.backoff_initial_ms = 50;
    config.cloud.backoff_max_ms = 500;
    config.source.kind = SourceKind::Dir;
    config.source.path = Some(trace_dir());
    config.source.fps = 20.0;
    config.source.max_frames = frames;
    config.spool.dir = spool.to_path_buf();
    config.metrics.enabled = false;
    config.log = "warn".to_owned();
    config
}

/// Polls `check` every 50 ms until it holds; fails after `limit`.
pub(crate) async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// An agent running in this test's process until [`RunningAgent::stop`].
pub(crate) struct RunningAgent {
    pub(crate) counters: Arc<Counters>,
    pub(crate) spool: Arc<SharedSpool>,
    pub(crate) settings: watch::Receiver<GateSettings>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
}

impl RunningAgent {
    pub(crate) fn start(agent: Agent) -> Self {
        let (counters, spool, settings) = (agent.counters(), agent.spool(), agent.settings());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async {
            let _ = stopped.await;
        }));
        Self {
            counters,
            spool,
            settings,
            stop,
            task,
        }
    }

    /// Stops the agent and checks that it stopped cleanly.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("the agent task ends")
            .expect("agent stops cleanly");
    }
}
