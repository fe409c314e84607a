//! The gates, cheapest first: light, change, person; the heartbeat lets one
//! frame through now and then whatever change and person say.
//!
//! [`Gates::decide`] is plain synchronous logic on one frame; each gate counts
//! what it dropped in [`Counters`]. The light and change gates share one small
//! grayscale copy ([`thumb::Thumb`]) made once per frame.

pub mod change;
pub mod heartbeat;
pub mod light;
pub mod person;
#[cfg(test)]
pub(crate) mod testing;
pub mod thumb;

use std::sync::Arc;

use lastseen_shared::{GateSettings, Measurement};

use crate::config::{GateTuning, PersonModel};
use crate::counters::Counters;
use crate::frame::Frame;
use change::{ChangeDetector, ChangeTuning};
use heartbeat::Heartbeat;
use light::LightReading;
use person::PersonDetector;
use thumb::Thumb;

/// Which gate dropped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    Light,
    Change,
    Person,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Send {
        /// What the gates measured, sent along with the frame.
        measurements: Vec<Measurement>,
        /// Sent because the heartbeat was due, not because a gate said yes.
        heartbeat: bool,
    },
    Drop(Gate),
}

impl GateTuning {
    pub fn change_tuning(&self) -> ChangeTuning {
        ChangeTuning {
            learning_rate: self.learning_rate,
            noise_factor: self.noise_factor,
            min_neighbours: self.min_neighbours,
            recalibrate_fraction: self.recalibrate_fraction,
            calibration_frames: self.calibration_frames,
        }
    }
}

/// The person detector, loaded the first time the person gate is enabled.
enum PersonState {
    NotLoaded,
    Ready(Box<PersonDetector>),
    /// Loading failed: logged once; frames pass (the cloud detects anyway).
    Failed,
}

pub struct Gates {
    tuning: GateTuning,
    model: PersonModel,
    thumb: Thumb,
    change: ChangeDetector,
    person: PersonState,
    heartbeat: Heartbeat,
    counters: Arc<Counters>,
}

impl Gates {
    pub fn new(tuning: GateTuning, model: PersonModel, counters: Arc<Counters>) -> Self {
        Self {
            change: ChangeDetector::new(tuning.change_tuning()),
            tuning,
            model,
            thumb: Thumb::default(),
            person: PersonState::NotLoaded,
            heartbeat: Heartbeat::default(),
            counters,
        }
    }

    /// Loads the person model now (instead of at the first frame that needs it).
    pub fn preload_person(&mut self) -> Result<(), person::PersonError> {
        if matches!(self.person, PersonState::Ready(_)) {
            return Ok(());
        }
        let detector = PersonDetector::load(&self.model)?;
        self.person = PersonState::Ready(Box::new(detector));
        Ok(())
    }

    pub fn decide(&mut self, frame: &Frame, settings: &GateSettings) -> Decision {
        let mut measurements = Vec::with_capacity(4);
        let mut measure = |name: &str, value: f32| {
            measurements.push(Measurement {
                name: name.to_owned(),
                value,
            })
        };
        self.thumb.fill(&frame.image, self.tuning.thumb_height);
        let light = LightReading::measure(&self.thumb, self.tuning.clip_low, self.tuning.clip_high);
        measure("mean_luma", light.mean_luma);
        measure("clipped_fraction", light.clipped_fraction);
        if !light.passes(&settings.light) {
            Counters::inc(&self.counters.dropped_light);
            return Decision::Drop(Gate::Light);
        }
        let change = self.change.observe(&self.thumb, &settings.change);
        measure("changed_fraction", change.changed_fraction);
        if change.verdict == change::ChangeVerdict::Recalibrated {
            Counters::inc(&self.counters.recalibrations);
        }
        let mut dropped_by = (!change.passes(&settings.change)).then_some(Gate::Change);
        if dropped_by.is_none() && settings.person.enabled {
            let score = self.person_score(frame);
            if let Some(score) = score {
                measure("person_score", score);
            }
            if score.is_some_and(|s| s < settings.person.min_score) {
                dropped_by = Some(Gate::Person);
            }
        }
        let heartbeat = match dropped_by {
            None => false,
            Some(_)
                if self
                    .heartbeat
                    .due(frame.captured_at, settings.heartbeat_secs) =>
            {
                Counters::inc(&self.counters.heartbeats);
                measure("heartbeat", 1.0);
                true
            }
            Some(gate) => {
                let counter = match gate {
                    Gate::Light => &self.counters.dropped_light,
                    Gate::Change => &self.counters.dropped_change,
                    Gate::Person => &self.counters.dropped_person,
                };
                Counters::inc(counter);
                return Decision::Drop(gate);
            }
        };
        self.heartbeat.sent(frame.captured_at);
        Decision::Send {
            measurements,
            heartbeat,
        }
    }

