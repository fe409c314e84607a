//! lastseen edge agent: capture, local gates, on-disk spool, MQTT/HTTPS.
//!
//! The path of one frame, one module per stage joined by bounded channels:
//! `source/` (capture thread) -> `gate/` (light, change, person, heartbeat)
//! -> `encode` -> `spool/` (durable before it counts) -> `transport/` (HTTPS
//! or MQTT; deleted from the spool only once the cloud confirmed it).
//! Around them: `config`, `counters` (+ `metrics`), remote gate settings
//! (a `watch` channel fed by the transport) and the status message.
//!
//! A load tool can run many agents in one process: build each with
//! [`Agent::build`], read its [`Agent::counters`], and [`Agent::run`] it until
//! its shutdown future completes.

pub mod cli;
pub mod config;
pub mod counters;
pub mod delivery;
pub mod encode;
pub mod frame;
pub mod gate;
mod metrics;
pub mod pipeline;
pub mod source;
pub mod spool;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lastseen_shared::GateSettings;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use config::{Config, TransportKind};
use counters::Counters;
use delivery::{Delivery, DeliveryReports};
use source::FrameSource;
use spool::{SharedSpool, Spool, SpoolGauge};
use transport::{Context, Token};

/// Frames waiting between capture and the gates; small, so a slow gate
/// slows the capture instead of queueing stale frames.
const CAPTURE_QUEUE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("cannot open the spool: {0}")]
    Spool(#[from] spool::SpoolError),
    #[error("cannot open the source: {0}")]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Https(#[from] transport::https::HttpsError),
    #[error(transparent)]
    Mqtt(#[from] transport::mqtt::MqttError),
    #[error("the person gate is enabled but unavailable: {0}")]
    Person(#[from] gate::person::PersonError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "cannot serve metrics on {addr} ({source}); set metrics.listen / LASTSEEN_AGENT_METRICS__LISTEN to a free address"
    )]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Completes once shutdown was asked for; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    pub async fn wait(&mut self) {
        // A dropped sender means nobody can ask any more: stop as well.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// One agent, ready to run.
pub struct Agent {
    config: Config,
    counters: Arc<Counters>,
    spool: Arc<SharedSpool>,
    settings: watch::Sender<GateSettings>,
    token: Arc<Token>,
    source: Box<dyn FrameSource>,
    gates: gate::Gates,
    metrics: Option<TcpListener>,
    deliveries: DeliveryReports,
}

impl Agent {
    /// Validates the config, opens the spool and the source, loads the person
    /// model if the person gate is on, and binds the metrics listener.
    pub async fn build(config: Config) -> Result<Self, AgentError> {
        config.validate()?;
        let source = source::open(&config.source, tokio::runtime::Handle::current())?;
        Self::build_with_source(config, source).await
    }

    /// Like [`Agent::build`], with frames from `source` instead of the configured one.
    pub async fn build_with_source(
        config: Config,
        source: Box<dyn FrameSource>,
    ) -> Result<Self, AgentError> {
        config.validate()?;
        let counters = Arc::new(Counters::default());
        let spool_config = config.spool.clone();
        let spool_counters = counters.clone();
        let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_config, spool_counters))
            .await
            .map_err(|_| spool::SpoolError::Stopped)??;
        let spool = SharedSpool::new(spool);
        let token = Arc::new(Token::load(&config.cloud)?);
        let mut gates = gate::Gates::new(
            config.tuning.clone(),
            config.person.clone(),
            counters.clone(),
        );
        if config.gates.person.enabled {
            gates.preload_person()?;
        }
        let metrics = if config.metrics.enabled {
            let addr = config.metrics.listen;
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| AgentError::Metrics { addr, source })?,
            )
        } else {
            None
        };
        let (settings, _) = watch::channel(config.gates.clone());
        Ok(Self {
            config,
            counters,
            spool,
            settings,
            token,
            source,
            gates,
            metrics,
            deliveries: DeliveryReports::default(),
        })
    }

    /// Sends a [`Delivery`] for every frame that leaves the spool because
    /// the cloud stored or refused it (see [`delivery`]).
    pub fn report_deliveries(mut self, sender: mpsc::UnboundedSender<Delivery>) -> Self {
        self.deliveries = DeliveryReports::to(sender);
        self
    }

    /// The running totals, readable while the agent runs.
    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Frames and bytes waiting in the spool.
    pub fn spool_gauge(&self) -> &SpoolGauge {
        self.spool.gauge()
    }

    /// Shares the spool gauge beyond the agent's lifetime.
    pub fn spool(&self) -> Arc<SharedSpool> {
        self.spool.clone()
    }

    /// The gate settings in force (they change when the cloud sends new ones).
    pub fn settings(&self) -> watch::Receiver<GateSettings> {
        self.settings.subscribe()
    }

    /// Where `/metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Captures, filters, spools and sends until `shutdown` completes. The
    /// spool is durable at every step, so stopping loses no spooled frame.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AgentError> {
        let device = self.config.cloud.device_id.ok_or_else(|| {
            config::ConfigError::Invalid(vec!["cloud.device_id is required".into()])
        })?;
        let (stop_tx, stop) = Shutdown::new();
        let ctx = Context {
            device,
            cloud: self.config.cloud.clone(),
            token: self.token.clone(),
            spool: self.spool.clone(),
            counters: self.counters.clone(),
            settings: self.settings.clone(),
            deliveries: self.deliveries.clone(),
        };
        let mut tasks = tokio::task::JoinSet::new();
        match self.config.cloud.transport {
            TransportKind::Https => {
                let https = Arc::new(transport::https::Https::new(ctx)?);
                let (a, b, c) = (https.clone(), https.clone(), https);
                let (s1, s2, s3) = (stop.clone(), stop.clone(), stop.clone());
                tasks.spawn(async move { a.send_frames(s1).await });
                tasks.spawn(async move { b.poll_settings(s2).await });
                tasks.spawn(async move { c.post_status(s3).await });
            }
            TransportKind::Mqtt => {
                let mqtt = transport::mqtt::Mqtt::new(ctx)?;
                let s = stop.clone();
                tasks.spawn(async move { mqtt.run(s).await });
            }
        }
        if let Some(listener) = self.metrics {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving /metrics");
            }
            tasks.spawn(metrics::serve(
                listener,
                self.counters.clone(),
                self.spool.clone(),
                stop.clone(),
            ));
        }

        let (frames_tx, frames_rx) = mpsc::channel(CAPTURE_QUEUE);
        let capture_stop = Arc::new(AtomicBool::new(false));
        // Also stops the threads when this future is dropped instead of shut down.
        let _stop_threads = StopOnDrop(capture_stop.clone());
        let capture = {
            let stop = capture_stop.clone();
            let counters = self.counters.clone();
            let fps = self.config.source.fps;
            let source = self.source;
            std::thread::Builder::new()
                .name("agent-capture".into())
                .spawn(move || source::capture(source, fps, frames_tx, counters, stop))
                .map_err(AgentError::Thread)?
        };
        let stage = pipeline::Stage {
            gates: self.gates,
            encoder: encode::Encoder::new(self.config.encode.clone()),
            spool: self.spool.clone(),
            settings: self.settings.subscribe(),
            counters: self.counters.clone(),
        };
        let process = std::thread::Builder::new()
            .name("agent-gates".into())
            .spawn(move || stage.run(frames_rx))
            .map_err(AgentError::Thread)?;
        tracing::info!(
            %device,
            transport = ?self.config.cloud.transport,
            source = ?self.config.source.kind,
            "lastseen agent running"
        );

        shutdown.await;
        tracing::info!("agent stopping");
        capture_stop.store(true, Ordering::Relaxed);
        let _ = stop_tx.send(true);
        // The threads end within a frame: capture sees the flag, the gates
        // thread sees the channel close behind it.
        let joined = tokio::task::spawn_blocking(move || {
            for thread in [capture, process] {
                let _ = thread.join();
            }
        });
        let _ = joined.await;
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
