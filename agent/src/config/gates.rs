//! `[tuning]` and `[person]`: the gates' local knobs, which the cloud's
//! remote settings do not carry.

use std::path::PathBuf;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

/// Local knobs of the gates that the cloud does not set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GateTuning {
    /// Height of the grayscale copy the light and change gates work on.
    pub thumb_height: u32,
    /// Luma at or below this counts as clipped black, at or above `clip_high` as clipped white.
    pub clip_low: u8,
    pub clip_high: u8,
    /// How fast the background follows the scene, per frame (0-1).
    pub learning_rate: f32,
    /// A pixel changes only when its difference exceeds this many times its
    /// own usual noise (as well as `gates.change.pixel_threshold`).
    pub noise_factor: f32,
    /// A changed pixel counts only with at least this many changed neighbours
    /// out of 8, so isolated noise never adds up.
    pub min_neighbours: u8,
    /// When more than this fraction of the picture changed at once (lights,
    /// camera moved), the background is rebuilt from the new frame.
    pub recalibrate_fraction: f32,
    /// Frames after a rebuild during which the background learns fast.
    pub calibration_frames: u32,
}

impl Default for GateTuning {
    fn default() -> Self {
        Self {
            thumb_height: 100,
            clip_low: 8,
            clip_high: 247,
            learning_rate: 0.05,
            noise_factor: 4.0,
            min_neighbours: 2,
            recalibrate_fraction: 0.7,
            calibration_frames: 10,
        }
    }
}

/// The on-device detector behind the person gate (`gates.person.enabled`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersonModel {
    /// YOLOX model file (ONNX).
    pub model_path: PathBuf,
    /// `libonnxruntime.so`; when unset: `ORT_DYLIB_PATH`, a `.venv` in the
    /// working directory or its parents (or the executable's), system paths.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Square model input side (a multiple of 32).
    pub input_size: u32,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for PersonModel {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("../shared/models/yolox_nano.onnx"),
            onnxruntime_lib: None,
            input_size: 416,
            threads: 1,
        }
    }
}

impl GateTuning {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(
            (16..=1080).contains(&self.thumb_height),
            "tuning.thumb_height must be within 16-1080",
        );
        problems.check(
            self.clip_low < self.clip_high,
            "tuning.clip_low must be below tuning.clip_high",
        );
        problems.check(
            self.learning_rate > 0.0 && self.learning_rate <= 1.0,
            "tuning.learning_rate must be in (0, 1]",
        );
        problems.check(
            self.noise_factor.is_finite() && self.noise_factor >= 0.0,
            "tuning.noise_factor must be 0 or more",
        );
        problems.check(
            self.min_neighbours <= 8,
            "tuning.min_neighbours must be at most 8",
        );
        problems.check(
            self.recalibrate_fraction > 0.0 && self.recalibrate_fraction <= 1.0,
            "tuning.recalibrate_fraction must be in (0, 1]",
        );
    }
}

impl PersonModel {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(
            self.input_size >= 32 && self.input_size.is_multiple_of(32),
            "person.input_size must be a positive multiple of 32",
        );
        problems.check(self.threads >= 1, "person.threads must be at least 1");
    }
}
