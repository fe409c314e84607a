//! What ingest admits: image sizes, each device's and owner's share of the
//! detectors, storage quotas, clock checks, and unchanged scenes.

use std::time::Duration;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

use super::{AdmissionSettings, Budget, UnchangedImages};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestConfig {
    /// Largest decoded frame, width times height.
    pub max_image_pixels: u64,
    /// Fair share of the detectors: image pixels (width × height from the
    /// JPEG header) admitted per second per device, and per owner for all
    /// their devices together, with bursts up to the `_burst_pixels` values;
    /// past it 503 `overloaded` with the bucket's `Retry-After`.
    pub admit_device_pixels_per_sec: u64,
    pub admit_device_burst_pixels: u64,
    pub admit_owner_pixels_per_sec: u64,
    pub admit_owner_burst_pixels: u64,
    /// The least a frame is charged, whatever its size: inference costs the
    /// same for a tiny frame as for a large one.
    pub admit_min_frame_pixels: u64,
    /// Hard ceiling on the bytes of one user's images, checked at ingest: a
    /// frame that would go past it gets 507 `quota_exceeded` and is kept by
    /// the device. Unset is no quota. Retention trims between sweeps; this
    /// holds in between.
    pub user_quota_bytes: Option<u64>,
    /// How long a user's usage, read from the store, is trusted before it is
    /// read again (deletions show after at most this long).
    pub user_quota_refresh_secs: u64,
    /// A frame whose `captured_at` is further than this from the time it was
    /// received is flagged `clock_skewed` (the device clock is probably wrong).
    pub clock_skew_flag_secs: u64,
    /// A frame whose detections match the device's previous image (same
    /// labels, each box within `unchanged_min_iou`) keeps its rows but points
    /// at that image instead of storing its own.
    pub skip_unchanged_images: bool,
    /// Smallest IoU between a box and its match for the scene to count as unchanged.
    pub unchanged_min_iou: f32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            // A 12 Mpx camera (4056 x 3040, 4608 x 2592) and 4K UHD fit.
            max_image_pixels: 4096 * 3072,
            // About 5 fps of 1440p per device, 30 1080p frames per second
            // per account; bursts of 4 and 8 frames of the largest size.
            admit_device_pixels_per_sec: 20_000_000,
            admit_device_burst_pixels: 4 * 4096 * 3072,
            admit_owner_pixels_per_sec: 64_000_000,
            admit_owner_burst_pixels: 8 * 4096 * 3072,
            admit_min_frame_pixels: 1_000_000,
            user_quota_bytes: None,
            user_quota_refresh_secs: 60,
            clock_skew_flag_secs: 24 * 3600,
            skip_unchanged_images: true,
            unchanged_min_iou: 0.9,
        }
    }
}

impl IngestConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.max_image_pixels >= 64 * 64,
            "max_image_pixels must be at least 4096",
        );
        problems.check(
            self.admit_device_pixels_per_sec >= 1 && self.admit_owner_pixels_per_sec >= 1,
            "admit_device_pixels_per_sec and admit_owner_pixels_per_sec must be at least 1",
        );
        problems.check(
            self.admit_device_burst_pixels >= self.max_image_pixels
                && self.admit_owner_burst_pixels >= self.max_image_pixels,
            "admit_device_burst_pixels and admit_owner_burst_pixels must be at least max_image_pixels (else the largest frames could never pass)",
        );
        problems.check(
            self.admit_min_frame_pixels <= self.max_image_pixels,
            "admit_min_frame_pixels must be at most max_image_pixels",
        );
        problems.check(
            self.user_quota_bytes
                .is_none_or(|bytes| (1..=i64::MAX as u64).contains(&bytes)),
            "user_quota_bytes must be between 1 and 2^63-1 (or unset for no quota)",
        );
        problems.check(
            self.user_quota_refresh_secs >= 1,
            "user_quota_refresh_secs must be at least 1",
        );
        problems.check(
            self.clock_skew_flag_secs >= 60,
            "clock_skew_flag_secs must be at least 60",
        );
        problems.check(
            self.unchanged_min_iou > 0.0 && self.unchanged_min_iou <= 1.0,
            "unchanged_min_iou must be in (0, 1]",
        );
    }

    pub fn admission(&self) -> AdmissionSettings {
        AdmissionSettings {
            device: Budget {
                pixels_per_sec: self.admit_device_pixels_per_sec,
                burst_pixels: self.admit_device_burst_pixels,
            },
            owner: Budget {
                pixels_per_sec: self.admit_owner_pixels_per_sec,
                burst_pixels: self.admit_owner_burst_pixels,
            },
            min_frame_pixels: self.admit_min_frame_pixels,
            max_image_pixels: self.max_image_pixels,
            user_quota_bytes: self.user_quota_bytes,
            quota_refresh: Duration::from_secs(self.user_quota_refresh_secs),
            clock_skew_flag: Duration::from_secs(self.clock_skew_flag_secs),
        }
    }

    pub fn unchanged_images(&self) -> UnchangedImages {
        UnchangedImages {
            enabled: self.skip_unchanged_images,
            min_iou: self.unchanged_min_iou,
        }
    }
}
