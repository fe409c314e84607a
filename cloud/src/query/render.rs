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

/// Decodes `jpeg`, shrinks it to `width` pixels wide (keeping the aspect
/// ratio; never enlarging), draws each of `boxes` with its `label score`
/// (their coordinates are the frame's, scaled with it), and re-encodes it.
///
/// A thumbnail is decoded at reduced scale (see [`decode_for_width`]): a
/// 160-pixel copy of a 4K frame decodes an eighth of its width and height.
pub(super) fn render(
    jpeg: &[u8],
    boxes: &[Detection],
    width: Option<u32>,
    max_pixels: u64,
) -> Result<Vec<u8>, ImageError> {
    let (mut image, (full_width, full_height)) = match width {
        Some(width) => decode_for_width(jpeg, width, max_pixels)?,
        None => {
            let image = crate::detect::decode_jpeg(jpeg, max_pixels)?;
            let size = image.dimensions();
            (image, size)
        }
    };
    if let Some(width) = width.filter(|&w| w < full_width) {
        image = shrink(
            &image,
            width,
            thumbnail_height(full_width, full_height, width),
        )?;
    }
    let factor = image.width() as f32 / full_width.max(1) as f32;
    draw_detections(&mut image, boxes, factor);
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&image)
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    Ok(out.into_inner())
}

/// `jpeg` decoded at the smallest of the JPEG scales 1/8, 1/4, 1/2 and 1
/// that is still at least `width` pixels wide (the IDCT makes the smaller
/// image directly: the full-size one is never in memory), and the frame's
/// full size. The declared size is checked against `max_pixels` first.
/// Images `jpeg-decoder` cannot scale (CMYK, 16-bit, ...) are decoded whole.
pub(super) fn decode_for_width(
    jpeg: &[u8],
    width: u32,
    max_pixels: u64,
) -> Result<(RgbImage, (u32, u32)), ImageError> {
    let (full_width, full_height) = crate::detect::jpeg_dimensions(jpeg, max_pixels)?;
    let eighths = [1u32, 2, 4, 8]
        .into_iter()
        .find(|&n| scaled(full_width, n) >= width)
        .unwrap_or(8);
    if eighths < 8
        && let Some(image) = decode_scaled(jpeg, full_width, full_height, eighths)
    {
        return Ok((image, (full_width, full_height)));
    }
    let image = crate::detect::decode_jpeg(jpeg, max_pixels)?;
    Ok((image, (full_width, full_height)))
}

/// A side of the image decoded at `eighths`/8, as the IDCT scaling rounds it.
fn scaled(side: u32, eighths: u32) -> u32 {
    (side * eighths).div_ceil(8)
}

/// The image at `eighths`/8 of its size, or None when this decoder cannot
/// give it (the caller then decodes it whole, which reports any error).
fn decode_scaled(jpeg: &[u8], width: u32, height: u32, eighths: u32) -> Option<RgbImage> {
    let (out_width, out_height) = (scaled(width, eighths), scaled(height, eighths));
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(jpeg));
    decoder.read_info().ok()?;
    let asked = (
        u16::try_from(out_width).ok()?,
        u16::try_from(out_height).ok()?,
    );
    let (got_width, got_height) = decoder.scale(asked.0, asked.1).ok()?;
    if (u32::from(got_width), u32::from(got_height)) != (out_width, out_height) {
        return None;
    }
    let pixels = decoder.decode().ok()?;
    let rgb = match decoder.info()?.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        _ => return None,
    };
    RgbImage::from_raw(out_width, out_height, rgb)
}

/// The height of a `width`-pixel copy of a `full_width` x `full_height`
/// frame, in proportion (at least 1).
fn thumbnail_height(full_width: u32, full_height: u32, width: u32) -> u32 {
    ((u64::from(full_height) * u64::from(width)) / u64::from(full_width.max(1)))
        .clamp(1, u64::from(full_height.max(1))) as u32
}

