//! The frame envelope: how one frame travels over MQTT (and anywhere else a
//! single binary message is handier than HTTP headers).
//!
//! Two versions, all integers big-endian. Version 2 authenticates the frame
//! with the device's MAC key ([`crate::device_key`]) and carries no reusable
//! credential; version 1 carried the device's bearer token, which every
//! subscriber of the frames topic could collect. Agents send version 2 when
//! their token carries a key. **Version 1 is decoded for one more release
//! (until 0.3)**, for agents whose tokens were issued before keys existed.
//!
//! | offset (v1) | offset (v2) | size | field |
//! |---|---|---|---|
//! | 0 | 0 | 4 | magic `LSFE` |
//! | 4 | 4 | 1 | version, `1` or `2` |
//! | 5 | 5 | 1 | flags, `0` (reserved; a decoder rejects unknown bits) |
//! | 6 | 6 | 16 | device id (UUID bytes) |
//! | 22 | 22 | 8 | seq (u64) |
//! | 30 | 30 | 8 | captured_at, milliseconds since the Unix epoch (i64) |
//! | 38 | - | 2 | v1 only: token length T (u16, at most [`MAX_TOKEN_LEN`]) |
//! | 40 | - | T | v1 only: device token (UTF-8 JWT) |
//! | 40+T | 38 | 1 | measurement count M (at most [`MAX_MEASUREMENTS`]) |
//! | | | M × (1 + N + 4) | name length N (1..=[`MAX_NAME_LEN`]), name (`[a-z0-9_]`), value (f32, finite) |
//! | - | | 32 | v2 only: tag, HMAC-SHA256 with the device key over every other byte of the message, in order |
//! | | | 4 | JPEG length J (u32) |
//! | | | J | the JPEG, which ends the message (no trailing bytes) |
//!
//! The tag sits before the JPEG length so the JPEG still ends the message
//! and a receiver can slice it without copying. Measurements are what the
//! agent's gates saw (mean luma, changed fraction, person score ...): the
//! cloud records them, it never needs them to decide. [`decode`] checks the
//! layout only, never panics and never allocates more than the input's size;
//! [`Envelope::verify`] checks a v2 tag.

use std::fmt;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::device_key::{DeviceKey, TAG_LEN};
use crate::ids::DeviceId;

pub const MAGIC: [u8; 4] = *b"LSFE";
/// The version that carries the device token (decoded until 0.3).
pub const VERSION_TOKEN: u8 = 1;
/// The version authenticated with the device key.
pub const VERSION_MAC: u8 = 2;
pub const MAX_TOKEN_LEN: usize = 4096;
pub const MAX_MEASUREMENTS: usize = 32;
pub const MAX_NAME_LEN: usize = 32;

/// Why bytes are not a valid envelope, or an envelope cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a lastseen frame envelope (bad magic)")]
    Magic,
    #[error(
        "unsupported envelope version {0} (this build reads versions {VERSION_TOKEN} and {VERSION_MAC})"
    )]
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

/// What an envelope says about its frame.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvelopeHeader {
    pub device: DeviceId,
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub measurements: Vec<Measurement>,
}

/// How an envelope proves where it comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Version 1: the device's bearer token (legacy, decoded until 0.3).
    Token(String),
    /// Version 2: the tag computed with the device key.
    Mac([u8; TAG_LEN]),
}

impl Credential {
    pub fn version(&self) -> u8 {
        match self {
            Credential::Token(_) => VERSION_TOKEN,
            Credential::Mac(_) => VERSION_MAC,
        }
    }
}

/// Keeps tokens out of logs and test failure output.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token(***)"),
            Credential::Mac(tag) => {
                f.write_str("Mac(")?;
                tag.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
                f.write_str(")")
            }
        }
    }
}

/// A decoded envelope; the JPEG borrows from the input, so a receiver holding
/// the message in a shared buffer can slice it without copying.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope<'a> {
    pub header: EnvelopeHeader,
    pub credential: Credential,
    pub jpeg: &'a [u8],
}

