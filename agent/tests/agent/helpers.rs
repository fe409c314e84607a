//! The real cloud in-process (`lastseen_cloud::testkit::LocalCloud`,
//! stoppable and restartable on the same port and data), a user and a device
//! on it, and agent configs pointing at it.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lastseen_agent::config::{Config, SourceKind, TransportKind};
use lastseen_agent::counters::Counters;
use lastseen_agent::spool::SharedSpool;
use lastseen_agent::{Agent, AgentError};
use lastseen_cloud::store::{FrameStore, SqliteStore};
use lastseen_cloud::testkit::{Api, LocalCloud, PASSWORD};
use lastseen_shared::{DeviceId, GateSettings};
use tokio::sync::{oneshot, watch};

pub(crate) use lastseen_cloud::testkit::{CloudMqtt, trace_dir};

/// A cloud node; its data dir and configuration outlive restarts.
pub(crate) struct Cloud {
    pub(crate) addr: SocketAddr,
    node: LocalCloud,
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
        let node = LocalCloud::start(mqtt, customize)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Self {
            addr: node.addr(),
            node,
        }
    }

    /// Starts the node again, on the same address with the same data.
    pub(crate) async fn restart(&mut self) {
        self.node.restart().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Changes the settings of the next [`Cloud::restart`].
    pub(crate) fn reconfigure(
        &mut self,
        customize: impl FnOnce(&mut lastseen_cloud::config::Config),
    ) {
        customize(self.node.config_mut());
    }

    /// Stops the node and waits until it has closed its port.
    pub(crate) async fn stop(&mut self) {
        self.node.stop().await.expect("the cloud stops cleanly");
    }

    pub(crate) fn url(&self, path: &str) -> String {
        self.node.url(path)
    }

    /// Where devices connect for MQTT, unless the node takes none.
    pub(crate) fn mqtt_url(&self) -> Option<String> {
        self.node.mqtt_url()
    }

    /// Registers a user and a device; returns `(user token, device id, device token)`.
    pub(crate) async fn device(&self, username: &str) -> (String, DeviceId, String) {
        let api = Api::new(&self.node.http_url()).expect("an HTTP client");
        let user = api.user(username, PASSWORD).await;
        let user = user.unwrap_or_else(|e| panic!("{e}"));
        let device = api.device(&user.token, "hall camera", None).await;
        let (id, token) = device.unwrap_or_else(|e| panic!("{e}"));
        (user.token, id, token)
    }

    /// The cloud's own store, read beside the running node.
    pub(crate) async fn store(&self) -> SqliteStore {
        let path = self.node.data_dir().join("lastseen.db");
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
    config.cloud.http_url = cloud.node.http_url();
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
