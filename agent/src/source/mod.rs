//! Where frames come from, chosen by `source.kind`: a directory replayed at a
//! set fps, an HTTP(S) snapshot URL polled at a set fps, a V4L2 camera (with
//! the `camera` feature) or a synthetic scene for tests.
//!
//! A source is a blocking [`FrameSource`]; [`capture`] runs it on a thread of
//! its own at the configured rate and pushes frames into a bounded channel
//! (the bound is the backpressure: a slow pipeline slows the capture).

mod dir;
mod http;
mod synthetic;
#[cfg(feature = "camera")]
mod v4l2;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use dir::{DirSource, files_in_name_order};
pub use http::HttpSource;
pub use synthetic::SyntheticSource;
use tokio::sync::mpsc;

use crate::config::{SourceConfig, SourceKind};
use crate::counters::Counters;
use crate::frame::Frame;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {message}")]
    File { path: String, message: String },
    #[error("snapshot request failed: {0}")]
    Http(String),
    #[error("the snapshot is larger than source.max_snapshot_bytes ({limit} bytes)")]
    TooLarge { limit: u64 },
    #[error("cannot decode the image: {0}")]
    Decode(#[from] image::ImageError),
    #[error("camera: {0}")]
    Camera(String),
    #[error("invalid source configuration: {0}")]
    Config(String),
}

/// Something that produces frames, one call at a time.
pub trait FrameSource: Send {
    /// Blocks until the next frame; `Ok(None)` when the source has ended
    /// (a directory replayed without `loop`, a synthetic run of `max_frames`).
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;
}

/// Builds the configured source. `runtime` serves the HTTP source's requests.
pub fn open(
    config: &SourceConfig,
    runtime: tokio::runtime::Handle,
) -> Result<Box<dyn FrameSource>, SourceError> {
    Ok(match config.kind {
        SourceKind::Dir => Box::new(DirSource::open(config)?),
        SourceKind::Http => Box::new(HttpSource::new(config, runtime)?),
        SourceKind::Synthetic => Box::new(SyntheticSource::new(config)),
        #[cfg(feature = "camera")]
        SourceKind::V4l2 => Box::new(v4l2::V4l2Source::open(config)?),
        #[cfg(not(feature = "camera"))]
        SourceKind::V4l2 => {
            return Err(SourceError::Config(
                "this agent was built without the `camera` feature (V4L2)".to_owned(),
            ));
        }
    })
}

/// Decodes image bytes; a JPEG keeps its bytes so it can be sent as it came.
pub(crate) fn decode(bytes: Vec<u8>) -> Result<Frame, SourceError> {
    let image = image::load_from_memory(&bytes)?.into_rgb8();
    let jpeg = bytes.starts_with(&[0xFF, 0xD8]).then_some(bytes);
    Ok(Frame {
        image,
        captured_at: chrono::Utc::now(),
        jpeg,
    })
}

/// Runs `source` at `fps` until it ends, `stop` is set or the receiver is gone.
pub fn capture(
    mut source: Box<dyn FrameSource>,
    fps: f64,
    frames: mpsc::Sender<Frame>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut next_at = Instant::now();
    let mut failures = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next_at > now {
            // Short naps, so a stop request is seen within 100 ms.
            std::thread::sleep((next_at - now).min(Duration::from_millis(100)));
            continue;
        }
        // A late frame does not make the next ones come in a burst.
        next_at = (next_at + period).max(now);
        match source.next_frame() {
            Ok(Some(frame)) => {
                failures = 0;
                Counters::inc(&counters.captured);
                if frames.blocking_send(frame).is_err() {
                    break;
                }
            }
            Ok(None) => {
                tracing::info!("source ended");
                break;
            }
            Err(error) => {
                Counters::inc(&counters.capture_errors);
                if matches!(error, SourceError::TooLarge { .. }) {
                    Counters::inc(&counters.snapshots_too_large);
                }
                failures = failures.saturating_add(1);
                // Logged at the first failure and then now and then, not at every frame.
                if failures.is_power_of_two() {
                    tracing::warn!(%error, failures, "capture failed");
                }
            }
        }
    }
}
