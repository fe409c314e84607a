//! The frame envelope: how one frame travels over MQTT (and anywhere else a
//! single binary message is handier than HTTP headers).
//!
//! Version 1, all integers big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `LSFE` |
//! | 4 | 1 | version, `1` |
//! | 5 | 1 | flags, `0` (reserved; a decoder rejects unknown bits) |
//! | 6 | 16 | device id (UUID bytes) |
//! | 22 | 8 | seq (u64) |
//! | 30 | 8 | captured_at, milliseconds since the Unix epoch (i64) |
//! | 38 | 2 | token length T (u16, at most [`MAX_TOKEN_LEN`]) |
//! | 40 | T | device token (UTF-8 JWT) |
//! | 40+T | 1 | measurement count M (at most [`MAX_MEASUREMENTS`]) |
//! | | M × (1 + N + 4) | name length N (1..=[`MAX_NAME_LEN`]), name (`[a-z0-9_]`), value (f32, finite) |
//! | | 4 | JPEG length J (u32) |
//! | | J | the JPEG, which ends the message (no trailing bytes) |
//!
//! Measurements are what the agent's gates saw (mean luma, changed fraction,
//! person score ...): the cloud records them, it never needs them to decide.
//! [`decode`] never panics and never allocates more than the input's size.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ids::DeviceId;

pub const MAGIC: [u8; 4] = *b"LSFE";
pub const VERSION: u8 = 1;
pub const MAX_TOKEN_LEN: usize = 4096;
pub const MAX_MEASUREMENTS: usize = 32;
pub const MAX_NAME_LEN: usize = 32;

/// Why bytes are not a valid envelope, or an envelope cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a lastseen frame envelope (bad magic)")]
    Magic,
    #[error("unsupported envelope version {0} (this build reads version {VERSION})")]
    Version(u8),
    #[error("unknown envelope flags {0:#04x}")]
    Flags(u8),
    #[error("the envelope ends early, inside `{0}`")]
    Truncated(&'static str),
    #[error("{0} bytes follow the JPEG; the JPEG must end the envelope")]
    TrailingBytes(usize),
    #[error("captured_at is out of range")]
    CapturedAt,
    #[error("the device token is longer than {MAX_TOKEN_LEN} bytes or not UTF-8")]
    Token,
    #[error("more than {MAX_MEASUREMENTS} measurements")]
    TooManyMeasurements,
    #[error("measurement name must be 1 to {MAX_NAME_LEN} characters of [a-z0-9_]")]
    MeasurementName,
    #[error("measurement `{0}` is not a finite number")]
    MeasurementValue(String),
    #[error("the JPEG is empty or larger than 4 GiB")]
    JpegLength,
}

/// One value a gate measured on the frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub name: String,
    pub value: f32,
}

/// Everything in an envelope except the image.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvelopeHeader {
    pub device: DeviceId,
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub token: String,
    pub measurements: Vec<Measurement>,
}

/// A decoded envelope; the JPEG borrows from the input, so a receiver holding
/// the message in a shared buffer can slice it without copying.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<'a> {
    pub header: EnvelopeHeader,
    pub jpeg: &'a [u8],
}

impl Envelope<'_> {
    /// Where the JPEG starts in the buffer this envelope was decoded from.
    pub fn jpeg_offset(&self, input: &[u8]) -> usize {
        input.len() - self.jpeg.len()
    }
}

