//! Letterboxing an RGB image into the model's NCHW, BGR, 0..255 input tensor.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{
    FilterType, ImageBufferError, PixelType, ResizeAlg, ResizeError, ResizeOptions, Resizer,
};
use image::RgbImage;

/// The grey YOLOX was trained with around letterboxed images.
const PAD_VALUE: f32 = 114.0;

/// Why an image could not be turned into an input tensor.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("the image is empty ({width}x{height})")]
    EmptyImage { width: u32, height: u32 },
    #[error("the model input size is zero")]
    ZeroInputSize,
    #[error("the input tensor holds {actual} values, expected {expected}")]
    TensorLength { expected: usize, actual: usize },
    #[error("an image buffer does not match its dimensions")]
    ImageBuffer(#[from] ImageBufferError),
    #[error("resizing the image failed")]
    Resize(#[from] ResizeError),
}

/// How a source image was fitted into the model input: what
/// [`decode`](super::decode) needs to map boxes back to source pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Letterbox {
    /// Input pixels per source pixel, `min(S / width, S / height)`.
    pub scale: f32,
    pub source_width: u32,
    pub source_height: u32,
    pub input_size: u32,
}

impl Letterbox {
    /// The letterbox of a `source_width` x `source_height` image in an
    /// `input_size` square.
    pub fn new(source_width: u32, source_height: u32, input_size: u32) -> Self {
        let fitted = Fit::new(source_width, source_height, input_size);
        Self {
            scale: fitted.ratio as f32,
            source_width,
            source_height,
            input_size,
        }
    }
}

/// The resize ratio and resized size, computed in f64 and truncated as the
/// YOLOX demo does (`int(w * r)`), so a 640-wide frame becomes 416 wide: an f32
/// ratio would make it 415 and shift every pixel against the reference.
struct Fit {
    ratio: f64,
    width: u32,
    height: u32,
}

impl Fit {
    fn new(width: u32, height: u32, side: u32) -> Self {
        let side_f = f64::from(side);
        let ratio = (side_f / f64::from(height)).min(side_f / f64::from(width));
        // A sliver such as 10000x1 would round to zero rows; keep one.
        let resized = |len: u32| ((f64::from(len) * ratio) as u32).clamp(1, side.max(1));
        Self {
            ratio,
            width: resized(width),
            height: resized(height),
        }
    }
}

/// Letterboxes images into input tensors, reusing its resize buffers; keep one
/// per worker thread.
#[derive(Debug)]
pub struct Preprocessor {
    input_size: u32,
    resizer: Resizer,
    options: ResizeOptions,
    resized: Vec<u8>,
}

impl Preprocessor {
    pub fn new(input_size: u32) -> Self {
        // The reference detections (../shared/fixtures/images/expected.json)
        // were computed on Pillow's BILINEAR resize, which widens the kernel
        // when downscaling (antialias); `Convolution(Bilinear)` is the same
        // algorithm. OpenCV's INTER_LINEAR (`Interpolation`) moves dog.jpg's
        // scores by up to 0.12 and its boxes by 13 px.
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        Self {
            input_size,
            resizer: Resizer::new(),
            options,
            resized: Vec::new(),
        }
    }

    pub fn input_size(&self) -> u32 {
        self.input_size
    }

    /// Number of f32 values in one input tensor: 3 * S * S.
    pub fn tensor_len(&self) -> usize {
        let side = self.input_size as usize;
        side.saturating_mul(side).saturating_mul(3)
    }

    /// Letterboxes `image` into `tensor` (len must be [`Self::tensor_len`]):
    /// NCHW, BGR, 0..255, the image at the top-left and 114 around it.
    pub fn run(
        &mut self,
        image: &RgbImage,
        tensor: &mut [f32],
    ) -> Result<Letterbox, PreprocessError> {
        let (width, height) = image.dimensions();
        if width == 0 || height == 0 {
            return Err(PreprocessError::EmptyImage { width, height });
        }
        if self.input_size == 0 {
            return Err(PreprocessError::ZeroInputSize);
        }
        let expected = self.tensor_len();
        if tensor.len() != expected {
            return Err(PreprocessError::TensorLength {
                expected,
                actual: tensor.len(),
            });
        }

        let fitted = Fit::new(width, height, self.input_size);
        let pixels: &[u8] = if (fitted.width, fitted.height) == (width, height) {
            image.as_raw()
        } else {
            // Grows to at most 3 * S * S bytes, then is reused.
            self.resized
                .resize(fitted.width as usize * fitted.height as usize * 3, 0);
            let source = ImageRef::new(width, height, image.as_raw(), PixelType::U8x3)?;
            let mut target = Image::from_slice_u8(
                fitted.width,
                fitted.height,
                &mut self.resized,
                PixelType::U8x3,
            )?;
            self.resizer.resize(&source, &mut target, &self.options)?;
            &self.resized
        };
        let image_area = (fitted.width as usize, fitted.height as usize);
        write_tensor(pixels, image_area, self.input_size as usize, tensor);

        Ok(Letterbox {
            scale: fitted.ratio as f32,
            source_width: width,
            source_height: height,
            input_size: self.input_size,
        })
    }
}

