//! N simulated devices in this process, each a real `lastseen_agent::Agent`
//! (its own seq, its spool in a temp dir, its gates, its transport) fed by a
//! replay of an image directory. Devices start one after another over the
//! ramp; at the end their sources stop, and the agents keep sending until
//! their spools are empty.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use image::RgbImage;
use lastseen_agent::config::{Config, Secret, TransportKind};
use lastseen_agent::counters::Counters;
use lastseen_agent::delivery::Delivery;
use lastseen_agent::frame::Frame;
use lastseen_agent::source::{FrameSource, SourceError, files_in_name_order};
use lastseen_agent::spool::SharedSpool;
use lastseen_agent::{Agent, AgentError, Shutdown};
use lastseen_shared::{DeviceId, GateSettings};
use tokio::sync::{mpsc, watch};

use crate::cloud::Endpoints;
use crate::provision::Device;
use crate::scenario::{Scenario, Transport};

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read the replay directory {path}: {message}")]
    Replay { path: String, message: String },
    #[error("cannot create the spool directory: {0}")]
    SpoolDir(std::io::Error),
    #[error("device {index}: {source}")]
    Agent { index: usize, source: AgentError },
}

/// The replayed images, decoded once and shared by every device.
pub struct Replay(Vec<(RgbImage, Vec<u8>)>);

impl Replay {
    /// Every `.jpg`/`.jpeg` of `dir` in name order.
    pub fn load(dir: &Path) -> Result<Arc<Self>, FleetError> {
        let error = |message: String| FleetError::Replay {
            path: dir.display().to_string(),
            message,
        };
        // JPEG only: the bytes go out as they are, like a camera's own JPEG.
        let files = files_in_name_order(dir, &["jpg", "jpeg"]).map_err(|e| error(e.to_string()))?;
        if files.is_empty() {
            return Err(error("no .jpg or .jpeg files".to_owned()));
        }
        let mut frames = Vec::with_capacity(files.len());
        for path in files {
            let jpeg = std::fs::read(&path).map_err(|e| error(e.to_string()))?;
            let image = image::load_from_memory(&jpeg)
                .map_err(|e| error(format!("{}: {e}", path.display())))?
                .into_rgb8();
            frames.push((image, jpeg));
        }
        Ok(Arc::new(Self(frames)))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Replays [`Replay`] in a loop from `next`, stamping each frame with the
/// time it is taken, until `stop_at`; the agent's capture loop paces it.
struct ReplaySource {
    replay: Arc<Replay>,
    next: usize,
    /// Set once every device is built and the run starts.
    stop_at: Arc<OnceLock<Instant>>,
    ended: Arc<AtomicBool>,
}

impl FrameSource for ReplaySource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self
            .stop_at
            .get()
            .is_some_and(|stop_at| Instant::now() >= *stop_at)
        {
            self.ended.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        let (image, jpeg) = &self.replay.0[self.next % self.replay.len()];
        self.next += 1;
        Ok(Some(Frame {
            image: image.clone(),
            captured_at: chrono::Utc::now(),
            jpeg: Some(jpeg.clone()),
        }))
    }
}

/// A device that is connected but sees nothing worth sending.
struct IdleSource {
    ended: Arc<AtomicBool>,
}

impl FrameSource for IdleSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        self.ended.store(true, Ordering::Relaxed);
        Ok(None)
    }
}

/// What the run watches of one device while it runs.
pub struct DeviceHandle {
    pub id: DeviceId,
    /// Index into the provisioned users.
    pub owner: usize,
    pub counters: Arc<Counters>,
    pub spool: Arc<SharedSpool>,
    /// Its source has ended (and will capture nothing more).
    pub ended: Arc<AtomicBool>,
    /// Its agent has started.
    pub started: Arc<AtomicBool>,
}

impl DeviceHandle {
    /// Every captured frame went through the gates, and the spool is empty.
    pub fn settled(&self) -> bool {
        let c = &self.counters;
        let processed = Counters::get(&c.spooled)
            + Counters::get(&c.spool_errors)
            + Counters::get(&c.dropped_light)
            + Counters::get(&c.dropped_change)
            + Counters::get(&c.dropped_person);
        self.ended.load(Ordering::Relaxed)
            && processed >= Counters::get(&c.captured)
            && self.spool.gauge().frames.load(Ordering::Relaxed) == 0
    }

    /// Seqs still in the spool (not confirmed by the cloud).
    pub fn pending(&self) -> Vec<u64> {
        self.spool.seqs_after(None, usize::MAX)
    }
}

/// The running devices.
pub struct Fleet {
    pub devices: Vec<DeviceHandle>,
    /// When the run started (the first device's start), in both clocks.
    pub start: tokio::time::Instant,
    pub started_at: chrono::DateTime<chrono::Utc>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<(usize, Result<(), AgentError>)>,
    _spools: tempfile::TempDir,
}

