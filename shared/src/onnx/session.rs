//! One ONNX Runtime session running YOLOX, with the buffers it reuses.

use std::path::{Path, PathBuf};

use image::RgbImage;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::runtime::OnnxRuntime;
use crate::Detection;
use crate::labels::COCO;
use crate::yolox::{Preprocessor, YoloxConfig, decode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("cannot load model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("model output does not fit the YOLOX layout: {0}")]
    Output(String),
}

/// Owned by exactly one thread: a session runs one frame at a time.
pub struct YoloxSession {
    session: Session,
    preprocessor: Preprocessor,
    tensor: Vec<f32>,
    config: YoloxConfig,
}

impl std::fmt::Debug for YoloxSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoloxSession")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl YoloxSession {
    /// `intra_threads` is ONNX Runtime's thread count inside one inference.
    pub fn load(
        runtime: &OnnxRuntime,
        path: &Path,
        config: YoloxConfig,
        intra_threads: usize,
    ) -> Result<Self, SessionError> {
        let model_error = |message: String| SessionError::Model {
            path: path.to_path_buf(),
            message,
        };
        if !path.is_file() {
            return Err(model_error("no such file".to_owned()));
        }
        let session = Session::builder(&runtime.environment)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_intra_threads(intra_threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|e| model_error(e.to_string()))?;
        let preprocessor = Preprocessor::new(config.input_size);
        let tensor = vec![0.0; preprocessor.tensor_len()];
        Ok(Self {
            session,
            preprocessor,
            tensor,
            config,
        })
    }

    pub fn config(&self) -> &YoloxConfig {
        &self.config
    }

    /// The detections above the configured score, in source-image pixels.
    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, SessionError> {
        let letterbox = self
            .preprocessor
            .run(image, &mut self.tensor)
            .map_err(|e| SessionError::Inference(e.to_string()))?;
        let output = self.run_session()?;
        decode(&output, &self.config, &letterbox, &COCO)
            .map_err(|e| SessionError::Output(e.to_string()))
    }

    /// Inference alone on whatever the input tensor holds: the raw speed the
    /// pipeline is compared against in the benchmarks.
    pub fn infer_only(&mut self) -> Result<usize, SessionError> {
        self.run_session().map(|output| output.len())
    }

    fn run_session(&mut self) -> Result<Vec<f32>, SessionError> {
        let side = self.preprocessor.input_size() as usize;
        let input = TensorRef::from_array_view(([1usize, 3, side, side], self.tensor.as_slice()))
            .map_err(|e| SessionError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(|e| SessionError::Inference(e.to_string()))?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| SessionError::Output("the model has no output".to_owned()))?;
        let (_shape, data) = first
            .try_extract_tensor::<f32>()
            .map_err(|e| SessionError::Output(e.to_string()))?;
        Ok(data.to_vec())
    }
}
