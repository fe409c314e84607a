//! Drawing detection boxes and labels onto a frame (`?boxes=true`), and
//! shrinking it to a thumbnail (`?width=`).

use std::io::Cursor;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use font8x8::UnicodeFonts;
use image::{Rgb, RgbImage};
use lastseen_shared::Detection;

use crate::detect::ImageError;

const LINE: u32 = 3;
const GLYPH: u32 = 8;
const TEXT_SCALE: u32 = 2;
const PALETTE: [[u8; 3]; 6] = [
    [255, 64, 64],
    [64, 200, 64],
    [64, 128, 255],
    [255, 190, 0],
    [200, 64, 255],
    [0, 210, 210],
];
const JPEG_QUALITY: u8 = 85;

/// Decodes `jpeg`, draws each of `boxes` with its `label score`, shrinks
/// the result to `width` pixels wide (keeping the aspect ratio; never
/// enlarging), and re-encodes it.
pub(super) fn render(
    jpeg: &[u8],
    boxes: &[Detection],
    width: Option<u32>,
    max_pixels: u64,
) -> Result<Vec<u8>, ImageError> {
    let mut image = crate::detect::decode_jpeg(jpeg, max_pixels)?;
    draw_detections(&mut image, boxes);
    if let Some(width) = width.filter(|&w| w < image.width()) {
        image = shrink(&image, width)?;
    }
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&image)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    Ok(out.into_inner())
}

/// `image` scaled to `width` pixels wide, the height in proportion (at least 1).
fn shrink(image: &RgbImage, width: u32) -> Result<RgbImage, ImageError> {
    let height = ((u64::from(image.height()) * u64::from(width)) / u64::from(image.width()))
        .clamp(1, u64::from(image.height())) as u32;
    let source = ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        PixelType::U8x3,
    )
    .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let mut target = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    RgbImage::from_raw(width, height, target.into_vec())
        .ok_or_else(|| ImageError::Corrupt("the thumbnail has the wrong size".to_owned()))
}

fn draw_detections(image: &mut RgbImage, detections: &[Detection]) {
    for (index, detection) in detections.iter().enumerate() {
        let color = Rgb(PALETTE[index % PALETTE.len()]);
        let b = detection.bbox;
        let (x1, y1) = (b.x1.max(0.0) as u32, b.y1.max(0.0) as u32);
        let (x2, y2) = (b.x2.max(0.0) as u32, b.y2.max(0.0) as u32);
        draw_rect(image, x1, y1, x2, y2, color);
        let caption = format!("{} {:.2}", detection.label, detection.score);
        let caption_height = GLYPH * TEXT_SCALE + 4;
        let text_y = if y1 >= caption_height {
            y1 - caption_height
        } else {
            y1
        };
        let caption_width = caption.chars().count() as u32 * GLYPH * TEXT_SCALE + 4;
        fill_rect(
            image,
            x1,
            text_y,
            x1 + caption_width,
            text_y + caption_height,
            color,
        );
        draw_text(image, x1 + 2, text_y + 2, &caption, Rgb([0, 0, 0]));
    }
}

fn put(image: &mut RgbImage, x: u32, y: u32, color: Rgb<u8>) {
    if x < image.width() && y < image.height() {
        image.put_pixel(x, y, color);
    }
}

fn fill_rect(image: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, color: Rgb<u8>) {
    let (x2, y2) = (x2.min(image.width()), y2.min(image.height()));
    for y in y1..y2 {
        for x in x1..x2 {
            put(image, x, y, color);
        }
    }
}

fn draw_rect(image: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, color: Rgb<u8>) {
    fill_rect(image, x1, y1, x2 + 1, y1 + LINE, color);
    fill_rect(
        image,
        x1,
        y2.saturating_sub(LINE - 1),
        x2 + 1,
        y2 + 1,
        color,
    );
    fill_rect(image, x1, y1, x1 + LINE, y2 + 1, color);
    fill_rect(
        image,
        x2.saturating_sub(LINE - 1),
        y1,
        x2 + 1,
        y2 + 1,
        color,
    );
}

