//! The bounded detection queue and its worker threads.
//!
//! The queue bound is the service's backpressure: [`DetectorPool::try_submit`]
//! never waits, so a full queue becomes a 503 (HTTP) or a withheld ack (MQTT)
//! and the device keeps the frame for later.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use tokio::sync::oneshot;

use super::jpeg;
use super::model::{Analysis, load_model, load_runtime};
use super::{DetectConfig, DetectError, YoloxSession};
use crate::metrics::Histogram;

/// The queue was full; the caller should ask the client to retry later.
#[derive(Debug, thiserror::Error)]
#[error("the detection queue is full")]
pub struct QueueFull;

struct Job {
    jpeg: Bytes,
    reply: oneshot::Sender<Result<Analysis, DetectError>>,
}

pub struct DetectorPool {
    jobs: Sender<Job>,
    capacity: usize,
    latency: Arc<Histogram>,
}

impl DetectorPool {
    /// Loads one session per worker before returning, so a bad model path or
    /// a missing runtime fails at startup rather than on the first frame.
    /// Larger images than `max_image_pixels` are refused before decoding.
    pub fn start(settings: &DetectConfig, max_image_pixels: u64) -> Result<Self, DetectError> {
        let runtime = if settings.enabled {
            Some(load_runtime(settings.onnxruntime_lib.as_deref())?)
        } else {
            tracing::warn!("detection is off (detect_enabled = false): frames get no detections");
            None
        };
        let (jobs, queue) = bounded(settings.queue_depth);
        let latency = Arc::new(Histogram::new());
        for index in 0..settings.workers {
            let model = runtime
                .as_ref()
                .map(|runtime| {
                    load_model(
                        runtime,
                        &settings.model_path,
                        settings.yolox(),
                        settings.threads,
                    )
                })
                .transpose()?;
            let queue = queue.clone();
            let max_pixels = max_image_pixels;
            let latency = latency.clone();
            thread::Builder::new()
                .name(format!("detect-{index}"))
                .spawn(move || work(model, queue, max_pixels, &latency))
                .map_err(|e| {
                    DetectError::Inference(format!("cannot start a detector thread: {e}"))
                })?;
        }
        Ok(Self {
            jobs,
            capacity: settings.queue_depth,
            latency,
        })
    }

    /// Queues a JPEG for decoding and detection without waiting for room.
    pub fn try_submit(
        &self,
        jpeg: Bytes,
    ) -> Result<oneshot::Receiver<Result<Analysis, DetectError>>, QueueFull> {
        let (reply, answer) = oneshot::channel();
        match self.jobs.try_send(Job { jpeg, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(QueueFull),
        }
    }

    /// Frames waiting for a worker.
    pub fn queue_len(&self) -> usize {
        self.jobs.len()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Decode plus inference time of each frame, queue wait excluded.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}

/// Runs until every sender is gone, i.e. until the pool is dropped.
fn work(
    mut model: Option<YoloxSession>,
    queue: Receiver<Job>,
    max_pixels: u64,
    latency: &Histogram,
) {
    while let Ok(job) = queue.recv() {
        if job.reply.is_closed() {
            // The client gave up; it will resend, and nothing was stored.
            continue;
        }
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            analyse(model.as_mut(), &job.jpeg, max_pixels)
        }))
        .unwrap_or_else(|_| {
            Err(DetectError::Inference(
                "the detector panicked on this frame".to_owned(),
            ))
        });
        latency.observe(started.elapsed());
        if let Err(error) = &outcome {
            tracing::debug!(%error, "frame not analysed");
        }
        let _ = job.reply.send(outcome);
    }
}

fn analyse(
    model: Option<&mut YoloxSession>,
    bytes: &[u8],
    max_pixels: u64,
) -> Result<Analysis, DetectError> {
    let Some(model) = model else {
        let (width, height) = jpeg::dimensions(bytes, max_pixels)?;
        return Ok(Analysis {
            width,
            height,
            detections: Vec::new(),
        });
    };
    let image = jpeg::decode(bytes, max_pixels)?;
    let detections = model.detect(&image)?;
    Ok(Analysis {
        width: image.width(),
        height: image.height(),
        detections,
    })
}
