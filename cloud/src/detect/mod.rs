//! Object detection: ONNX Runtime sessions fed from a bounded queue.
//!
//! - `model` loads ONNX Runtime and YOLOX sessions through the shared crate
//!   (`lastseen_shared::onnx`, the same code as the agent's person gate).
//! - `pool` owns the queue and the worker threads. Inference is CPU-bound and
//!   blocking, so it runs on dedicated threads, never on the async runtime.

mod config;
mod jpeg;
mod model;
mod pool;

pub use config::DetectConfig;
pub use jpeg::{ImageError, decode as decode_jpeg, dimensions as jpeg_dimensions, sniff_jpeg};
pub use lastseen_shared::onnx::{OnnxRuntime, YoloxSession};
pub use model::{Analysis, load_model, load_runtime};
pub use pool::{DetectorPool, QueueFull};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(
        "ONNX Runtime library not found (looked in: {searched}); run scripts/setup or set onnxruntime_lib / LASTSEEN_ONNXRUNTIME_LIB"
    )]
    RuntimeNotFound { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("cannot load model {path} (set model_path / LASTSEEN_MODEL_PATH): {message}")]
    ModelLoad { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model output does not fit the YOLOX layout: {0}")]
    Output(String),
    #[error("the image cannot be read: {0}")]
    Image(#[from] ImageError),
    #[error("the detector stopped")]
    Stopped,
}