/// Encodes a header and a JPEG into one message.
pub fn encode(header: &EnvelopeHeader, jpeg: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    if header.token.len() > MAX_TOKEN_LEN {
        return Err(EnvelopeError::Token);
    }
    if header.measurements.len() > MAX_MEASUREMENTS {
        return Err(EnvelopeError::TooManyMeasurements);
    }
    for m in &header.measurements {
        check_name(m.name.as_bytes())?;
        if !m.value.is_finite() {
            return Err(EnvelopeError::MeasurementValue(m.name.clone()));
        }
    }
    let jpeg_len = u32::try_from(jpeg.len()).map_err(|_| EnvelopeError::JpegLength)?;
    if jpeg_len == 0 {
        return Err(EnvelopeError::JpegLength);
    }
    let names: usize = header.measurements.iter().map(|m| 5 + m.name.len()).sum();
    let mut out = Vec::with_capacity(45 + header.token.len() + names + jpeg.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(header.device.as_uuid().as_bytes());
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(&header.captured_at.timestamp_millis().to_be_bytes());
    // Both fit: checked against MAX_TOKEN_LEN and MAX_MEASUREMENTS above.
    out.extend_from_slice(&(header.token.len() as u16).to_be_bytes());
    out.extend_from_slice(header.token.as_bytes());
    out.push(header.measurements.len() as u8);
    for m in &header.measurements {
        out.push(m.name.len() as u8);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&m.value.to_be_bytes());
    }
    out.extend_from_slice(&jpeg_len.to_be_bytes());
    out.extend_from_slice(jpeg);
    Ok(out)
}

/// Decodes a message. Checks the layout only: the token's signature and the
/// JPEG's contents are the receiver's business.
pub fn decode(input: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let mut r = Reader { rest: input };
    if r.take(4, "magic")? != MAGIC {
        return Err(EnvelopeError::Magic);
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(EnvelopeError::Version(version));
    }
    let flags = r.u8("flags")?;
    if flags != 0 {
        return Err(EnvelopeError::Flags(flags));
    }
    let device = DeviceId::from_uuid(Uuid::from_bytes(r.array("device id")?));
    let seq = u64::from_be_bytes(r.array("seq")?);
    let captured_ms = i64::from_be_bytes(r.array("captured_at")?);
    let captured_at =
        DateTime::from_timestamp_millis(captured_ms).ok_or(EnvelopeError::CapturedAt)?;
    let token_len = usize::from(u16::from_be_bytes(r.array("token length")?));
    if token_len > MAX_TOKEN_LEN {
        return Err(EnvelopeError::Token);
    }
    let token = std::str::from_utf8(r.take(token_len, "token")?)
        .map_err(|_| EnvelopeError::Token)?
        .to_owned();
    let count = usize::from(r.u8("measurement count")?);
    if count > MAX_MEASUREMENTS {
        return Err(EnvelopeError::TooManyMeasurements);
    }
    let mut measurements = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u8("measurement name length")?);
        let name = r.take(len, "measurement name")?;
        check_name(name)?;
        // check_name allows ASCII only, so this cannot fail.
        let name = String::from_utf8_lossy(name).into_owned();
        let value = f32::from_be_bytes(r.array("measurement value")?);
        if !value.is_finite() {
            return Err(EnvelopeError::MeasurementValue(name));
        }
        measurements.push(Measurement { name, value });
    }
    let jpeg_len = u32::from_be_bytes(r.array("jpeg length")?) as usize;
    if jpeg_len == 0 {
        return Err(EnvelopeError::JpegLength);
    }
    let jpeg = r.take(jpeg_len, "jpeg")?;
    if !r.rest.is_empty() {
        return Err(EnvelopeError::TrailingBytes(r.rest.len()));
    }
    Ok(Envelope {
        header: EnvelopeHeader {
            device,
            seq,
            captured_at,
            token,
            measurements,
        },
        jpeg,
    })
}

