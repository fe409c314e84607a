//! The person gate: YOLOX-Nano through ONNX Runtime on the device, with the
//! pre/post-processing shared with the cloud (`lastseen_shared::yolox`).
//! It runs only on frames the light and change gates let through.

use image::RgbImage;
use lastseen_shared::onnx::{self, SessionError, YoloxSession};
use lastseen_shared::yolox::YoloxConfig;

use crate::config::PersonModel;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PersonError {
    #[error("{0} (set person.onnxruntime_lib or ORT_DYLIB_PATH, or run scripts/setup)")]
    Runtime(#[from] onnx::RuntimeError),
    #[error("the person gate's model (person.model_path): {0}")]
    Model(#[from] SessionError),
}

/// One YOLOX session (the cloud's detector code, from the shared crate).
#[derive(Debug)]
pub struct PersonDetector {
    session: YoloxSession,
}

impl PersonDetector {
    pub fn load(model: &PersonModel) -> Result<Self, PersonError> {
        let runtime = onnx::ensure_loaded(model.onnxruntime_lib.as_deref())?;
        // Every box is kept here; the gate compares the best person score
        // with its own `min_score`, which the cloud may change at any time.
        let config = YoloxConfig {
            input_size: model.input_size,
            score_threshold: 0.05,
            ..YoloxConfig::default()
        };
        let session = YoloxSession::load(&runtime, &model.model_path, config, model.threads)?;
        Ok(Self { session })
    }

    /// The best `person` score in the frame (0 when there is none).
    pub fn best_person_score(&mut self, image: &RgbImage) -> Result<f32, PersonError> {
        Ok(self
            .session
            .detect(image)?
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