impl Fleet {
    /// Builds every agent (spools, person models), then starts the run:
    /// device `i` at `start + ramp * i / (devices - 1)`; sources stop at
    /// `start + duration`. Every confirmed frame is reported on `deliveries`
    /// with its device's index.
    pub async fn launch(
        scenario: &Scenario,
        endpoints: &Endpoints,
        devices: &[Device],
        replay: Arc<Replay>,
        deliveries: mpsc::UnboundedSender<(usize, Delivery)>,
    ) -> Result<Self, FleetError> {
        let spools = tempfile::Builder::new()
            .prefix("lastseen-workloads-spools")
            .tempdir()
            .map_err(FleetError::SpoolDir)?;
        let fleet = &scenario.fleet;
        let active = fleet.devices as usize;
        let stop_at = Arc::new(OnceLock::new());
        let (stop, stopped) = Shutdown::new();
        let mut handles = Vec::with_capacity(devices.len());
        let mut agents = Vec::with_capacity(devices.len());
        for (index, device) in devices.iter().enumerate() {
            let idle = index >= active;
            let config = agent_config(
                scenario,
                endpoints,
                device,
                &spools.path().join(format!("device-{index}")),
                idle,
            );
            let ended = Arc::new(AtomicBool::new(false));
            let source: Box<dyn FrameSource> = if idle {
                Box::new(IdleSource {
                    ended: ended.clone(),
                })
            } else {
                Box::new(ReplaySource {
                    replay: replay.clone(),
                    // Each device at its own place in the trace.
                    next: index * 7,
                    stop_at: stop_at.clone(),
                    ended: ended.clone(),
                })
            };
            let (reports, mut reported) = mpsc::unbounded_channel();
            let agent = Agent::build_with_source(config, source)
                .await
                .map_err(|source| FleetError::Agent { index, source })?
                .report_deliveries(reports);
            let forward = deliveries.clone();
            tokio::spawn(async move {
                while let Some(delivery) = reported.recv().await {
                    if forward.send((index, delivery)).is_err() {
                        return;
                    }
                }
            });
            let started = Arc::new(AtomicBool::new(false));
            handles.push(DeviceHandle {
                id: device.id,
                owner: device.owner,
                counters: agent.counters(),
                spool: agent.spool(),
                ended,
                started: started.clone(),
            });
            agents.push((agent, started));
        }
        let start = tokio::time::Instant::now();
        let started_at = chrono::Utc::now();
        let _ = stop_at.set(start.into_std() + Duration::from_secs_f64(scenario.duration_secs));
        let mut tasks = tokio::task::JoinSet::new();
        let count = agents.len();
        for (index, (agent, started)) in agents.into_iter().enumerate() {
            let offset = if count > 1 {
                fleet.ramp_secs * index as f64 / (count - 1) as f64
            } else {
                0.0
            };
            let mut shutdown = stopped.clone();
            tasks.spawn(async move {
                tokio::time::sleep_until(start + Duration::from_secs_f64(offset)).await;
                started.store(true, Ordering::Relaxed);
                let outcome = agent
                    .run(async move {
                        shutdown.wait().await;
                    })
                    .await;
                (index, outcome)
            });
        }
        Ok(Self {
            devices: handles,
            start,
            started_at,
            stop,
            tasks,
            _spools: spools,
        })
    }

    /// Every device has settled (see [`DeviceHandle::settled`]).
    pub fn settled(&self) -> bool {
        self.devices.iter().all(DeviceHandle::settled)
    }

    /// Stops every agent; returns the errors of those that failed.
    pub async fn stop(&mut self) -> Vec<String> {
        let _ = self.stop.send(true);
        let mut errors = Vec::new();
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((index, Err(error))) => errors.push(format!("device {index}: {error}")),
                Err(error) => errors.push(format!("a device task failed: {error}")),
            }
        }
        errors
    }
}

fn agent_config(
    scenario: &Scenario,
    endpoints: &Endpoints,
    device: &Device,
    spool: &Path,
    idle: bool,
) -> Config {
    let fleet = &scenario.fleet;
    let mut config = Config::default();
    config.cloud.device_id = Some(device.id);
    config.cloud.token = Some(Secret::new(device.token.clone()));
    config.cloud.transport = match fleet.transport {
        Transport::Https => TransportKind::Https,
        Transport::Mqtt => TransportKind::Mqtt,
    };
    config.cloud.http_url = endpoints.http_url.clone();
    if let Some(mqtt_url) = &endpoints.mqtt_url {
        config.cloud.mqtt_url = mqtt_url.clone();
    }
    config.cloud.max_in_flight = fleet.max_in_flight;
    // Quicker retries than a real camera's, so a run catches up soon after a restart.
    config.cloud.backoff_initial_ms = 100;
    config.cloud.backoff_max_ms = 2_000;
    config.source.fps = fleet.fps;
    // The same settings the cloud holds for the device (see `provision`).
    config.gates = gate_settings(scenario, idle);
    config.person.model_path = scenario.cloud.model_path.clone();
    config.spool.dir = spool.to_path_buf();
    config.metrics.enabled = false;
    config
}

/// The plan's gates; no heartbeat, so what is sent follows from the gates alone.
pub fn gate_settings(scenario: &Scenario, idle: bool) -> GateSettings {
    let plan = &scenario.fleet.gates;
    let mut gates = GateSettings::default();
    gates.light.enabled = plan.light;
    gates.change.enabled = plan.change;
    // An idle device loads no model: it never has a frame to look at.
    gates.person.enabled = plan.person && !idle;
    gates.heartbeat_secs = 0;
    gates
}