    /// The best person score, or `None` when the detector is unavailable.
    fn person_score(&mut self, frame: &Frame) -> Option<f32> {
        if matches!(self.person, PersonState::NotLoaded) {
            self.person = match PersonDetector::load(&self.model) {
                Ok(detector) => PersonState::Ready(Box::new(detector)),
                Err(error) => {
                    tracing::error!(%error, "person gate unavailable: frames pass without it");
                    PersonState::Failed
                }
            };
        }
        let PersonState::Ready(detector) = &mut self.person else {
            return None;
        };
        match detector.best_person_score(&frame.image) {
            Ok(score) => Some(score),
            Err(error) => {
                tracing::warn!(%error, "person gate failed on a frame: it passes");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{add_noise, darken, trace};
    use super::*;
    use chrono::{DateTime, TimeDelta, Utc};

    fn frame(image: &image::RgbImage, at: DateTime<Utc>) -> Frame {
        Frame {
            image: image.clone(),
            captured_at: at,
            jpeg: None,
        }
    }

    fn gates() -> (Gates, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let gates = Gates::new(
            GateTuning::default(),
            PersonModel::default(),
            counters.clone(),
        );
        (gates, counters)
    }

    #[test]
    fn each_gate_counts_what_it_drops_and_the_heartbeat_rescues_one_frame() {
        let (mut gates, counters) = gates();
        let settings = GateSettings {
            heartbeat_secs: 60,
            ..GateSettings::default()
        };
        let start = Utc::now();
        let still = &trace()[0];
        // First frame: sent (no background yet).
        assert!(matches!(
            gates.decide(&frame(still, start), &settings),
            Decision::Send {
                heartbeat: false,
                ..
            }
        ));
        // 10 s apart, the same scene with noise: dropped by the change gate...
        for i in 1..6 {
            let at = start + TimeDelta::seconds(10 * i);
            let decision = gates.decide(&frame(&add_noise(still, 6.0, i as u64), at), &settings);
            assert_eq!(decision, Decision::Drop(Gate::Change), "frame {i}");
        }
        // ... until a minute has passed: the heartbeat sends one.
        let decision = gates.decide(
            &frame(&add_noise(still, 6.0, 9), start + TimeDelta::seconds(60)),
            &settings,
        );
        assert!(
            matches!(
                decision,
                Decision::Send {
                    heartbeat: true,
                    ..
                }
            ),
            "{decision:?}"
        );
        // Night: the light gate drops it, heartbeat or not.
        let night = darken(still, 0.05);
        let decision = gates.decide(&frame(&night, start + TimeDelta::hours(1)), &settings);
        assert_eq!(decision, Decision::Drop(Gate::Light));
        let totals = counters.snapshot();
        assert_eq!(totals["dropped_change"], 5);
        assert_eq!(totals["heartbeats"], 1);
        assert_eq!(totals["dropped_light"], 1);
    }

    #[test]
    fn the_person_gate_drops_frames_without_people() {
        let (mut gates, counters) = gates();
        gates.model.model_path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/models/yolox_nano.onnx");
        let mut settings = GateSettings {
            heartbeat_secs: 0,
            ..GateSettings::default()
        };
        settings.person.enabled = true;
        let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/images");
        let coffee = image::open(fixtures.join("coffee.png"))
            .unwrap()
            .into_rgb8();
        let astronaut = image::open(fixtures.join("astronaut.png"))
            .unwrap()
            .into_rgb8();
        let now = Utc::now();
        assert_eq!(
            gates.decide(&frame(&coffee, now), &settings),
            Decision::Drop(Gate::Person)
        );
        let Decision::Send { measurements, .. } = gates.decide(&frame(&astronaut, now), &settings)
        else {
            panic!("the astronaut is a person");
        };
        assert!(
            measurements
                .iter()
                .any(|m| m.name == "person_score" && m.value > 0.5)
        );
        assert_eq!(counters.snapshot()["dropped_person"], 1);
    }
}
