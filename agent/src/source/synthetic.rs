//! A synthetic scene for tests and demos: a lit room with a dark figure
//! walking across it, light sensor noise, reproducible.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};

use super::{FrameSource, SourceError};
use crate::config::SourceConfig;
use crate::frame::Frame;

pub struct SyntheticSource {
    width: u32,
    height: u32,
    max_frames: u64,
    index: u64,
    background: RgbImage,
    rng: rand::rngs::StdRng,
}

impl SyntheticSource {
    pub fn new(config: &SourceConfig) -> Self {
        let (width, height) = (config.width, config.height);
        let background = RgbImage::from_fn(width, height, |x, y| {
            let shade = 90 + (60 * x / width.max(1)) as u8 + (40 * y / height.max(1)) as u8;
            Rgb([shade, shade.saturating_sub(10), shade.saturating_sub(25)])
        });
        Self {
            width,
            height,
            max_frames: config.max_frames,
            index: 0,
            background,
            rng: rand::rngs::StdRng::seed_from_u64(7),
        }
    }
}

impl FrameSource for SyntheticSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.max_frames > 0 && self.index >= self.max_frames {
            return Ok(None);
        }
        let mut image = self.background.clone();
        // The figure crosses the room in 40 frames, then the room is empty for 20.
        let step = self.index % 60;
        if step < 40 {
            let figure_w = (self.width / 12).max(2);
            let figure_h = (self.height / 3).max(2);
            let left = (self.width - figure_w) * step as u32 / 40;
            let top = self.height / 2;
            for y in top..(top + figure_h).min(self.height) {
                for x in left..left + figure_w {
                    image.put_pixel(x, y, Rgb([35, 30, 45]));
                }
            }
        }
        for pixel in image.pixels_mut() {
            let noise = self.rng.random_range(-3i16..=3);
            pixel.0 = pixel.0.map(|c| (c as i16 + noise).clamp(0, 255) as u8);
        }
        self.index += 1;
        Ok(Some(Frame {
            image,
            captured_at: chrono::Utc::now(),
            jpeg: None,
        }))
    }
}
