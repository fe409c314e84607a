//! Unchanged scenes: when a frame's detections match those of the device's
//! previous image, the frame keeps its rows but stores no image of its own.
//!
//! "Match" is: the same multiset of labels, and a one-to-one pairing of the
//! boxes, label with label, where every pair overlaps with at least the
//! configured IoU. The pairing is greedy, best overlap first; in the rare
//! case it misses a pairing that exists, the frame simply stores its image.

use lastseen_shared::Detection;

/// The `skip_unchanged_images` and `unchanged_min_iou` settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UnchangedImages {
    pub enabled: bool,
    pub min_iou: f32,
}

impl UnchangedImages {
    /// Every frame stores its own image.
    pub const OFF: Self = Self {
        enabled: false,
        min_iou: 1.0,
    };
}

/// True when `current` shows what `previous` showed: same labels, as many
/// of each, and each box paired with one of the same label at `min_iou` or more.
pub fn same_scene(previous: &[Detection], current: &[Detection], min_iou: f32) -> bool {
    if previous.len() != current.len() {
        return false;
    }
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, before) in previous.iter().enumerate() {
        for (j, now) in current.iter().enumerate() {
            if before.label == now.label {
                let iou = before.bbox.iou(&now.bbox);
                if iou >= min_iou {
                    pairs.push((iou, i, j));
                }
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut previous_taken = vec![false; previous.len()];
    let mut current_taken = vec![false; current.len()];
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !previous_taken[i] && !current_taken[j] {
            previous_taken[i] = true;
            current_taken[j] = true;
            matched += 1;
        }
    }
    matched == current.len()
}

#[cfg(test)]
mod tests {
    use lastseen_shared::{BBox, Label};

    use super::*;

    fn det(label: &str, b: [f32; 4]) -> Detection {
        Detection {
            label: Label::parse(label).unwrap(),
            score: 0.8,
            bbox: BBox::from(b),
        }
    }

    const CUP: [f32; 4] = [100.0, 100.0, 200.0, 200.0];
    const BAG: [f32; 4] = [300.0, 50.0, 400.0, 250.0];

    #[test]
    fn identical_detections_in_any_order_are_the_same_scene() {
        let before = [det("cup", CUP), det("bag", BAG)];
        let now = [det("bag", BAG), det("cup", CUP)];
        assert!(same_scene(&before, &now, 0.9));
    }

    #[test]
    fn boxes_that_moved_a_little_still_match_and_a_lot_do_not() {
        let before = [det("cup", CUP)];
        // 2 px to the right: IoU 98/102, about 0.96.
        assert!(same_scene(
            &before,
            &[det("cup", [102.0, 100.0, 202.0, 200.0])],
            0.9
        ));
        // 30 px: IoU 70/130, about 0.54.
        assert!(!same_scene(
            &before,
            &[det("cup", [130.0, 100.0, 230.0, 200.0])],
            0.9
        ));
        assert!(same_scene(
            &before,
            &[det("cup", [130.0, 100.0, 230.0, 200.0])],
            0.5
        ));
    }

    #[test]
    fn another_label_or_another_count_is_a_new_scene() {
        let before = [det("cup", CUP)];
        assert!(!same_scene(&before, &[det("bowl", CUP)], 0.5));
        assert!(!same_scene(
            &before,
            &[det("cup", CUP), det("cup", BAG)],
            0.5
        ));
        assert!(!same_scene(&before, &[], 0.5));
        assert!(!same_scene(
            &[det("cup", CUP), det("bag", BAG)],
            &[det("cup", CUP), det("cup", CUP)],
            0.5
        ));
    }

    #[test]
    fn two_empty_frames_are_the_same_scene() {
        assert!(same_scene(&[], &[], 0.9));
    }

    #[test]
    fn one_box_cannot_stand_for_two() {
        // Both new cups overlap the first old cup best; the pairing must
        // still use each box once, so the far one fails.
        let before = [det("cup", CUP), det("cup", [500.0, 500.0, 600.0, 600.0])];
        let now = [det("cup", CUP), det("cup", [101.0, 100.0, 201.0, 200.0])];
        assert!(!same_scene(&before, &now, 0.9));
        let now = [det("cup", [501.0, 500.0, 601.0, 600.0]), det("cup", CUP)];
        assert!(same_scene(&before, &now, 0.9));
    }
}
