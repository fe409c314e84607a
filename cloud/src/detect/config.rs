//! The detector's settings: the model, its runtime, and the worker pool.

use std::path::PathBuf;

use lastseen_shared::Problems;
use lastseen_shared::yolox::YoloxConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DetectConfig {
    /// The ONNX model (YOLOX layout).
    pub model_path: PathBuf,
    /// `libonnxruntime.so`; when unset it is looked for in `ORT_DYLIB_PATH`,
    /// the project's `.venv` (made by `scripts/setup`) and the system paths.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Square model input side in pixels (a multiple of 32).
    pub model_input_size: u32,
    pub score_threshold: f32,
    pub nms_iou: f32,
    /// Detector workers, each with its own ONNX Runtime session.
    #[serde(rename = "detect_workers")]
    pub workers: usize,
    /// ONNX Runtime intra-op threads per worker.
    #[serde(rename = "detect_threads")]
    pub threads: usize,
    /// Frames waiting for a detector before ingest answers 503.
    pub queue_depth: usize,
    /// False stores frames without running the model (no detections): only
    /// for measuring the rest of the ingest path (BENCHMARKS.md).
    #[serde(rename = "detect_enabled")]
    pub enabled: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("../shared/models/yolox_nano.onnx"),
            onnxruntime_lib: None,
            model_input_size: 416,
            score_threshold: 0.3,
            nms_iou: 0.45,
            workers: 2,
            threads: 1,
            queue_depth: 64,
            enabled: true,
        }
    }
}

impl DetectConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.model_input_size >= 32 && self.model_input_size.is_multiple_of(32),
            "model_input_size must be a positive multiple of 32",
        );
        problems.check(
            self.score_threshold > 0.0 && self.score_threshold < 1.0,
            "score_threshold must be between 0 and 1",
        );
        problems.check(
            self.nms_iou > 0.0 && self.nms_iou <= 1.0,
            "nms_iou must be in (0, 1]",
        );
        problems.check(self.workers >= 1, "detect_workers must be at least 1");
        problems.check(self.threads >= 1, "detect_threads must be at least 1");
        problems.check(self.queue_depth >= 1, "queue_depth must be at least 1");
    }

    pub fn yolox(&self) -> YoloxConfig {
        YoloxConfig {
            input_size: self.model_input_size,
            score_threshold: self.score_threshold,
            nms_iou: self.nms_iou,
        }
    }
}