impl Envelope<'_> {
    /// Where the JPEG starts in the buffer this envelope was decoded from.
    pub fn jpeg_offset(&self, input: &[u8]) -> usize {
        input.len() - self.jpeg.len()
    }

    /// Whether this v2 envelope, decoded from `input`, carries the tag of
    /// `key` (compared in constant time). Always false for v1.
    pub fn verify(&self, input: &[u8], key: &DeviceKey) -> bool {
        let Credential::Mac(tag) = &self.credential else {
            return false;
        };
        // The tag lies just before the JPEG length.
        let Some(tag_at) = input.len().checked_sub(self.jpeg.len() + 4 + TAG_LEN) else {
            return false;
        };
        let (Some(before), Some(after)) = (input.get(..tag_at), input.get(tag_at + TAG_LEN..))
        else {
            return false;
        };
        input.get(tag_at..tag_at + TAG_LEN) == Some(&tag[..]) && key.verify(&[before, after], tag)
    }
}

/// Encodes an envelope as it is: version 1 with its token, version 2 with
/// the tag it carries (see [`encode_v2`] to compute one).
pub fn encode(envelope: &Envelope<'_>) -> Result<Vec<u8>, EnvelopeError> {
    write(&envelope.header, &envelope.credential, envelope.jpeg).map(|(bytes, _)| bytes)
}

/// A version 1 envelope, carrying the device token (legacy).
pub fn encode_v1(
    header: &EnvelopeHeader,
    token: &str,
    jpeg: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    write(header, &Credential::Token(token.to_owned()), jpeg).map(|(bytes, _)| bytes)
}

/// A version 2 envelope, authenticated with the device key.
pub fn encode_v2(
    header: &EnvelopeHeader,
    jpeg: &[u8],
    key: &DeviceKey,
) -> Result<Vec<u8>, EnvelopeError> {
    let (mut bytes, tag_at) = write(header, &Credential::Mac([0; TAG_LEN]), jpeg)?;
    let tag = key.tag(&[&bytes[..tag_at], &bytes[tag_at + TAG_LEN..]]);
    bytes[tag_at..tag_at + TAG_LEN].copy_from_slice(&tag);
    Ok(bytes)
}

/// The message, and where its tag starts (v2; 0 for v1).
fn write(
    header: &EnvelopeHeader,
    credential: &Credential,
    jpeg: &[u8],
) -> Result<(Vec<u8>, usize), EnvelopeError> {
    if let Credential::Token(token) = credential
        && token.len() > MAX_TOKEN_LEN
    {
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
    let credential_len = match credential {
        Credential::Token(token) => 2 + token.len(),
        Credential::Mac(_) => TAG_LEN,
    };
    let mut out = Vec::with_capacity(43 + credential_len + names + jpeg.len());
    out.extend_from_slice(&MAGIC);
    out.push(credential.version());
    out.push(0);
    out.extend_from_slice(header.device.as_uuid().as_bytes());
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(&header.captured_at.timestamp_millis().to_be_bytes());
    if let Credential::Token(token) = credential {
        // Fits: checked against MAX_TOKEN_LEN above.
        out.extend_from_slice(&(token.len() as u16).to_be_bytes());
        out.extend_from_slice(token.as_bytes());
    }
    // Fits: checked against MAX_MEASUREMENTS above.
    out.push(header.measurements.len() as u8);
    for m in &header.measurements {
        out.push(m.name.len() as u8);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&m.value.to_be_bytes());
    }
    let mut tag_at = 0;
    if let Credential::Mac(tag) = credential {
        tag_at = out.len();
        out.extend_from_slice(tag);
    }
    out.extend_from_slice(&jpeg_len.to_be_bytes());
    out.extend_from_slice(jpeg);
    Ok((out, tag_at))
}

/// Decodes a message of either version. Checks the layout only: the token,
/// the tag ([`Envelope::verify`]) and the JPEG's contents are the
/// receiver's business.
pub fn decode(input: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let mut r = Reader { rest: input };
    if r.take(4, "magic")? != MAGIC {
        return Err(EnvelopeError::Magic);
    }
    let version = r.u8("version")?;
    if version != VERSION_TOKEN && version != VERSION_MAC {
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
    let token = if version == VERSION_TOKEN {
        let token_len = usize::from(u16::from_be_bytes(r.array("token length")?));
        if token_len > MAX_TOKEN_LEN {
            return Err(EnvelopeError::Token);
        }
        let token =
            std::str::from_utf8(r.take(token_len, "token")?).map_err(|_| EnvelopeError::Token)?;
        Some(token.to_owned())
    } else {
        None
    };
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
    let credential = match token {
        Some(token) => Credential::Token(token),
        None => Credential::Mac(r.array("tag")?),
    };
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
            measurements,
        },
        credential,
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
mod tests;
