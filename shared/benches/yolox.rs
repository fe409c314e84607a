//! The per-frame CPU cost around inference: letterboxing a camera frame and
//! decoding a model output.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lastseen_shared::labels::COCO;
use lastseen_shared::yolox::{Letterbox, Preprocessor, YoloxConfig, decode};

const FRAME: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/trace/frame_0000.jpg"
);

const ROWS: usize = 52 * 52 + 26 * 26 + 13 * 13;
const COLUMNS: usize = 85;

fn preprocess(c: &mut Criterion) {
    let image = image::open(FRAME)
        .expect("the trace fixture frame decodes")
        .to_rgb8();
    let mut preprocessor = Preprocessor::new(416);
    let mut tensor = vec![0.0; preprocessor.tensor_len()];
    c.bench_function("preprocess 640x360 into 416", |b| {
        b.iter(|| {
            preprocessor
                .run(black_box(&image), &mut tensor)
                .expect("the frame letterboxes")
        })
    });
}

/// A 416 output as the model emits it for a busy frame: low objectness
/// everywhere, a few confident cells, some of them duplicates for NMS.
fn synthetic_output() -> Vec<f32> {
    let mut output = vec![0.0; ROWS * COLUMNS];
    for (index, row) in output.chunks_exact_mut(COLUMNS).enumerate() {
        row[..4].copy_from_slice(&[0.5, 0.5, 0.8, 1.2]);
        row[4] = 0.0005 * (index % 17) as f32;
        for (class, probability) in row[5..].iter_mut().enumerate() {
            *probability = 0.001 * ((index + class) % 23) as f32;
        }
    }
    // (row, objectness, class, probability): a person seen by three neighbouring
    // stride-8 cells, a dog and cat sharing a stride-16 box, a cup at stride 32.
    let strong = [
        (1000, 0.95, 0, 0.9),
        (1001, 0.9, 0, 0.85),
        (1052, 0.8, 0, 0.8),
        (3000, 0.9, 16, 0.9),
        (3000, 0.9, 15, 0.45),
        (3500, 0.7, 41, 0.8),
    ];
    for (row, objectness, class, probability) in strong {
        output[row * COLUMNS + 4] = objectness;
        output[row * COLUMNS + 5 + class] = probability;
    }
    output
}

fn decode_output(c: &mut Criterion) {
    let output = synthetic_output();
    let config = YoloxConfig::default();
    let letterbox = Letterbox::new(640, 360, 416);
    c.bench_function("decode 3549x85", |b| {
        b.iter(|| {
            decode(black_box(&output), &config, &letterbox, &COCO).expect("the output decodes")
        })
    });
}

criterion_group!(benches, preprocess, decode_output);
criterion_main!(benches);
