//! The change gate: the fraction of the picture that changed against a
//! background model, on the ~100 px tall grayscale copy.
//!
//! Frigate's motion detector (grayscale downscale, Gaussian blur, a running
//! average background with a learning rate, a frame-delta threshold, contours
//! above an area, and optionally a contrast stretch from the 4th/96th
//! percentiles) is the starting point. This gate differs where Frigate is
//! fragile:
//!
//! - **Sensor noise.** The copy is made of block means (not one sampled pixel
//!   per block), then blurred with a 3x3 binomial kernel; a changed pixel
//!   counts only when enough of its 8 neighbours changed too, so isolated
//!   noise never adds up (Frigate's dilation grows noise instead). Each pixel
//!   also learns its own noise level (mean absolute deviation while
//!   unchanged), and must change by `noise_factor` times it as well as by the
//!   fixed threshold, so a noisy night sensor or a flickering screen does not
//!   keep the gate open.
//! - **Light drift and auto-exposure.** Before comparing, the frame is scaled
//!   by a global gain that matches its brightness to the background's,
//!   estimated on the pixels that did not change (so a person walking in does
//!   not skew it). Slow drift is followed by the background itself.
//! - **Sudden global change** (lights switched, camera bumped, IR mode): when
//!   more than `recalibrate_fraction` changed or the gain is out of range,
//!   the background is rebuilt from this frame, which is sent once (the scene
//!   is new), and the model learns fast for `calibration_frames` frames.

use lastseen_shared::messages::ChangeGate;

use super::thumb::Thumb;

/// Gains beyond this factor (either way) are not exposure drift but a new scene.
const MAX_GAIN: f32 = 2.0;
/// Learning rate right after a rebuild, while the background settles.
const CALIBRATION_RATE: f32 = 0.25;

/// The local knobs of the change gate (see `GateTuning` in the config).
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeTuning {
    pub learning_rate: f32,
    pub noise_factor: f32,
    pub min_neighbours: u8,
    pub recalibrate_fraction: f32,
    pub calibration_frames: u32,
}

/// Why the gate decided as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeVerdict {
    /// The first frame: there is no background yet, so it is sent.
    First,
    Changed,
    Unchanged,
    /// The whole scene changed at once; the background was rebuilt and the frame is sent.
    Recalibrated,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChangeReading {
    pub changed_fraction: f32,
    /// Brightness correction applied to the frame before comparing.
    pub gain: f32,
    pub verdict: ChangeVerdict,
}

impl ChangeReading {
    pub fn passes(&self, settings: &ChangeGate) -> bool {
        !settings.enabled || self.verdict != ChangeVerdict::Unchanged
    }
}

/// The background model and the buffers reused between frames.
#[derive(Clone, Debug)]
pub struct ChangeDetector {
    tuning: ChangeTuning,
    width: usize,
    height: usize,
    background: Vec<f32>,
    deviation: Vec<f32>,
    blurred: Vec<f32>,
    rows: Vec<u16>,
    mask: Vec<bool>,
    calibrating: u32,
}

impl ChangeDetector {
    pub fn new(tuning: ChangeTuning) -> Self {
        Self {
            tuning,
            width: 0,
            height: 0,
            background: Vec::new(),
            deviation: Vec::new(),
            blurred: Vec::new(),
            rows: Vec::new(),
            mask: Vec::new(),
            calibrating: 0,
        }
    }

    /// Compares the frame with the background, then learns from it.
    pub fn observe(&mut self, thumb: &Thumb, settings: &ChangeGate) -> ChangeReading {
        self.blur(thumb);
        if self.background.len() != self.blurred.len() || self.width != thumb.width {
            self.width = thumb.width;
            self.height = thumb.height;
            self.rebuild();
            return ChangeReading {
                changed_fraction: 1.0,
                gain: 1.0,
                verdict: ChangeVerdict::First,
            };
        }
        let threshold = settings.pixel_threshold as f32;
        let gain = self.gain(threshold);
        if !(1.0 / MAX_GAIN..=MAX_GAIN).contains(&gain) {
            return self.recalibrate(1.0, gain);
        }
        let counted = self.mark_changes(gain, threshold);
        let changed_fraction = counted as f32 / self.blurred.len().max(1) as f32;
        if changed_fraction > self.tuning.recalibrate_fraction {
            return self.recalibrate(changed_fraction, gain);
        }
        self.learn(gain);
        let verdict = if changed_fraction >= settings.min_changed_fraction {
            ChangeVerdict::Changed
        } else {
            ChangeVerdict::Unchanged
        };
        ChangeReading {
            changed_fraction,
            gain,
            verdict,
        }
    }

