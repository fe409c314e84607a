//! Frames for the gates' unit tests: the real trace, darkened or with noise.

use std::path::PathBuf;
use std::sync::OnceLock;

use image::RgbImage;
use rand::{Rng, SeedableRng};

use super::change::ChangeTuning;
use super::thumb::Thumb;
use crate::config::GateTuning;

pub(crate) fn trace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/trace")
}

/// The 220 consecutive frames of `../shared/fixtures/trace`, decoded once per test binary.
pub(crate) fn trace() -> &'static [RgbImage] {
    static FRAMES: OnceLock<Vec<RgbImage>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        (0..220)
            .map(|i| {
                let path = trace_dir().join(format!("frame_{i:04}.jpg"));
                image::open(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .into_rgb8()
            })
            .collect()
    })
}

/// Every channel scaled by `factor` (night is about 0.05-0.1 of daylight).
pub(crate) fn darken(image: &RgbImage, factor: f32) -> RgbImage {
    let mut out = image.clone();
    out.pixels_mut().for_each(|p| {
        p.0 =
            p.0.map(|c| (c as f32 * factor).round().clamp(0.0, 255.0) as u8)
    });
    out
}

/// Independent noise on every channel of every pixel, of about `sigma`
/// standard deviation (a sum of uniforms), reproducible from `seed`.
pub(crate) fn add_noise(image: &RgbImage, sigma: f32, seed: u64) -> RgbImage {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = image.clone();
    // Three uniforms on [-1, 1] have a variance of 1.
    out.pixels_mut().for_each(|p| {
        p.0 = p.0.map(|c| {
            let n: f32 = (0..3).map(|_| rng.random_range(-1.0f32..1.0)).sum();
            (c as f32 + n * sigma).round().clamp(0.0, 255.0) as u8
        })
    });
    out
}

pub(crate) fn thumb_of(image: &RgbImage) -> Thumb {
    let mut thumb = Thumb::default();
    thumb.fill(image, GateTuning::default().thumb_height);
    thumb
}

pub(crate) fn tuning() -> ChangeTuning {
    GateTuning::default().change_tuning()
}
