//! [`LocalCloud`]: the real cloud (`crate::run`) in this process, on free
//! loopback ports, with its data in a temp dir that outlives restarts.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::settings::CloudMqtt;
use crate::StartupError;
use crate::config::Config;
use crate::mqtt::MqttMode;

/// How long a starting cloud may take to answer `/health` (it loads the model).
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// How often the health wait asks.
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// How long one health request may wait, so a cloud that accepts but never
/// answers still meets [`STARTUP_LIMIT`].
const HEALTH_REQUEST_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum LocalCloudError {
    #[error("cannot create the cloud's data dir: {0}")]
    DataDir(std::io::Error),
    #[error("cannot reserve a port for the embedded MQTT broker: {0}")]
    Port(std::io::Error),
    #[error("the cloud failed to start: {0}")]
    Startup(#[from] StartupError),
    #[error("the cloud stopped before it answered /api/v1/health")]
    Exited,
    #[error("the cloud did not answer /api/v1/health within {0:?}")]
    NotUp(Duration),
    #[error("the cloud's task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// How to stop the running node, and its outcome.
struct Running {
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), StartupError>>,
}

/// A cloud node in this process. Its address, broker port, data and settings
/// outlive [`LocalCloud::stop`] and [`LocalCloud::restart`]; dropping it
/// stops the node.
pub struct LocalCloud {
    config: Config,
    /// Kept for the node's lifetime: `config.data_dir` points into it.
    data_dir: tempfile::TempDir,
    running: Option<Running>,
    /// The health wait's client, kept (with its pooled connection) for the caller.
    client: reqwest::Client,
}

impl LocalCloud {
    /// Starts a node with [`Config::for_tests`] in a fresh temp dir, taking
    /// MQTT through `mqtt`, with the changes of `customize`; returns once it
    /// answers `/api/v1/health`.
    pub async fn start(
        mqtt: CloudMqtt,
        customize: impl FnOnce(&mut Config),
    ) -> Result<Self, LocalCloudError> {
        let data_dir = tempfile::Builder::new()
            .prefix("lastseen-cloud")
            .tempdir()
            .map_err(LocalCloudError::DataDir)?;
        let mut config = Config::for_tests(data_dir.path());
        mqtt.apply(&mut config).map_err(LocalCloudError::Port)?;
        customize(&mut config);
        crate::init_logs(&config.log);
        let mut cloud = Self {
            config,
            data_dir,
            running: None,
            client: reqwest::Client::new(),
        };
        cloud.restart().await?;
        Ok(cloud)
    }

    /// Starts the node again (stopping it first if it runs), on the same
    /// address with the same data and settings, and waits until it answers.
    pub async fn restart(&mut self) -> Result<(), LocalCloudError> {
        self.stop().await?;
        let listener = crate::bind(self.config.bind).await?;
        self.config.bind = listener.local_addr().map_err(StartupError::Serve)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(crate::run(self.config.clone(), listener, async {
            let _ = stopped.await;
        }));
        self.running = Some(Running { stop, server });
        self.wait_until_healthy().await
    }

    /// Stops the node (finishing the requests in flight) and waits until its
    /// port is closed; the node's error if it failed.
    pub async fn stop(&mut self) -> Result<(), LocalCloudError> {
        let Some(Running { stop, server }) = self.running.take() else {
            return Ok(());
        };
        let _ = stop.send(());
        Ok(server.await??)
    }

    /// Polls `/api/v1/health` until it answers, the node ends (its own error
    /// then says why), or [`STARTUP_LIMIT`] passes.
    async fn wait_until_healthy(&mut self) -> Result<(), LocalCloudError> {
        let health = self.url("/api/v1/health");
        let deadline = tokio::time::Instant::now() + STARTUP_LIMIT;
        loop {
            if self
                .running
                .as_ref()
                .is_none_or(|running| running.server.is_finished())
            {
                self.stop().await?;
                return Err(LocalCloudError::Exited);
            }
            let answer = self
                .client
                .get(&health)
                .timeout(HEALTH_REQUEST_LIMIT)
                .send()
                .await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LocalCloudError::NotUp(STARTUP_LIMIT));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    /// The client that waited for the node: it keeps its connection open
    /// from startup, which tests that count connections rely on.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The settings of the node, as it runs now.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The settings of the next [`LocalCloud::restart`].
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The HTTP address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.config.bind
    }

    /// The base URL, without `/api/v1`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.config.bind)
    }

    /// The URL of `path` (`/api/v1/...`, `/metrics`) on this node.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.config.bind)
    }

    /// Where devices connect for MQTT (`mqtts://` when the embedded broker
    /// has a certificate), unless the node takes none.
    pub fn mqtt_url(&self) -> Option<String> {
        let mqtt = &self.config.mqtt;
        match mqtt.mode {
            MqttMode::Off => None,
            MqttMode::Embedded if mqtt.tls_cert.is_some() => {
                Some(format!("mqtts://{}", mqtt.listen))
            }
            MqttMode::Embedded => Some(format!("mqtt://{}", mqtt.listen)),
            MqttMode::External => self.config.mqtt.url.clone(),
        }
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
        }
    }
}
