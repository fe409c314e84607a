//! The person gate: YOLOX-Nano through ONNX Runtime on the device, with the
//! pre/post-processing shared with the cloud (`lastseen_shared::yolox`).
//! It runs only on frames the light and change gates let through.

use std::path::Path;

use image::RgbImage;
use lastseen_shared::labels::COCO;
use lastseen_shared::yolox::{Preprocessor, YoloxConfig, decode};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::config::PersonModel;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PersonError {
    #[error("{0}")]
    Runtime(String),
    #[error("cannot load the person model {path}: {message}")]
    Model { path: String, message: String },
    #[error("person detection failed: {0}")]
    Inference(String),
}

/// One ONNX Runtime session and the buffers it reuses.
pub struct PersonDetector {
    session: Session,
    preprocessor: Preprocessor,
    tensor: Vec<f32>,
    config: YoloxConfig,
}

impl std::fmt::Debug for PersonDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonDetector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PersonDetector {
    pub fn load(model: &PersonModel) -> Result<Self, PersonError> {
        let environment = super::runtime::ensure_loaded(model.onnxruntime_lib.as_deref())?;
        let path: &Path = &model.model_path;
        let model_error = |message: String| PersonError::Model {
            path: path.display().to_string(),
            message,
        };
        if !path.is_file() {
            return Err(model_error("no such file".to_owned()));
        }
        let session = Session::builder(&environment)
            .and_then(|b| {
                b.with_optimization_level(GraphOptimizationLevel::Level3)
                    .map_err(Into::into)
            })
            .and_then(|b| b.with_intra_threads(model.threads).map_err(Into::into))
            .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
            .and_then(|mut b| b.commit_from_file(path))
            .map_err(|e| model_error(e.to_string()))?;
        // Every box is kept here; the gate compares the best person score
        // with its own `min_score`, which the cloud may change at any time.
        let config = YoloxConfig {
            input_size: model.input_size,
            score_threshold: 0.05,
            ..YoloxConfig::default()
        };
        let preprocessor = Preprocessor::new(config.input_size);
        let tensor = vec![0.0; preprocessor.tensor_len()];
        Ok(Self {
            session,
            preprocessor,
            tensor,
            config,
        })
    }

    /// The best `person` score in the frame (0 when there is none).
    pub fn best_person_score(&mut self, image: &RgbImage) -> Result<f32, PersonError> {
        let letterbox = self
            .preprocessor
            .run(image, &mut self.tensor)
            .map_err(|e| PersonError::Inference(e.to_string()))?;
        let side = self.preprocessor.input_size() as usize;
        let input = TensorRef::from_array_view(([1usize, 3, side, side], self.tensor.as_slice()))
            .map_err(|e| PersonError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(|e| PersonError::Inference(e.to_string()))?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| PersonError::Inference("the model has no output".to_owned()))?;
        let (_shape, data) = first
            .try_extract_tensor::<f32>()
            .map_err(|e| PersonError::Inference(e.to_string()))?;
        let detections = decode(data, &self.config, &letterbox, &COCO)
            .map_err(|e| PersonError::Inference(e.to_string()))?;
        Ok(detections
            .iter()
            .filter(|d| d.label.as_str() == "person")
            .map(|d| d.score)
            .fold(0.0, f32::max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::testing::trace;

    fn model() -> PersonModel {
        PersonModel {
            model_path: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/models/yolox_nano.onnx"),
            ..PersonModel::default()
        }
    }

    #[test]
    fn sees_the_astronaut_and_nobody_in_the_cup_photo() {
        let mut detector = PersonDetector::load(&model()).expect("model loads");
        let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/images");
        let astronaut = image::open(fixtures.join("astronaut.png"))
            .unwrap()
            .into_rgb8();
        let coffee = image::open(fixtures.join("coffee.png"))
            .unwrap()
            .into_rgb8();
        assert!(detector.best_person_score(&astronaut).unwrap() > 0.5);
        assert!(detector.best_person_score(&coffee).unwrap() < 0.3);
    }

    #[test]
    fn finds_people_in_the_busy_hall_trace() {
        let mut detector = PersonDetector::load(&model()).expect("model loads");
        let frames = trace();
        let with_people = frames
            .iter()
            .step_by(20)
            .filter(|f| detector.best_person_score(f).unwrap() >= 0.4)
            .count();
        assert!(with_people >= 5, "{with_people} of 11 sampled frames");
    }

    #[test]
    fn a_missing_model_is_a_clear_error() {
        let err = PersonDetector::load(&PersonModel {
            model_path: "/nonexistent/model.onnx".into(),
            ..model()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
    }
}
