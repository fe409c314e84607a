//! Turning the raw YOLOX output into scored, de-duplicated boxes in source pixels.

use super::{Letterbox, YoloxConfig};
use crate::detection::{BBox, Detection, Label};

/// The strides of the three YOLOX heads, in the order their rows appear.
const STRIDES: [u32; 3] = [8, 16, 32];

/// Four box values, objectness and at least one class probability.
const MIN_COLUMNS: usize = 6;

/// Why a model output could not be decoded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("input size {0} is not a positive multiple of 32, so it has no YOLOX grid")]
    InputSize(u32),
    #[error("the letterbox was made for input size {letterbox} but the config says {config}")]
    InputSizeMismatch { config: u32, letterbox: u32 },
    #[error("the letterbox scale {0} is not a positive finite number")]
    Scale(f32),
    #[error(
        "the output's {len} values are not a multiple of the {rows} cells of a {input_size} grid"
    )]
    Rows {
        len: usize,
        rows: usize,
        input_size: u32,
    },
    #[error("output rows have {0} columns; YOLOX needs at least 6 (box, objectness, one class)")]
    TooFewColumns(usize),
}

/// Decodes a `[1, N, 5 + C]` output into detections, best first.
///
/// Scores are `objectness * class probability` per class, kept when strictly
/// above `config.score_threshold`, then de-duplicated by NMS within each
/// class. Values that are not probabilities (NaN, outside 0..=1) and boxes
/// that decode to NaN are skipped; classes beyond `class_names`, or whose
/// name is not a valid [`Label`], are dropped.
pub fn decode(
    output: &[f32],
    config: &YoloxConfig,
    letterbox: &Letterbox,
    class_names: &[&str],
) -> Result<Vec<Detection>, DecodeError> {
    let input_size = config.input_size;
    if input_size == 0 || !input_size.is_multiple_of(32) {
        return Err(DecodeError::InputSize(input_size));
    }
    if letterbox.input_size != input_size {
        return Err(DecodeError::InputSizeMismatch {
            config: input_size,
            letterbox: letterbox.input_size,
        });
    }
    if !(letterbox.scale.is_finite() && letterbox.scale > 0.0) {
        return Err(DecodeError::Scale(letterbox.scale));
    }
    let rows = grid_cells(input_size).count();
    if !output.len().is_multiple_of(rows) {
        return Err(DecodeError::Rows {
            len: output.len(),
            rows,
            input_size,
        });
    }
    let columns = output.len() / rows;
    if columns < MIN_COLUMNS {
        return Err(DecodeError::TooFewColumns(columns));
    }

    let candidates = candidates(output, columns, config, letterbox, class_names.len());
    let detections = class_aware_nms(candidates, config.nms_iou)
        .into_iter()
        .filter_map(|kept| {
            let label = Label::parse(class_names.get(kept.class)?).ok()?;
            Some(Detection {
                label,
                score: kept.score,
                bbox: kept.bbox,
            })
        })
        .collect();
    Ok(detections)
}

/// A scored box before NMS; the label is only built for the survivors.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    class: usize,
    score: f32,
    bbox: BBox,
}

/// A cell of one head's grid: its column, row and stride, as the row decodes them.
#[derive(Clone, Copy, Debug)]
struct Cell {
    x: f32,
    y: f32,
    stride: f32,
}

/// The grid cells in output-row order: stride 8, 16 then 32, each row-major.
fn grid_cells(input_size: u32) -> impl Iterator<Item = Cell> {
    STRIDES.into_iter().flat_map(move |stride| {
        let side = input_size / stride;
        (0..side).flat_map(move |y| {
            (0..side).map(move |x| Cell {
                x: x as f32,
                y: y as f32,
                stride: stride as f32,
            })
        })
    })
}

