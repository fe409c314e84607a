//! The detector on its own, on the fixture images as they are (no JPEG
//! re-encoding), against the detections ONNX Runtime's Python API produced.

use lastseen_cloud::detect::{load_model, load_runtime};
use lastseen_cloud::testkit::image_path;
use lastseen_shared::yolox::YoloxConfig;

use crate::helpers::{assert_matches_expected, expected_detections, model_path};

#[test]
fn detections_on_every_fixture_match_the_reference() {
    let runtime = load_runtime(None).expect("ONNX Runtime is installed (scripts/setup)");
    let mut model =
        load_model(&runtime, &model_path(), YoloxConfig::default(), 1).expect("model loads");
    let expected = expected_detections();
    let fixtures = expected.as_object().expect("expected.json is an object");
    assert_eq!(fixtures.len(), 4);
    for (name, want) in fixtures {
        let image = image::open(image_path(name))
            .expect("fixture opens")
            .into_rgb8();
        let detections = model.detect(&image).expect("detects");
        let actual = serde_json::to_value(&detections).expect("serialises");
        assert_matches_expected(name, &actual, want);
    }
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let runtime = load_runtime(None).expect("ONNX Runtime is installed (scripts/setup)");
    let error = load_model(
        &runtime,
        std::path::Path::new("/nonexistent/model.onnx"),
        YoloxConfig::default(),
        1,
    )
    .expect_err("loading fails");
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/model.onnx") && message.contains("model_path"),
        "{message}"
    );
}
