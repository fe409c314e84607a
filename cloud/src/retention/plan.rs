//! Which of a user's oldest frames to delete to get under a byte budget.
//!
//! Pure logic: the sweep reads a batch of the oldest frames with, for each,
//! how many frames point at its image, and deletes the prefix this returns.

use crate::store::AgedFrame;

/// How many of `oldest` (oldest first) to delete to free at least `excess`
/// bytes, and how many bytes that frees.
///
/// An image is freed with the last frame pointing at it: frames of an
/// unchanged scene share one image, and deleting some of them frees nothing.
/// When the whole batch frees less than `excess`, the whole batch goes and
/// the caller reads the next one. At least one frame is chosen when there is
/// one, so a sweep always makes progress.
pub(crate) fn frames_to_free(oldest: &[AgedFrame], excess: u64) -> (usize, u64) {
    let mut remaining_refs: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut freed = 0u64;
    for (index, frame) in oldest.iter().enumerate() {
        let refs = remaining_refs
            .entry(frame.blob_key.as_str())
            .or_insert(frame.blob_refs);
        *refs = refs.saturating_sub(1);
        if *refs == 0 {
            freed = freed.saturating_add(frame.bytes);
        }
        if freed >= excess {
            return (index + 1, freed);
        }
    }
    (oldest.len(), freed)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use lastseen_shared::FrameId;

    use super::*;

    fn frame(key: &str, bytes: u64, blob_refs: u64) -> AgedFrame {
        AgedFrame {
            id: FrameId::new(),
            received_at: DateTime::<Utc>::UNIX_EPOCH,
            blob_key: key.to_owned(),
            bytes,
            blob_refs,
        }
    }

    #[test]
    fn deletes_just_enough_frames_with_images_of_their_own() {
        let oldest = [frame("a", 100, 1), frame("b", 100, 1), frame("c", 100, 1)];
        assert_eq!(frames_to_free(&oldest, 150), (2, 200));
        assert_eq!(frames_to_free(&oldest, 100), (1, 100));
        assert_eq!(frames_to_free(&oldest, 1), (1, 100));
    }

    #[test]
    fn a_shared_image_is_freed_only_with_its_last_frame() {
        // a is shared by three frames, all in the batch; b by one inside and
        // one outside the batch, so deleting its frame here frees nothing.
        let oldest = [
            frame("a", 500, 3),
            frame("a", 500, 3),
            frame("b", 70, 2),
            frame("a", 500, 3),
            frame("c", 10, 1),
        ];
        assert_eq!(frames_to_free(&oldest, 400), (4, 500));
        assert_eq!(frames_to_free(&oldest, 505), (5, 510));
    }

    #[test]
    fn a_batch_that_cannot_free_enough_is_deleted_whole() {
        let oldest = [frame("a", 10, 1), frame("b", 10, 5)];
        assert_eq!(frames_to_free(&oldest, 1_000), (2, 10));
    }

    #[test]
    fn nothing_to_free_or_nothing_to_delete() {
        assert_eq!(frames_to_free(&[], 100), (0, 0));
        // Called only when over budget, but zero excess still takes one frame.
        assert_eq!(frames_to_free(&[frame("a", 10, 1)], 0), (1, 10));
    }
}
