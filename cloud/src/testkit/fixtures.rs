//! The model and pictures the tests and benches use: `../shared` beside the
//! repository (`models/`, `fixtures/images/`, `fixtures/trace/`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },
}

/// `../shared` beside the repository, which holds the model and the fixtures.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The YOLOX-Nano model the cloud detects with.
pub fn model_path() -> PathBuf {
    shared_dir().join("models/yolox_nano.onnx")
}

/// One of the fixture photos (`dog.jpg`, `coffee.png`, ...) or `expected.json`.
pub fn image_path(name: &str) -> PathBuf {
    shared_dir().join("fixtures/images").join(name)
}

/// The 220 consecutive frames of a busy hall, `frame_0000.jpg` on.
pub fn trace_dir() -> PathBuf {
    shared_dir().join("fixtures/trace")
}

/// Frame `index` of the trace, as its JPEG bytes.
pub fn trace_frame(index: usize) -> Result<Vec<u8>, FixtureError> {
    read(&trace_dir().join(format!("frame_{index:04}.jpg")))
}

/// A fixture photo as a device would send it: JPEG files as they are, PNGs
/// re-encoded as JPEG at `quality`.
pub fn fixture_jpeg(name: &str, quality: u8) -> Result<Vec<u8>, FixtureError> {
    let path = image_path(name);
    let bytes = read(&path)?;
    if name.ends_with(".jpg") {
        return Ok(bytes);
    }
    image::load_from_memory(&bytes)
        .and_then(|image| encode_jpeg(&image.into_rgb8(), quality))
        .map_err(|source| FixtureError::Image { path, source })
}

/// A small valid JPEG (64x48, a gradient over `shade`): detection still
/// runs on it, cheaply.
pub fn tiny_jpeg(shade: u8) -> Result<Vec<u8>, image::ImageError> {
    let image = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([shade, (x * 4) as u8, (y * 5) as u8])
    });
    encode_jpeg(&image, 80)
}

fn encode_jpeg(image: &image::RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality).encode_image(image)?;
    Ok(out.into_inner())
}

fn read(path: &Path) -> Result<Vec<u8>, FixtureError> {
    std::fs::read(path).map_err(|source| FixtureError::Read {
        path: path.to_path_buf(),
        source,
    })
}