/// `image` resized to `width` x `height`.
fn shrink(image: &RgbImage, width: u32, height: u32) -> Result<RgbImage, ImageError> {
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

/// Draws `detections`, whose coordinates are the frame's times `factor`.
fn draw_detections(image: &mut RgbImage, detections: &[Detection], factor: f32) {
    let at = |v: f32| (v * factor).max(0.0) as u32;
    for (index, detection) in detections.iter().enumerate() {
        let color = Rgb(PALETTE[index % PALETTE.len()]);
        let b = detection.bbox;
        let (x1, y1) = (at(b.x1), at(b.y1));
        let (x2, y2) = (at(b.x2), at(b.y2));
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

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/images")
            .join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if name.ends_with(".jpg") {
            return bytes;
        }
        jpeg_of(&image::load_from_memory(&bytes).unwrap().into_rgb8())
    }

    fn mean_abs_difference(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let total: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| u64::from(x.abs_diff(*y)))
            .sum();
        total as f64 / a.as_raw().len() as f64
    }

    /// The reduced-scale decode picks the smallest JPEG scale at least as
    /// wide as asked, and its thumbnail is the full decode's, shrunk, to
    /// within a few levels on average.
    #[test]
    fn a_thumbnail_decoded_at_reduced_scale_matches_a_full_decode_and_shrink() {
        for name in ["dog.jpg", "coffee.png", "chelsea.png"] {
            let jpeg = fixture(name);
            let full = crate::detect::decode_jpeg(&jpeg, 1 << 24).unwrap();
            let full_width = full.width();
            for width in [40, 90, 100, 160, 200, 320, 500] {
                let (decoded, reported) = decode_for_width(&jpeg, width, 1 << 24).unwrap();
                assert_eq!(reported, full.dimensions());
                // The smallest of full/8, full/4, full/2, full not narrower than asked.
                let expected = [1, 2, 4, 8]
                    .into_iter()
                    .map(|n| (full_width * n).div_ceil(8))
                    .find(|&w| w >= width)
                    .unwrap_or(full_width);
                assert_eq!(decoded.width(), expected, "{name} at {width}");
                if width >= full_width {
                    continue;
                }
                let height = thumbnail_height(full_width, full.height(), width);
                let thumb = shrink(&decoded, width, height).unwrap();
                let reference = shrink(&full, width, height).unwrap();
                assert_eq!(thumb.width(), width);
                assert_eq!(
                    thumb.dimensions(),
                    reference.dimensions(),
                    "{name} at {width}"
                );
                let difference = mean_abs_difference(&thumb, &reference);
                assert!(difference < 5.0, "{name} at {width}: {difference}");
                // And through render, encoded: the size asked.
                let rendered = render(&jpeg, &[], Some(width), 1 << 24).unwrap();
                let rendered = image::load_from_memory(&rendered).unwrap().into_rgb8();
                assert_eq!(rendered.dimensions(), reference.dimensions());
                assert!(
                    mean_abs_difference(&rendered, &reference) < 6.0,
                    "{name} at {width}"
                );
            }
        }
    }

    #[test]
    fn a_reduced_decode_still_checks_the_pixel_limit() {
        let jpeg = fixture("dog.jpg");
        assert!(matches!(
            decode_for_width(&jpeg, 100, 1000),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_grey_jpeg_is_decoded_at_reduced_scale_too() {
        let grey = image::GrayImage::from_pixel(800, 400, image::Luma([77]));
        let mut jpeg = Cursor::new(Vec::new());
        grey.write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
        let (decoded, _) = decode_for_width(jpeg.get_ref(), 100, 1 << 20).unwrap();
        assert_eq!(decoded.dimensions(), (100, 50));
        assert!(
            decoded
                .pixels()
                .all(|p| p[0].abs_diff(77) <= 2 && p[0] == p[2])
        );
    }

    #[test]
    fn boxes_on_a_thumbnail_are_scaled_with_it() {
        let source = RgbImage::from_pixel(800, 400, Rgb([255, 255, 255]));
        let detection = Detection {
            label: Label::parse("cup").unwrap(),
            score: 0.9,
            bbox: [200.0, 160.0, 600.0, 360.0].into(),
        };
        let thumb = render(&jpeg_of(&source), &[detection], Some(200), 1 << 20).unwrap();
        let image = image::load_from_memory(&thumb).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (200, 100));
        // The bottom edge, at a quarter of 360.
        let edge = image.get_pixel(100, 89);
        assert!(
            edge[0] > 200 && edge[1] < 120 && edge[2] < 120,
            "box edge is {edge:?}"
        );
        // Outside the box, right of it, stays white.
        let outside = image.get_pixel(170, 95);
        assert!(outside[1] > 200, "outside is {outside:?}");
    }

    #[test]
    fn a_very_flat_image_keeps_at_least_one_row() {
        let source = RgbImage::from_pixel(1000, 2, Rgb([9, 9, 9]));
        let thumb = render(&jpeg_of(&source), &[], Some(16), 1 << 20).unwrap();
        let image = image::load_from_memory(&thumb).unwrap().into_rgb8();
        assert_eq!(image.dimensions(), (16, 1));
    }
}
