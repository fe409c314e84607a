//! One ONNX Runtime session running YOLOX on decoded frames.

use std::path::Path;

use image::RgbImage;
use lastseen_shared::Detection;
use lastseen_shared::labels::COCO;
use lastseen_shared::yolox::{Preprocessor, YoloxConfig, decode};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::DetectError;
use super::runtime::OnnxRuntime;

/// What the detector made of one frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub detections: Vec<Detection>,
}

/// A session plus the buffers it reuses; owned by exactly one worker thread.
pub struct YoloxModel {
    session: Session,
    preprocessor: Preprocessor,
    tensor: Vec<f32>,
    config: YoloxConfig,
}

impl YoloxModel {
    pub fn load(
        runtime: &OnnxRuntime,
        path: &Path,
        config: YoloxConfig,
        intra_threads: usize,
    ) -> Result<Self, DetectError> {
        let model_error = |message: String| DetectError::ModelLoad {
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

    pub fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let letterbox = self
            .preprocessor
            .run(image, &mut self.tensor)
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        let output = self.run_session()?;
        decode(&output, &self.config, &letterbox, &COCO)
            .map_err(|e| DetectError::Output(e.to_string()))
    }

    /// Inference alone on whatever the input tensor holds: the raw speed the
    /// pipeline is compared against in the benchmarks.
    pub fn infer_only(&mut self) -> Result<usize, DetectError> {
        self.run_session().map(|output| output.len())
    }

    fn run_session(&mut self) -> Result<Vec<f32>, DetectError> {
        let side = self.preprocessor.input_size() as usize;
        let input = TensorRef::from_array_view(([1usize, 3, side, side], self.tensor.as_slice()))
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(|e| DetectError::Inference(e.to_string()))?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| DetectError::Output("the model has no output".to_owned()))?;
        let (_shape, data) = first
            .try_extract_tensor::<f32>()
            .map_err(|e| DetectError::Output(e.to_string()))?;
        Ok(data.to_vec())
    }
}