fn check_name(name: &[u8]) -> Result<(), EnvelopeError> {
    let valid = (1..=MAX_NAME_LEN).contains(&name.len())
        && name
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if valid {
        Ok(())
    } else {
        Err(EnvelopeError::MeasurementName)
    }
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], EnvelopeError> {
        if self.rest.len() < n {
            return Err(EnvelopeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, EnvelopeError> {
        Ok(self.take(1, field)?[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header() -> EnvelopeHeader {
        EnvelopeHeader {
            device: DeviceId::new(),
            seq: 42,
            captured_at: DateTime::from_timestamp_millis(1_763_900_000_123).unwrap(),
            token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".to_owned(),
            measurements: vec![
                Measurement {
                    name: "luma_mean".to_owned(),
                    value: 118.5,
                },
                Measurement {
                    name: "changed_fraction".to_owned(),
                    value: 0.031,
                },
            ],
        }
    }

    #[test]
    fn round_trips_and_the_jpeg_ends_the_message() {
        let header = header();
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
        let bytes = encode(&header, &jpeg).unwrap();
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded.header, header);
        assert_eq!(decoded.jpeg, jpeg);
        assert_eq!(&bytes[decoded.jpeg_offset(&bytes)..], jpeg);
        assert_eq!(&bytes[..6], b"LSFE\x01\x00");
    }

    #[test]
    fn every_prefix_is_truncated_and_trailing_bytes_are_refused() {
        let bytes = encode(&header(), b"\xFF\xD8jpeg").unwrap();
        for end in 0..bytes.len() {
            assert!(
                decode(&bytes[..end]).is_err(),
                "a prefix of {end} bytes decoded"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(EnvelopeError::TrailingBytes(1)));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let bytes = encode(&header(), b"\xFF\xD8").unwrap();
        let mut other = bytes.clone();
        other[0] = b'X';
        assert_eq!(decode(&other), Err(EnvelopeError::Magic));
        let mut other = bytes.clone();
        other[4] = 2;
        assert_eq!(decode(&other), Err(EnvelopeError::Version(2)));
        let mut other = bytes.clone();
        other[5] = 1;
        assert_eq!(decode(&other), Err(EnvelopeError::Flags(1)));
        let mut other = bytes;
        other[30..38].copy_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(decode(&other), Err(EnvelopeError::CapturedAt));
    }

    #[test]
    fn encode_refuses_bad_headers() {
        let mut bad = header();
        bad.token = "x".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(encode(&bad, b"j"), Err(EnvelopeError::Token));
        let mut bad = header();
        bad.measurements[0].name = "Luma".to_owned();
        assert_eq!(encode(&bad, b"j"), Err(EnvelopeError::MeasurementName));
        let mut bad = header();
        bad.measurements[0].value = f32::NAN;
        assert!(matches!(
            encode(&bad, b"j"),
            Err(EnvelopeError::MeasurementValue(_))
        ));
        assert_eq!(encode(&header(), b""), Err(EnvelopeError::JpegLength));
    }

    fn any_header() -> impl Strategy<Value = EnvelopeHeader> {
        (
            any::<u128>(),
            any::<u64>(),
            -8_000_000_000_000i64..8_000_000_000_000,
            "[A-Za-z0-9._-]{0,300}",
            proptest::collection::vec(("[a-z0-9_]{1,32}", -1e6f32..1e6), 0..8),
        )
            .prop_map(|(device, seq, ms, token, measurements)| EnvelopeHeader {
                device: DeviceId::from_uuid(Uuid::from_u128(device)),
                seq,
                captured_at: DateTime::from_timestamp_millis(ms).unwrap(),
                token,
                measurements: measurements
                    .into_iter()
                    .map(|(name, value)| Measurement { name, value })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_mutated_envelopes(
            header in any_header(),
            jpeg in proptest::collection::vec(any::<u8>(), 1..64),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = encode(&header, &jpeg).unwrap();
            for (at, value) in flips {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(decoded) = decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes: one spelling per envelope.
                prop_assert_eq!(encode(&decoded.header, decoded.jpeg).unwrap(), bytes);
            }
        }

        #[test]
        fn round_trips(header in any_header(), jpeg in proptest::collection::vec(any::<u8>(), 1..256)) {
            let bytes = encode(&header, &jpeg).unwrap();
            let decoded = decode(&bytes).unwrap();
            prop_assert_eq!(decoded.header, header);
            prop_assert_eq!(decoded.jpeg, &jpeg[..]);
        }
    }
}