    /// 3x3 binomial blur (1 2 1) of the thumbnail, edges clamped.
    fn blur(&mut self, thumb: &Thumb) {
        let (w, h) = (thumb.width, thumb.height);
        self.rows.clear();
        self.rows.resize(w * h, 0);
        for y in 0..h {
            let src = &thumb.luma[y * w..(y + 1) * w];
            let dst = &mut self.rows[y * w..(y + 1) * w];
            for x in 0..w {
                let left = src[x.saturating_sub(1)] as u16;
                let right = src[(x + 1).min(w - 1)] as u16;
                dst[x] = left + 2 * src[x] as u16 + right;
            }
        }
        self.blurred.clear();
        self.blurred.reserve(w * h);
        for y in 0..h {
            let up = &self.rows[y.saturating_sub(1) * w..][..w];
            let mid = &self.rows[y * w..][..w];
            let down = &self.rows[(y + 1).min(h - 1) * w..][..w];
            self.blurred.extend(
                up.iter()
                    .zip(mid)
                    .zip(down)
                    .map(|((&u, &m), &d)| (u + 2 * m + d) as f32 / 16.0),
            );
        }
    }

    /// The brightness factor that maps this frame onto the background,
    /// estimated again on the pixels that look unchanged after a first guess.
    fn gain(&self, threshold: f32) -> f32 {
        let ratio = |bg: f32, frame: f32| if frame > 1.0 { bg / frame } else { 1.0 };
        let frame_sum: f32 = self.blurred.iter().sum();
        let bg_sum: f32 = self.background.iter().sum();
        let first = ratio(bg_sum, frame_sum);
        let (mut bg_kept, mut frame_kept, mut kept) = (0.0f32, 0.0f32, 0usize);
        for (&f, &b) in self.blurred.iter().zip(&self.background) {
            if (f * first - b).abs() < threshold {
                bg_kept += b;
                frame_kept += f;
                kept += 1;
            }
        }
        if kept * 4 < self.blurred.len() {
            first
        } else {
            ratio(bg_kept, frame_kept)
        }
    }