fn candidates(
    output: &[f32],
    columns: usize,
    config: &YoloxConfig,
    letterbox: &Letterbox,
    class_count: usize,
) -> Vec<Candidate> {
    let threshold = config.score_threshold;
    let is_probability = |value: f32| (0.0..=1.0).contains(&value);
    let mut found = Vec::new();
    for (row, cell) in output
        .chunks_exact(columns)
        .zip(grid_cells(config.input_size))
    {
        let &[cx, cy, w, h, objectness, ref classes @ ..] = row else {
            continue;
        };
        // Probabilities are at most 1, so no class of a cell can score above
        // its objectness; this skips nearly every row of a real output.
        if !is_probability(objectness) || objectness <= threshold {
            continue;
        }
        let Some(bbox) = source_box([cx, cy, w, h], cell, letterbox) else {
            continue;
        };
        for (class, &probability) in classes.iter().enumerate().take(class_count) {
            let score = objectness * probability;
            if is_probability(probability) && score > threshold {
                found.push(Candidate { class, score, bbox });
            }
        }
    }
    found
}

/// The box of one row in source pixels, clipped to the source image; `None`
/// when the raw values make it NaN.
fn source_box([cx, cy, w, h]: [f32; 4], cell: Cell, letterbox: &Letterbox) -> Option<BBox> {
    let center_x = (cx + cell.x) * cell.stride;
    let center_y = (cy + cell.y) * cell.stride;
    let half_width = w.exp() * cell.stride / 2.0;
    let half_height = h.exp() * cell.stride / 2.0;
    let to_source =
        |letterboxed: f32, max: u32| (letterboxed / letterbox.scale).clamp(0.0, max as f32);
    let bbox = BBox {
        x1: to_source(center_x - half_width, letterbox.source_width),
        y1: to_source(center_y - half_height, letterbox.source_height),
        x2: to_source(center_x + half_width, letterbox.source_width),
        y2: to_source(center_y + half_height, letterbox.source_height),
    };
    <[f32; 4]>::from(bbox)
        .iter()
        .all(|v| !v.is_nan())
        .then_some(bbox)
}

