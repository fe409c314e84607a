//! Encode: scale a frame down to the configured largest side, then JPEG.
//! A frame that needs no scaling and came from the source as a JPEG is sent
//! as it came: no second lossy encode, no CPU spent.

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;

use crate::config::EncodeConfig;
use crate::frame::Frame;

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("cannot scale the frame: {0}")]
    Resize(String),
    #[error("cannot encode the frame as JPEG: {0}")]
    Jpeg(#[from] image::ImageError),
}

pub struct Encoder {
    config: EncodeConfig,
    resizer: Resizer,
    options: ResizeOptions,
}

impl Encoder {
    pub fn new(config: EncodeConfig) -> Self {
        Self {
            config,
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
        }
    }

    pub fn encode(&mut self, frame: &Frame) -> Result<Vec<u8>, EncodeError> {
        let (width, height) = frame.image.dimensions();
        let (target_w, target_h) = fit(width, height, self.config.max_side);
        if (target_w, target_h) == (width, height) {
            if let Some(jpeg) = &frame.jpeg {
                return Ok(jpeg.clone());
            }
            return self.jpeg(&frame.image);
        }
        let source = ImageRef::new(width, height, frame.image.as_raw(), PixelType::U8x3)
            .map_err(|e| EncodeError::Resize(e.to_string()))?;
        let mut target = Image::new(target_w, target_h, PixelType::U8x3);
        self.resizer
            .resize(&source, &mut target, &self.options)
            .map_err(|e| EncodeError::Resize(e.to_string()))?;
        let scaled = RgbImage::from_raw(target_w, target_h, target.into_vec())
            .ok_or_else(|| EncodeError::Resize("scaled buffer has the wrong size".to_owned()))?;
        self.jpeg(&scaled)
    }

    fn jpeg(&self, image: &RgbImage) -> Result<Vec<u8>, EncodeError> {
        let mut out = Cursor::new(Vec::with_capacity(64 * 1024));
        JpegEncoder::new_with_quality(&mut out, self.config.jpeg_quality).encode_image(image)?;
        Ok(out.into_inner())
    }
}

/// The size with the longer side at most `max_side`, aspect kept.
fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= max_side {
        return (width, height);
    }
    let scale = max_side as f64 / longest as f64;
    let side = |v: u32| ((v as f64 * scale).round() as u32).max(1);
    (side(width), side(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, jpeg: Option<Vec<u8>>) -> Frame {
        Frame {
            image: RgbImage::from_pixel(width, height, image::Rgb([90, 120, 150])),
            captured_at: chrono::Utc::now(),
            jpeg,
        }
    }

    #[test]
    fn scales_large_frames_down_to_the_largest_side() {
        let mut encoder = Encoder::new(EncodeConfig {
            max_side: 320,
            jpeg_quality: 70,
        });
        let jpeg = encoder.encode(&frame(1280, 720, None)).unwrap();
        let decoded = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 180));
    }

    #[test]
    fn passes_the_source_jpeg_through_when_no_scaling_is_needed() {
        let mut encoder = Encoder::new(EncodeConfig::default());
        let original = vec![0xFF, 0xD8, 0xFF, 0xD9];
        let out = encoder
            .encode(&frame(640, 360, Some(original.clone())))
            .unwrap();
        assert_eq!(out, original);
        let encoded = encoder.encode(&frame(640, 360, None)).unwrap();
        assert_eq!(&encoded[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn fit_keeps_the_aspect() {
        assert_eq!(fit(1920, 1080, 1280), (1280, 720));
        assert_eq!(fit(1080, 1920, 1280), (720, 1280));
        assert_eq!(fit(640, 360, 1280), (640, 360));
    }
}
