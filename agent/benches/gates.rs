//! The gates per 640x360 frame of the real trace, one at a time, and the
//! fraction of the trace each gate drops at default settings.
//!
//! `taskset -c 0 cargo bench -p lastseen-agent --bench gates --profile dev` (see BENCHMARKS.md).

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use image::RgbImage;
use lastseen_agent::config::{GateTuning, PersonModel};
use lastseen_agent::counters::Counters;
use lastseen_agent::frame::Frame;
use lastseen_agent::gate::Gates;
use lastseen_agent::gate::change::ChangeDetector;
use lastseen_agent::gate::light::LightReading;
use lastseen_agent::gate::person::PersonDetector;
use lastseen_agent::gate::thumb::Thumb;
use lastseen_cloud::testkit::{model_path, trace_dir};
use lastseen_shared::GateSettings;

fn trace() -> Vec<RgbImage> {
    (0..220)
        .map(|i| {
            image::open(trace_dir().join(format!("frame_{i:04}.jpg")))
                .expect("trace frame")
                .into_rgb8()
        })
        .collect()
}

fn person_model() -> PersonModel {
    PersonModel {
        model_path: model_path(),
        ..PersonModel::default()
    }
}

/// Prints what each gate drops of the trace, in order, at default settings
/// (frames 200 ms apart, as at 5 fps), with and without the person gate.
fn drop_fractions(frames: &[RgbImage]) {
    for person in [false, true] {
        let counters = Arc::new(Counters::default());
        let mut gates = Gates::new(GateTuning::default(), person_model(), counters.clone());
        let mut settings = GateSettings::default();
        settings.person.enabled = person;
        let start = Utc::now();
        for (i, image) in frames.iter().enumerate() {
            let frame = Frame {
                image: image.clone(),
                captured_at: start + TimeDelta::milliseconds(200 * i as i64),
                jpeg: None,
            };
            gates.decide(&frame, &settings);
        }
        let totals = counters.snapshot();
        let n = frames.len() as f64;
        let pct = |name: &str| 100.0 * totals[name] as f64 / n;
        let sent = n as u64
            - totals["dropped_light"]
            - totals["dropped_change"]
            - totals["dropped_person"];
        println!(
            "trace, person gate {}: dropped by light {:.1}%, change {:.1}%, person {:.1}%; sent {sent} of {n} ({:.1}%), heartbeats {}",
            if person { "on" } else { "off" },
            pct("dropped_light"),
            pct("dropped_change"),
            pct("dropped_person"),
            100.0 * sent as f64 / n,
            totals["heartbeats"],
        );
    }
}

fn gates(c: &mut Criterion) {
    let frames = trace();
    drop_fractions(&frames);
    let tuning = GateTuning::default();
    let settings = GateSettings::default();

    let mut thumb = Thumb::default();
    let mut i = 0;
    c.bench_function("thumb (640x360 -> 213x120 luma)", |b| {
        b.iter(|| {
            thumb.fill(&frames[i % frames.len()], tuning.thumb_height);
            i += 1;
        })
    });

    let mut i = 0;
    c.bench_function("light gate (thumb + mean/clipped)", |b| {
        b.iter(|| {
            thumb.fill(&frames[i % frames.len()], tuning.thumb_height);
            i += 1;
            LightReading::measure(&thumb, tuning.clip_low, tuning.clip_high).passes(&settings.light)
        })
    });

    let mut change = ChangeDetector::new(tuning.change_tuning());
    let mut i = 0;
    c.bench_function("change gate (thumb + background model)", |b| {
        b.iter(|| {
            thumb.fill(&frames[i % frames.len()], tuning.thumb_height);
            i += 1;
            change
                .observe(&thumb, &settings.change)
                .passes(&settings.change)
        })
    });

    let counters = Arc::new(Counters::default());
    let mut all = Gates::new(tuning.clone(), person_model(), counters);
    let start = Utc::now();
    let owned: Vec<Frame> = frames
        .iter()
        .enumerate()
        .map(|(i, image)| Frame {
            image: image.clone(),
            captured_at: start + TimeDelta::milliseconds(200 * i as i64),
            jpeg: None,
        })
        .collect();
    let mut i = 0;
    c.bench_function("light + change (Gates::decide, one thumb)", |b| {
        b.iter(|| {
            let decision = all.decide(&owned[i % owned.len()], &settings);
            i += 1;
            decision
        })
    });

    let mut person = PersonDetector::load(&person_model()).expect("person model loads");
    let mut group = c.benchmark_group("person gate");
    group.sample_size(20);
    let mut i = 0;
    group.bench_function("YOLOX-nano 416, 1 thread", |b| {
        b.iter(|| {
            let score = person.best_person_score(&frames[i % frames.len()]);
            i += 1;
            score
        })
    });
    group.finish();
}

criterion_group!(benches, gates);
criterion_main!(benches);