/// Greedy NMS within each class, so a box may stay as both `dog` and `cat`;
/// returns the survivors by descending score.
fn class_aware_nms(mut candidates: Vec<Candidate>, iou_threshold: f32) -> Vec<Candidate> {
    candidates.sort_by(|a, b| a.class.cmp(&b.class).then(b.score.total_cmp(&a.score)));
    let mut kept: Vec<Candidate> = Vec::new();
    for same_class in candidates.chunk_by(|a, b| a.class == b.class) {
        let first_of_class = kept.len();
        for candidate in same_class {
            let suppressed = kept
                .iter()
                .skip(first_of_class)
                .any(|better| better.bbox.iou(&candidate.bbox) > iou_threshold);
            if !suppressed {
                kept.push(*candidate);
            }
        }
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::labels::COCO;

    const COLUMNS: usize = 85;
    const ROWS_416: usize = 52 * 52 + 26 * 26 + 13 * 13;
    /// A raw box centred in its cell, e (about 2.7) strides wide and high.
    const RAW_BOX: [f32; 4] = [0.5, 0.5, 1.0, 1.0];
    const CAT: usize = 15;
    const DOG: usize = 16;

    /// Row index, raw box, objectness and `(class, probability)` pairs.
    type Row<'a> = (usize, [f32; 4], f32, &'a [(usize, f32)]);

    /// A 416 output, all zeros but the given rows.
    fn output_with(rows: &[Row]) -> Vec<f32> {
        let mut output = vec![0.0; ROWS_416 * COLUMNS];
        for &(row, raw_box, objectness, classes) in rows {
            let values = &mut output[row * COLUMNS..(row + 1) * COLUMNS];
            values[..4].copy_from_slice(&raw_box);
            values[4] = objectness;
            for &(class, probability) in classes {
                values[5 + class] = probability;
            }
        }
        output
    }

    fn decode_416(output: &[f32], source: (u32, u32), class_names: &[&str]) -> Vec<Detection> {
        let letterbox = Letterbox::new(source.0, source.1, 416);
        decode(output, &YoloxConfig::default(), &letterbox, class_names).unwrap()
    }

    fn summary(detections: &[Detection]) -> Vec<(&str, f32)> {
        detections
            .iter()
            .map(|d| (d.label.as_str(), d.score))
            .collect()
    }

    #[test]
    fn one_strong_cell_in_the_stride_16_grid_decodes_to_its_box_in_source_pixels() {
        // Cell (x 5, y 3) of the 26x26 grid, which comes after the 52x52 one.
        let row = 52 * 52 + 3 * 26 + 5;
        let output = output_with(&[(row, [0.5, 0.25, 4f32.ln(), 2f32.ln()], 0.9, &[(DOG, 0.9)])]);

        let detections = decode_416(&output, (832, 468), &COCO);

        assert_eq!(detections.len(), 1);
        assert_eq!(detections[0].label.as_str(), "dog");
        assert!((detections[0].score - 0.81).abs() < 1e-6);
        // Centre (88, 52) and size 64x32 in input pixels; the scale is 0.5.
        let corners: [f32; 4] = detections[0].bbox.into();
        for (actual, expected) in corners.into_iter().zip([112.0, 72.0, 240.0, 136.0]) {
            assert!((actual - expected).abs() < 1e-3, "{:?}", detections[0].bbox);
        }
    }

    #[test]
    fn class_aware_nms_keeps_two_classes_on_one_box_but_drops_a_same_class_duplicate() {
        let output = output_with(&[
            (100, RAW_BOX, 1.0, &[(DOG, 0.9), (CAT, 0.5)]),
            // The next stride-8 cell, offset back onto the same centre.
            (101, [-0.5, 0.5, 1.0, 1.0], 1.0, &[(DOG, 0.7)]),
            (2000, RAW_BOX, 1.0, &[(DOG, 0.6)]),
        ]);

        let detections = decode_416(&output, (416, 416), &COCO);

        assert_eq!(
            summary(&detections),
            [("dog", 0.9), ("dog", 0.6), ("cat", 0.5)]
        );
        assert_eq!(detections[0].bbox, detections[2].bbox);
    }

    #[test]
    fn only_scores_strictly_above_the_threshold_are_kept() {
        let output = output_with(&[
            (10, RAW_BOX, 0.5, &[(0, 0.6), (1, 0.62)]),
            (500, RAW_BOX, 0.3, &[(2, 1.0)]),
        ]);

        let detections = decode_416(&output, (416, 416), &COCO);

        assert_eq!(summary(&detections), [("bicycle", 0.31)]);
    }

    #[test]
    fn boxes_are_clipped_to_the_source_image() {
        // The last stride-32 cell and the first stride-8 cell, both with huge boxes.
        let output = output_with(&[
            (ROWS_416 - 1, [0.5, 0.5, 3.0, 3.0], 0.9, &[(0, 0.9)]),
            (0, [0.5, 0.5, 3.0, 3.0], 0.8, &[(1, 0.9)]),
        ]);

        let detections = decode_416(&output, (640, 360), &COCO);

        assert_eq!(detections.len(), 2);
        let [_, _, x2, y2]: [f32; 4] = detections[0].bbox.into();
        assert_eq!((x2, y2), (640.0, 360.0));
        let [x1, y1, _, _]: [f32; 4] = detections[1].bbox.into();
        assert_eq!((x1, y1), (0.0, 0.0));
    }

    #[test]
    fn classes_beyond_the_names_and_nan_values_are_skipped() {
        let output = output_with(&[
            (1, RAW_BOX, 0.9, &[(5, 0.9)]),
            (2, [f32::NAN, 0.5, 1.0, 1.0], 0.9, &[(0, 0.9)]),
            (3, RAW_BOX, f32::NAN, &[(0, 0.9)]),
            (4, RAW_BOX, 0.9, &[(0, f32::NAN), (1, 1.5)]),
            (900, RAW_BOX, 1.0, &[(1, 0.81)]),
        ]);

        let detections = decode_416(&output, (416, 416), &COCO[..2]);

        assert_eq!(summary(&detections), [("bicycle", 0.81)]);
    }

    #[test]
    fn an_output_of_the_wrong_length_or_an_inconsistent_letterbox_is_an_error() {
        let config = YoloxConfig::default();
        let letterbox = Letterbox::new(640, 360, 416);
        let with_len = |len| decode(&vec![0.5; len], &config, &letterbox, &COCO).unwrap_err();
        let rows_error = with_len(ROWS_416 * COLUMNS - 1);
        assert!(matches!(
            rows_error,
            DecodeError::Rows {
                rows: ROWS_416,
                input_size: 416,
                ..
            }
        ));
        assert_eq!(with_len(ROWS_416 * 5), DecodeError::TooFewColumns(5));
        assert_eq!(with_len(0), DecodeError::TooFewColumns(0));

        let output = output_with(&[]);
        let error = |config, letterbox| decode(&output, config, &letterbox, &COCO).unwrap_err();
        let mut odd_size = config.clone();
        odd_size.input_size = 400;
        assert_eq!(error(&odd_size, letterbox), DecodeError::InputSize(400));
        let mismatch = error(&config, Letterbox::new(640, 360, 320));
        assert!(matches!(
            mismatch,
            DecodeError::InputSizeMismatch {
                config: 416,
                letterbox: 320
            }
        ));
        let mut zero_scale = letterbox;
        zero_scale.scale = 0.0;
        assert_eq!(error(&config, zero_scale), DecodeError::Scale(0.0));
    }

    fn any_value() -> impl Strategy<Value = f32> {
        let special = prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)];
        prop_oneof![any::<f32>(), special, 0.0f32..=1.0, -4.0f32..4.0]
    }

    /// An input size (some without a grid), then an output of about the right length for it.
    fn input_size_and_output() -> impl Strategy<Value = (u32, Vec<f32>)> {
        let sizes = prop_oneof![4 => Just(32u32), 2 => Just(64), 1 => Just(48), 1 => Just(0)];
        let columns = prop_oneof![1 => 0usize..6, 3 => 6usize..12];
        let extra = prop_oneof![4 => Just(0usize), 1 => 1usize..5];
        (sizes, columns, extra).prop_flat_map(|(input_size, columns, extra)| {
            let len = grid_cells(input_size).count() * columns + extra;
            (
                Just(input_size),
                proptest::collection::vec(any_value(), len),
            )
        })
    }

    proptest! {
        #[test]
        fn decode_never_panics_nor_returns_nan_boxes_or_scores_outside_zero_to_one(
            (input_size, output) in input_size_and_output(),
            scale in prop_oneof![3 => 0.01f32..10.0, 1 => any_value()],
            source_width in any::<u32>(),
            source_height in any::<u32>(),
            score_threshold in any_value(),
            nms_iou in any_value(),
        ) {
            let config = YoloxConfig { input_size, score_threshold, nms_iou };
            let letterbox = Letterbox { scale, source_width, source_height, input_size };
            if let Ok(detections) = decode(&output, &config, &letterbox, &COCO) {
                for pair in detections.windows(2) {
                    prop_assert!(pair[0].score >= pair[1].score);
                }
                let (width, height) = (source_width as f32, source_height as f32);
                for detection in detections {
                    prop_assert!((0.0..=1.0).contains(&detection.score), "{detection:?}");
                    let [x1, y1, x2, y2]: [f32; 4] = detection.bbox.into();
                    prop_assert!([x1, x2].iter().all(|x| (0.0..=width).contains(x)), "{detection:?}");
                    prop_assert!([y1, y2].iter().all(|y| (0.0..=height).contains(y)), "{detection:?}");
                }
            }
        }
    }
}