/// Writes each tensor row once: the image pixels, RGB swapped to BGR, then the
/// padding. `tensor` is 3 * side * side long and the image fits in the square
/// (both checked by [`Preprocessor::run`]).
fn write_tensor(pixels: &[u8], (width, height): (usize, usize), side: usize, tensor: &mut [f32]) {
    let plane = side * side;
    let (blue, rest) = tensor.split_at_mut(plane);
    let (green, red) = rest.split_at_mut(plane);
    let mut image_rows = pixels.chunks_exact(width * 3).take(height);
    let tensor_rows = blue
        .chunks_exact_mut(side)
        .zip(green.chunks_exact_mut(side))
        .zip(red.chunks_exact_mut(side));
    for ((blue_row, green_row), red_row) in tensor_rows {
        let filled = match image_rows.next() {
            Some(image_row) => {
                let (rgb, _) = image_row.as_chunks::<3>();
                let outputs = blue_row
                    .iter_mut()
                    .zip(green_row.iter_mut())
                    .zip(red_row.iter_mut());
                for (((b, g), r), &[red_value, green_value, blue_value]) in outputs.zip(rgb) {
                    *b = f32::from(blue_value);
                    *g = f32::from(green_value);
                    *r = f32::from(red_value);
                }
                width
            }
            None => 0,
        };
        for row in [blue_row, green_row, red_row] {
            if let Some(padding) = row.get_mut(filled..) {
                padding.fill(PAD_VALUE);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    /// Value of channel `c` (0 = blue) at (x, y) in a tensor of side `side`.
    fn at(tensor: &[f32], side: usize, c: usize, x: usize, y: usize) -> f32 {
        tensor[c * side * side + y * side + x]
    }

    fn letterbox(image: &RgbImage, side: u32) -> (Letterbox, Vec<f32>) {
        let mut preprocessor = Preprocessor::new(side);
        let mut tensor = vec![f32::NAN; preprocessor.tensor_len()];
        let letterbox = preprocessor.run(image, &mut tensor).unwrap();
        (letterbox, tensor)
    }

    #[test]
    fn a_wide_image_sits_top_left_with_114_padding_below() {
        let image = RgbImage::from_pixel(64, 32, Rgb([50, 50, 50]));
        let (letterbox, tensor) = letterbox(&image, 32);
        assert_eq!(
            letterbox,
            Letterbox {
                scale: 0.5,
                source_width: 64,
                source_height: 32,
                input_size: 32
            }
        );
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let expected = if y < 16 { 50.0 } else { 114.0 };
                    assert_eq!(at(&tensor, 32, c, x, y), expected, "c={c} x={x} y={y}");
                }
            }
        }
    }

    #[test]
    fn a_tall_image_is_padded_on_the_right() {
        let image = RgbImage::from_pixel(20, 40, Rgb([7, 7, 7]));
        let (letterbox, tensor) = letterbox(&image, 32);
        assert_eq!(letterbox.scale, 0.8);
        assert_eq!(at(&tensor, 32, 1, 15, 31), 7.0);
        assert_eq!(at(&tensor, 32, 1, 16, 0), 114.0);
    }

    #[test]
    fn a_640_by_360_frame_fills_the_whole_416_width() {
        let image = RgbImage::from_pixel(640, 360, Rgb([1, 2, 3]));
        let (letterbox, tensor) = letterbox(&image, 416);
        assert!((letterbox.scale - 0.65).abs() < 1e-6);
        assert_eq!(at(&tensor, 416, 0, 415, 233), 3.0);
        assert_eq!(at(&tensor, 416, 0, 415, 234), 114.0);
    }

    #[test]
    fn channel_order_is_bgr() {
        let image = RgbImage::from_pixel(10, 10, Rgb([255, 0, 0]));
        let (_, tensor) = letterbox(&image, 32);
        assert_eq!(at(&tensor, 32, 0, 3, 3), 0.0);
        assert_eq!(at(&tensor, 32, 1, 3, 3), 0.0);
        assert_eq!(at(&tensor, 32, 2, 3, 3), 255.0);
    }

    #[test]
    fn a_reused_preprocessor_leaves_no_pixels_of_the_previous_image() {
        let mut preprocessor = Preprocessor::new(32);
        let mut tensor = vec![0.0; preprocessor.tensor_len()];
        preprocessor
            .run(&RgbImage::from_pixel(32, 32, Rgb([9, 9, 9])), &mut tensor)
            .unwrap();
        preprocessor
            .run(
                &RgbImage::from_pixel(64, 16, Rgb([200, 200, 200])),
                &mut tensor,
            )
            .unwrap();
        assert_eq!(at(&tensor, 32, 0, 31, 7), 200.0);
        assert_eq!(at(&tensor, 32, 0, 0, 8), 114.0);
        assert_eq!(at(&tensor, 32, 2, 31, 31), 114.0);
    }

    #[test]
    fn a_tensor_of_the_wrong_length_is_an_error() {
        let mut preprocessor = Preprocessor::new(32);
        let mut tensor = vec![0.0; preprocessor.tensor_len() - 1];
        let result = preprocessor.run(&RgbImage::new(8, 8), &mut tensor);
        assert!(matches!(
            result,
            Err(PreprocessError::TensorLength {
                expected: 3072,
                actual: 3071
            })
        ));
    }

    #[test]
    fn an_empty_image_or_a_zero_input_size_is_an_error() {
        let mut preprocessor = Preprocessor::new(32);
        let mut tensor = vec![0.0; preprocessor.tensor_len()];
        let result = preprocessor.run(&RgbImage::new(0, 8), &mut tensor);
        assert!(matches!(
            result,
            Err(PreprocessError::EmptyImage {
                width: 0,
                height: 8
            })
        ));
        let result = Preprocessor::new(0).run(&RgbImage::new(8, 8), &mut []);
        assert!(matches!(result, Err(PreprocessError::ZeroInputSize)));
    }

    /// Pillow's BILINEAR weights for one output pixel on one axis: the triangle
    /// is widened by the downscale factor (antialiasing), then normalised.
    fn pillow_weights(dst: usize, src_len: usize, dst_len: usize) -> Vec<(usize, f64)> {
        let scale = src_len as f64 / dst_len as f64;
        let support = scale.max(1.0);
        let center = (dst as f64 + 0.5) * scale;
        let weights: Vec<(usize, f64)> = (0..src_len)
            .map(|x| {
                (
                    x,
                    (1.0 - ((x as f64 + 0.5 - center) / support).abs()).max(0.0),
                )
            })
            .filter(|&(_, w)| w > 0.0)
            .collect();
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        weights.into_iter().map(|(x, w)| (x, w / total)).collect()
    }

    #[test]
    fn resizing_matches_pillow_bilinear_within_one_level() {
        let image = RgbImage::from_fn(40, 30, |x, y| {
            let v = |c: u32| ((x * 7 + y * 13 + c * 50) % 256) as u8;
            Rgb([v(0), v(1), v(2)])
        });
        let (letterbox, tensor) = letterbox(&image, 32);
        assert_eq!(letterbox.scale, 0.8);
        for y in 0..24 {
            let rows = pillow_weights(y, 30, 24);
            for x in 0..32 {
                let columns = pillow_weights(x, 40, 32);
                for c in 0..3 {
                    let mut expected = 0.0;
                    for &(sy, wy) in &rows {
                        for &(sx, wx) in &columns {
                            let source = f64::from(image.get_pixel(sx as u32, sy as u32)[c]);
                            expected += source * wx * wy;
                        }
                    }
                    let actual = f64::from(at(&tensor, 32, 2 - c, x, y));
                    let message = format!("x={x} y={y} c={c}: {actual} vs {expected}");
                    assert!((actual - expected.round()).abs() <= 1.0, "{message}");
                }
            }
        }
    }
}
