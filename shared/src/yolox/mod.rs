//! YOLOX-Nano pre- and post-processing, without the inference in between.
//!
//! The contract is the one of the exported `yolox_nano.onnx`:
//!
//! - Input: float32 `[1, 3, S, S]`, NCHW, **BGR**, raw 0..255 values. The
//!   source image is resized with ratio `r = min(S / w, S / h)` (bilinear with
//!   Pillow's antialiasing, as the reference detections were computed), placed
//!   at the top-left and the rest padded with 114. [`Preprocessor`] writes that tensor and returns
//!   the [`Letterbox`] needed to map boxes back.
//! - Output: float32 `[1, N, 5 + C]`, one row per grid cell of the strides 8,
//!   16 and 32 (in that order, each grid row-major), columns raw `cx, cy, w, h`,
//!   objectness and `C` class probabilities. [`decode`] turns it into
//!   [`Detection`](crate::Detection)s in source pixels: per-class scores
//!   `objectness * probability` above a threshold, class-aware NMS, best first.

mod decode;
mod letterbox;

pub use decode::{DecodeError, decode};
pub use letterbox::{Letterbox, PreprocessError, Preprocessor};

/// The knobs of a YOLOX detector; the defaults are the ones the reference
/// detections in the fixtures were computed with.
#[derive(Clone, Debug, PartialEq)]
pub struct YoloxConfig {
    /// Side `S` of the square model input; a multiple of 32.
    pub input_size: u32,
    /// A detection is kept when its score is strictly above this.
    pub score_threshold: f32,
    /// Within one class, a box overlapping a better one by more than this IoU is dropped.
    pub nms_iou: f32,
}

impl Default for YoloxConfig {
    fn default() -> Self {
        Self {
            input_size: 416,
            score_threshold: 0.3,
            nms_iou: 0.45,
        }
    }
}