fn draw_text(image: &mut RgbImage, x: u32, y: u32, text: &str, color: Rgb<u8>) {
    for (index, ch) in text.chars().enumerate() {
        let Some(glyph) = font8x8::BASIC_FONTS.get(ch) else {
            continue;
        };
        let origin = x + index as u32 * GLYPH * TEXT_SCALE;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..GLYPH {
                if bits & (1 << col) != 0 {
                    let (px, py) = (origin + col * TEXT_SCALE, y + row as u32 * TEXT_SCALE);
                    fill_rect(image, px, py, px + TEXT_SCALE, py + TEXT_SCALE, color);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_shared::Label;

    #[test]
    fn draws_the_box_in_its_colour_and_keeps_the_size() {
        let source = RgbImage::from_pixel(200, 100, Rgb([255, 255, 255]));
        let mut jpeg = Cursor::new(Vec::new());
        source
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        let detection = Detection {
            label: Label::parse("cup").unwrap(),
            score: 0.9,
            bbox: [50.0, 40.0, 150.0, 90.0].into(),
        };
        let drawn = render(jpeg.get_ref(), &[detection], None, 1 << 20).unwrap();
        let image = image::load_from_memory(&drawn).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (200, 100));
        let edge = image.get_pixel(100, 89);
        assert!(
            edge[0] > 200 && edge[1] < 120 && edge[2] < 120,
            "box edge is {edge:?}"
        );
        let inside = image.get_pixel(100, 65);
        assert!(inside[1] > 200, "inside is {inside:?}");
    }

    #[test]
    fn boxes_outside_the_image_do_not_panic() {
        let source = RgbImage::from_pixel(20, 20, Rgb([0, 0, 0]));
        let mut jpeg = Cursor::new(Vec::new());
        source
            .write_to(&mut jpeg, image::ImageFormat::Jpeg)
            .unwrap();
        let detection = Detection {
            label: Label::parse("dog").unwrap(),
            score: 1.0,
            bbox: [-50.0, 15.0, 5000.0, 9000.0].into(),
        };
        assert!(render(jpeg.get_ref(), &[detection], None, 1 << 20).is_ok());
    }

    fn jpeg_of(image: &RgbImage) -> Vec<u8> {
        let mut jpeg = Cursor::new(Vec::new());
        image.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        jpeg.into_inner()
    }

    #[test]
    fn a_thumbnail_keeps_the_aspect_ratio_and_the_picture() {
        // Left half red, right half blue.
        let source = RgbImage::from_fn(400, 200, |x, _| {
            if x < 200 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        let thumb = render(&jpeg_of(&source), &[], Some(100), 1 << 20).unwrap();
        let image = image::load_from_memory(&thumb).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (100, 50));
        assert!(
            image.get_pixel(10, 25)[0] > 200,
            "{:?}",
            image.get_pixel(10, 25)
        );
        assert!(
            image.get_pixel(90, 25)[2] > 200,
            "{:?}",
            image.get_pixel(90, 25)
        );
    }

    #[test]
    fn a_thumbnail_is_never_enlarged() {
        let source = RgbImage::from_pixel(40, 30, Rgb([9, 9, 9]));
        let thumb = render(&jpeg_of(&source), &[], Some(400), 1 << 20).unwrap();
        let image = image::load_from_memory(&thumb).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (40, 30));
    }

    #[test]
    fn a_very_flat_image_keeps_at_least_one_row() {
        let source = RgbImage::from_pixel(1000, 2, Rgb([9, 9, 9]));
        let thumb = render(&jpeg_of(&source), &[], Some(16), 1 << 20).unwrap();
        let image = image::load_from_memory(&thumb).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (16, 1));
    }
}
