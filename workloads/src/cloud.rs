//! The cloud under test: an external one at a URL, or a "managed" one that
//! this process runs itself with `lastseen_cloud::run` on free ports (HTTP,
//! and the embedded MQTT broker when devices use MQTT), with its data in a
//! temp dir. A managed cloud can be stopped and started again on the same
//! port and data (the restart scenario).

use std::net::SocketAddr;
use std::time::Duration;

use lastseen_cloud::config::{Config, MqttMode, Secret};
use tokio::sync::oneshot;

use crate::scenario::{Scenario, Transport};

/// How long a starting cloud may take to answer `/health`.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("the cloud failed to start: {0}")]
    Startup(#[from] lastseen_cloud::StartupError),
    #[error("cannot reserve a port for the embedded MQTT broker: {0}")]
    Port(#[from] lastseen_cloud::mqtt::MqttError),
    #[error("cannot create the cloud's data dir: {0}")]
    DataDir(std::io::Error),
    #[error("the cloud did not answer /api/v1/health within {0:?}")]
    NotUp(Duration),
    #[error("the cloud stopped with an error: {0}")]
    Stopped(String),
}

/// Where the devices and users reach the cloud.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Base URL, no `/api/v1`.
    pub http_url: String,
    pub mqtt_url: Option<String>,
}

pub enum CloudUnderTest {
    External(Endpoints),
    Managed(Box<ManagedCloud>),
}

impl CloudUnderTest {
    pub async fn open(scenario: &Scenario) -> Result<Self, CloudError> {
        match &scenario.cloud.url {
            Some(url) => Ok(Self::External(Endpoints {
                http_url: url.trim_end_matches('/').to_owned(),
                mqtt_url: scenario.cloud.mqtt_url.clone(),
            })),
            None => Ok(Self::Managed(Box::new(
                ManagedCloud::start(scenario).await?,
            ))),
        }
    }

    pub fn endpoints(&self) -> Endpoints {
        match self {
            Self::External(endpoints) => endpoints.clone(),
            Self::Managed(cloud) => cloud.endpoints(),
        }
    }
}

/// How to stop the running node, and its outcome.
type RunningNode = (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
);

/// A cloud node in this process; its data dir outlives restarts.
pub struct ManagedCloud {
    config: Config,
    _data_dir: tempfile::TempDir,
    running: Option<RunningNode>,
}

impl ManagedCloud {
    pub async fn start(scenario: &Scenario) -> Result<Self, CloudError> {
        let data_dir = tempfile::Builder::new()
            .prefix("lastseen-workloads-cloud")
            .tempdir()
            .map_err(CloudError::DataDir)?;
        let plan = &scenario.cloud;
        let mqtt = scenario.fleet.transport == Transport::Mqtt;
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.path().to_path_buf(),
            database_url: plan.database_url.clone(),
            model_path: plan.model_path.clone(),
            detect_workers: plan.detect_workers,
            detect_threads: plan.detect_threads,
            queue_depth: plan.queue_depth,
            // Every provisioned device belongs to a user; the plan bounds them.
            max_devices_per_user: scenario.fleet.devices_per_user.max(1),
            // One key for the run, so tokens outlive a restart.
            jwt_secret: Some(Secret::new(format!(
                "workloads-{}-{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))),
            // Embedded broker on a free port: this machine's Mosquitto may hold 1883.
            mqtt: if mqtt {
                MqttMode::Embedded
            } else {
                MqttMode::Off
            },
            mqtt_listen: if mqtt {
                lastseen_cloud::mqtt::free_loopback_port()?
            } else {
                Config::default().mqtt_listen
            },
            log: plan.log.clone(),
            ..Config::default()
        };
        lastseen_cloud::init_logs(&config.log);
        let mut cloud = Self {
            config,
            _data_dir: data_dir,
            running: None,
        };
        cloud.resume().await?;
        Ok(cloud)
    }

    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            http_url: format!("http://{}", self.config.bind),
            mqtt_url: (self.config.mqtt == MqttMode::Embedded)
                .then(|| format!("mqtt://{}", self.config.mqtt_listen)),
        }
    }

    /// Starts the node (again, on the same address and data) and waits until it answers.
    pub async fn resume(&mut self) -> Result<(), CloudError> {
        let listener = lastseen_cloud::bind(self.config.bind).await?;
        self.config.bind = listener
            .local_addr()
            .map_err(lastseen_cloud::StartupError::Serve)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let config = self.config.clone();
        let server = tokio::spawn(async move {
            lastseen_cloud::run(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        self.running = Some((stop, server));
        let client = reqwest::Client::new();
        let health = format!("http://{}/api/v1/health", self.config.bind);
        let deadline = tokio::time::Instant::now() + STARTUP_LIMIT;
        while tokio::time::Instant::now() < deadline {
            if let Some((_, server)) = &self.running
                && server.is_finished()
            {
                return Err(self
                    .stop()
                    .await
                    .err()
                    .unwrap_or(CloudError::NotUp(STARTUP_LIMIT)));
            }
            if let Ok(response) = client.get(&health).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(CloudError::NotUp(STARTUP_LIMIT))
    }

    /// Stops the node (finishing the requests in flight) and waits until its port is closed.
    pub async fn stop(&mut self) -> Result<(), CloudError> {
        let Some((stop, server)) = self.running.take() else {
            return Ok(());
        };
        let _ = stop.send(());
        match server.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(CloudError::Stopped(error)),
            Err(error) => Err(CloudError::Stopped(error.to_string())),
        }
    }
}
