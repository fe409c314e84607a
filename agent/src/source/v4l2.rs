//! A V4L2 camera (`/dev/videoN`) delivering MJPEG, through `rscam`, which
//! issues the ioctls itself (no libclang/bindgen at build time, unlike `v4l`).
//! Each MJPEG frame is a JPEG: it is decoded for the gates and, when no
//! scaling is needed, sent as it came.

use super::{FrameSource, SourceError, decode};
use crate::config::SourceConfig;
use crate::frame::Frame;

pub(super) struct V4l2Source {
    camera: rscam::Camera,
}

impl V4l2Source {
    pub(super) fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let device = config.device.display().to_string();
        let mut camera = rscam::Camera::new(&device)
            .map_err(|e| SourceError::Camera(format!("{device}: {e}")))?;
        // Ask the driver for a bit more than the capture rate; the capture
        // loop takes frames at `source.fps`.
        let rate = config.fps.ceil().clamp(1.0, 60.0) as u32;
        camera
            .start(&rscam::Config {
                interval: (1, rate),
                resolution: (config.width, config.height),
                format: b"MJPG",
                ..rscam::Config::default()
            })
            .map_err(|e| {
                SourceError::Camera(format!("{device}: cannot start MJPEG capture: {e}"))
            })?;
        Ok(Self { camera })
    }
}

impl FrameSource for V4l2Source {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let frame = self
            .camera
            .capture()
            .map_err(|e| SourceError::Camera(e.to_string()))?;
        decode(frame.to_vec()).map(Some)
    }
}
