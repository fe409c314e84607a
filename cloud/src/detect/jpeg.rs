//! Checking and decoding the JPEG bodies devices send.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::{DynamicImage, ImageDecoder, RgbImage};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the body is not a JPEG image")]
    NotJpeg,
    #[error("the JPEG image is truncated")]
    Truncated,
    #[error("the JPEG image is {width}x{height}, above the limit of {max_pixels} pixels")]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("the JPEG image cannot be decoded: {0}")]
    Corrupt(String),
}

const START_OF_IMAGE: [u8; 3] = [0xFF, 0xD8, 0xFF];
const END_OF_IMAGE: [u8; 2] = [0xFF, 0xD9];
/// Some encoders pad after the end marker; more than this is not padding.
const MAX_TRAILING_PADDING: usize = 64;

/// The cheap check done before a frame is queued: the start marker must open
/// the body and the end marker must close it. Decoders tolerate truncation
/// (they fill the missing rows with grey), so truncation is caught here.
pub fn sniff_jpeg(bytes: &[u8]) -> Result<(), ImageError> {
    if !bytes.starts_with(&START_OF_IMAGE) {
        return Err(ImageError::NotJpeg);
    }
    let tail_start = bytes
        .len()
        .saturating_sub(END_OF_IMAGE.len() + MAX_TRAILING_PADDING);
    let tail = bytes.get(tail_start..).unwrap_or_default();
    let Some(end) = tail.windows(2).rposition(|pair| pair == END_OF_IMAGE) else {
        return Err(ImageError::Truncated);
    };
    let padding = tail.get(end + 2..).unwrap_or_default();
    if padding.iter().all(|&b| b == 0x00 || b == 0xFF) {
        Ok(())
    } else {
        Err(ImageError::Truncated)
    }
}

/// The declared size, checked against `max_pixels`, without decoding pixels.
pub fn dimensions(bytes: &[u8], max_pixels: u64) -> Result<(u32, u32), ImageError> {
    sniff_jpeg(bytes)?;
    let decoder =
        JpegDecoder::new(Cursor::new(bytes)).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok((width, height))
}

/// Decodes to RGB after checking the declared size against `max_pixels`, so a
/// small body declaring a huge image cannot make the server allocate it.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, ImageError> {
    sniff_jpeg(bytes)?;
    let decoder =
        JpegDecoder::new(Cursor::new(bytes)).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImageError::Corrupt("the image has no pixels".to_owned()));
    }
    let image =
        DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    Ok(image.into_rgb8())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, 90])
        });
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_a_real_jpeg() {
        let image = decode(&tiny_jpeg(64, 48), 1 << 20).unwrap();
        assert_eq!(image.dimensions(), (64, 48));
    }

    #[test]
    fn rejects_a_png_as_not_jpeg() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(sniff_jpeg(png), Err(ImageError::NotJpeg));
        assert_eq!(sniff_jpeg(b""), Err(ImageError::NotJpeg));
    }

    #[test]
    fn rejects_a_truncated_jpeg() {
        let jpeg = tiny_jpeg(64, 48);
        for cut in [4, jpeg.len() / 2, jpeg.len() - 1] {
            assert_eq!(
                decode(&jpeg[..cut], 1 << 20),
                Err(ImageError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn accepts_padding_after_the_end_marker() {
        let mut jpeg = tiny_jpeg(16, 16);
        jpeg.extend_from_slice(&[0, 0, 0, 0]);
        assert!(decode(&jpeg, 1 << 20).is_ok());
    }

    #[test]
    fn rejects_an_image_above_the_pixel_limit_before_decoding() {
        let err = decode(&tiny_jpeg(64, 48), 1000).unwrap_err();
        assert!(
            matches!(
                err,
                ImageError::TooLarge {
                    width: 64,
                    height: 48,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_between_the_markers_is_an_error_not_a_panic() {
        let mut body = START_OF_IMAGE.to_vec();
        body.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
        body.extend_from_slice(&END_OF_IMAGE);
        assert!(decode(&body, 1 << 20).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn sniff_and_decode_never_panic_on_any_bytes(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
                let _ = sniff_jpeg(&body);
                let _ = decode(&body, 1 << 20);
            }

            #[test]
            fn decode_never_panics_on_damaged_real_jpegs(cut in 0usize..2000, flips in proptest::collection::vec((0usize..2000, any::<u8>()), 0..8)) {
                let mut body = tiny_jpeg(40, 30);
                for (at, byte) in flips {
                    let at = at % body.len();
                    body[at] = byte;
                }
                body.truncate(cut.max(3));
                let _ = decode(&body, 1 << 20);
            }
        }
    }
}
