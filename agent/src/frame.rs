//! One captured frame as it moves through the pipeline.

use chrono::{DateTime, Utc};
use image::RgbImage;
use lastseen_shared::Measurement;

/// A decoded frame, with the source's own JPEG when it delivered one (so an
/// unscaled frame can be sent without a second, lossy encode).
#[derive(Clone, Debug)]
pub struct Frame {
    pub image: RgbImage,
    pub captured_at: DateTime<Utc>,
    pub jpeg: Option<Vec<u8>>,
}

/// A frame that passed the gates, encoded, on its way to the spool.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    pub captured_at: DateTime<Utc>,
    pub jpeg: Vec<u8>,
    /// What the gates measured (recorded by the cloud, never needed to decide).
    pub measurements: Vec<Measurement>,
}
