//! The small grayscale copy that the light and change gates work on.

use image::RgbImage;

/// Luma (BT.601 weights) averaged over square blocks of the source: a
/// 640x360 frame with `target_height = 100` becomes 213x120. Averaging whole
/// blocks (instead of picking one pixel per block) already divides the
/// sensor noise by the block side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Thumb {
    pub width: usize,
    pub height: usize,
    pub luma: Vec<u8>,
    /// Per-column sums of the block row being built, reused between frames.
    sums: Vec<u32>,
}

impl Thumb {
    /// Refills `self` from `image`, reusing its buffers.
    pub fn fill(&mut self, image: &RgbImage, target_height: u32) {
        let (src_w, src_h) = (image.width() as usize, image.height() as usize);
        self.luma.clear();
        if src_w == 0 || src_h == 0 {
            (self.width, self.height) = (0, 0);
            return;
        }
        let block = (src_h / target_height.max(1) as usize).clamp(1, src_w);
        self.width = src_w / block;
        self.height = src_h / block;
        self.luma.reserve(self.width * self.height);
        self.sums.clear();
        self.sums.resize(self.width, 0);
        let raw = image.as_raw();
        let row_bytes = src_w * 3;
        // Weights sum to 256, so one shift undoes them along with the block area.
        let divisor = (block * block * 256) as u32;
        for ty in 0..self.height {
            self.sums.iter_mut().for_each(|s| *s = 0);
            for sy in ty * block..(ty * block + block).min(src_h) {
                let row = &raw[sy * row_bytes..sy * row_bytes + self.width * block * 3];
                for (sum, pixels) in self.sums.iter_mut().zip(row.chunks_exact(block * 3)) {
                    let mut acc = 0u32;
                    for px in pixels.chunks_exact(3) {
                        acc += 77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32;
                    }
                    *sum += acc;
                }
            }
            self.luma.extend(
                self.sums
                    .iter()
                    .map(|&s| ((s + divisor / 2) / divisor) as u8),
            );
        }
    }

    pub fn len(&self) -> usize {
        self.luma.len()
    }

    pub fn is_empty(&self) -> bool {
        self.luma.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_640x360_frame_becomes_about_100_rows_of_block_means() {
        let mut image = RgbImage::from_pixel(640, 360, image::Rgb([100, 100, 100]));
        for x in 0..3 {
            for y in 0..3 {
                image.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        let mut thumb = Thumb::default();
        thumb.fill(&image, 100);
        assert_eq!((thumb.width, thumb.height), (213, 120));
        assert_eq!(thumb.luma[0], 255);
        assert_eq!(thumb.luma[1], 100);
        // Reuse keeps the size right when the source changes.
        thumb.fill(&RgbImage::new(32, 20), 100);
        assert_eq!((thumb.width, thumb.height, thumb.len()), (32, 20, 640));
    }
}
