//! The detector's YOLOX session (shared with the agent's person gate through
//! `lastseen_shared::onnx`), loaded with errors that name the cloud's settings.

use std::path::Path;

use lastseen_shared::Detection;
use lastseen_shared::onnx::{self, OnnxRuntime, RuntimeError, SessionError, YoloxSession};
use lastseen_shared::yolox::YoloxConfig;

use super::DetectError;

/// What the detector made of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
}

/// Loads ONNX Runtime once per process (`onnxruntime_lib`, else found by itself).
pub fn load_runtime(configured: Option<&Path>) -> Result<OnnxRuntime, DetectError> {
    onnx::ensure_loaded(configured).map_err(|error| match error {
        RuntimeError::NotFound { searched } => DetectError::RuntimeNotFound { searched },
        RuntimeError::Load { path, message } => DetectError::RuntimeLoad { path, message },
    })
}

/// One session on `model_path`, owned by one worker thread.
pub fn load_model(
    runtime: &OnnxRuntime,
    path: &Path,
    config: YoloxConfig,
    intra_threads: usize,
) -> Result<YoloxSession, DetectError> {
    YoloxSession::load(runtime, path, config, intra_threads).map_err(DetectError::from)
}

impl From<SessionError> for DetectError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Model { path, message } => DetectError::ModelLoad { path, message },
            SessionError::Inference(message) => DetectError::Inference(message),
            SessionError::Output(message) => DetectError::Output(message),
        }
    }
}