    /// Marks the changed pixels and counts those with enough changed neighbours.
    fn mark_changes(&mut self, gain: f32, threshold: f32) -> usize {
        let noise_factor = self.tuning.noise_factor;
        self.mask.clear();
        self.mask.extend(
            self.blurred
                .iter()
                .zip(&self.background)
                .zip(&self.deviation)
                .map(|((&f, &b), &dev)| (f * gain - b).abs() > threshold.max(noise_factor * dev)),
        );
        let (w, h) = (self.width, self.height);
        let min_neighbours = self.tuning.min_neighbours as usize;
        let mut counted = 0;
        for y in 0..h {
            for x in 0..w {
                if !self.mask[y * w + x] {
                    continue;
                }
                let mut neighbours = 0;
                for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                    for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                        neighbours += usize::from(self.mask[ny * w + nx]);
                    }
                }
                // The pixel itself was counted too.
                if neighbours > min_neighbours {
                    counted += 1;
                }
            }
        }
        counted
    }

    /// Moves the background toward the frame; unchanged pixels also update
    /// their noise level.
    fn learn(&mut self, gain: f32) {
        let rate = if self.calibrating > 0 {
            self.calibrating -= 1;
            self.tuning.learning_rate.max(CALIBRATION_RATE)
        } else {
            self.tuning.learning_rate
        };
        for (((b, dev), &f), &changed) in self
            .background
            .iter_mut()
            .zip(self.deviation.iter_mut())
            .zip(&self.blurred)
            .zip(&self.mask)
        {
            if !changed {
                *dev += rate * ((f * gain - *b).abs() - *dev);
            }
            // The raw frame, not the gain-corrected one: slow drift is
            // followed by the background, only fast changes by the gain.
            *b += rate * (f - *b);
        }
    }

    fn recalibrate(&mut self, changed_fraction: f32, gain: f32) -> ChangeReading {
        self.rebuild();
        ChangeReading {
            changed_fraction,
            gain,
            verdict: ChangeVerdict::Recalibrated,
        }
    }

    fn rebuild(&mut self) {
        self.background.clone_from(&self.blurred);
        self.deviation.clear();
        self.deviation.resize(self.blurred.len(), 0.0);
        self.calibrating = self.tuning.calibration_frames;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::testing::{add_noise, darken, thumb_of, trace, tuning};

    fn detector() -> ChangeDetector {
        ChangeDetector::new(tuning())
    }

    #[test]
    fn keeps_the_real_movement_of_the_trace() {
        let settings = ChangeGate::default();
        let mut gate = detector();
        let frames = trace();
        let verdicts: Vec<_> = frames
            .iter()
            .map(|f| gate.observe(&thumb_of(f), &settings))
            .collect();
        assert_eq!(verdicts[0].verdict, ChangeVerdict::First);
        let passed = verdicts.iter().filter(|r| r.passes(&settings)).count();
        // People walk through the hall during most of the trace.
        assert!(
            passed * 2 > frames.len(),
            "passed {passed} of {}",
            frames.len()
        );
        assert!(
            verdicts
                .iter()
                .all(|r| r.verdict != ChangeVerdict::Recalibrated),
            "people walking are not a new scene"
        );
    }

    #[test]
    fn drops_a_repeated_frame_with_sensor_noise() {
        let settings = ChangeGate::default();
        let frames = trace();
        for start in [0, 100, 200] {
            let mut gate = detector();
            for seed in 0..12 {
                let noisy = add_noise(&frames[start], 12.0, seed);
                let reading = gate.observe(&thumb_of(&noisy), &settings);
                if seed > 0 {
                    assert_eq!(
                        reading.verdict,
                        ChangeVerdict::Unchanged,
                        "frame {start}, repeat {seed}: {reading:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn follows_slow_light_drift_and_exposure_steps_without_sending() {
        let settings = ChangeGate::default();
        let frame = &trace()[30];
        let mut gate = detector();
        gate.observe(&thumb_of(frame), &settings);
        // Dusk over 60 frames, down to 45% brightness, then a 25% exposure jump.
        for step in 1..=60 {
            let dimmed = darken(frame, 1.0 - 0.55 * step as f32 / 60.0);
            let reading = gate.observe(&thumb_of(&dimmed), &settings);
            assert_eq!(
                reading.verdict,
                ChangeVerdict::Unchanged,
                "step {step}: {reading:?}"
            );
        }
        let brighter = darken(frame, 0.45 * 1.25);
        let reading = gate.observe(&thumb_of(&brighter), &settings);
        assert_eq!(reading.verdict, ChangeVerdict::Unchanged, "{reading:?}");
    }

    #[test]
    fn a_sudden_new_scene_is_sent_once_then_learned() {
        let settings = ChangeGate::default();
        let frames = trace();
        let mut gate = detector();
        gate.observe(&thumb_of(&frames[0]), &settings);
        let inverted = {
            let mut image = frames[0].clone();
            image.pixels_mut().for_each(|p| p.0 = p.0.map(|c| 255 - c));
            image
        };
        let reading = gate.observe(&thumb_of(&inverted), &settings);
        assert_eq!(reading.verdict, ChangeVerdict::Recalibrated);
        assert!(reading.passes(&settings));
        let again = gate.observe(&thumb_of(&add_noise(&inverted, 6.0, 1)), &settings);
        assert_eq!(again.verdict, ChangeVerdict::Unchanged, "{again:?}");
    }

    #[test]
    fn a_small_object_appearing_is_a_change() {
        let settings = ChangeGate::default();
        let frame = &trace()[0];
        let mut gate = detector();
        for seed in 0..5 {
            gate.observe(&thumb_of(&add_noise(frame, 6.0, seed)), &settings);
        }
        // A dark 48x48 object (a bag) put down: 1% of a 640x360 frame.
        let mut with_bag = frame.clone();
        for y in 200..248 {
            for x in 300..348 {
                with_bag.put_pixel(x, y, image::Rgb([20, 20, 30]));
            }
        }
        let reading = gate.observe(&thumb_of(&with_bag), &settings);
        assert_eq!(reading.verdict, ChangeVerdict::Changed, "{reading:?}");
    }
}
