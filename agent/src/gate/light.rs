//! The light gate: drops frames too dark or too blown out to show anything.

use lastseen_shared::messages::LightGate;

use super::thumb::Thumb;

/// What the light gate measured on one frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LightReading {
    pub mean_luma: f32,
    pub clipped_fraction: f32,
}

impl LightReading {
    /// Mean luma and the fraction of pixels at or beyond the clip levels.
    pub fn measure(thumb: &Thumb, clip_low: u8, clip_high: u8) -> Self {
        if thumb.is_empty() {
            return Self {
                mean_luma: 0.0,
                clipped_fraction: 1.0,
            };
        }
        let mut sum = 0u64;
        let mut clipped = 0u32;
        for &l in &thumb.luma {
            sum += l as u64;
            clipped += u32::from(l <= clip_low || l >= clip_high);
        }
        let n = thumb.len() as f32;
        Self {
            mean_luma: sum as f32 / n,
            clipped_fraction: clipped as f32 / n,
        }
    }

    /// True when the frame is worth looking at.
    pub fn passes(&self, settings: &LightGate) -> bool {
        !settings.enabled
            || (self.mean_luma >= settings.min_mean_luma
                && self.mean_luma <= settings.max_mean_luma
                && self.clipped_fraction <= settings.max_clipped_fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::testing::{darken, trace};

    fn reading(image: &image::RgbImage) -> LightReading {
        let mut thumb = Thumb::default();
        thumb.fill(image, 100);
        LightReading::measure(&thumb, 8, 247)
    }

    #[test]
    fn passes_every_frame_of_the_daylight_trace() {
        let settings = LightGate::default();
        for (index, frame) in trace().iter().enumerate() {
            let reading = reading(frame);
            assert!(reading.passes(&settings), "frame {index}: {reading:?}");
        }
    }

    #[test]
    fn drops_the_trace_darkened_to_night_levels() {
        let settings = LightGate::default();
        for (index, frame) in trace().iter().enumerate().step_by(7) {
            let night = darken(frame, 0.08);
            let reading = reading(&night);
            assert!(!reading.passes(&settings), "frame {index}: {reading:?}");
        }
    }

    #[test]
    fn drops_blown_out_frames_and_can_be_disabled() {
        let white = image::RgbImage::from_pixel(64, 64, image::Rgb([252, 252, 252]));
        let reading = reading(&white);
        assert_eq!(reading.clipped_fraction, 1.0);
        assert!(!reading.passes(&LightGate::default()));
        let off = LightGate {
            enabled: false,
            ..LightGate::default()
        };
        assert!(reading.passes(&off));
    }
}
