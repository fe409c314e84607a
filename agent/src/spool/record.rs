//! The byte layout of one spool file (version 1, integers big-endian):
//!
//! | size | field |
//! |---|---|
//! | 4 | magic `LSSP` |
//! | 1 | version, `1` |
//! | 8 | seq (u64) |
//! | 8 | captured_at, milliseconds since the Unix epoch (i64) |
//! | 1 | measurement count M (at most [`MAX_MEASUREMENTS`]) |
//! | M × (1 + N + 4) | name length N, name (UTF-8), value (f32) |
//! | 4 | JPEG length J (u32) |
//! | J | the JPEG |
//! | 4 | CRC-32 of every byte before it |
//!
//! The CRC catches a file damaged on disk (the rename protocol already rules
//! out torn writes); [`decode`] never panics on any input.

use chrono::{DateTime, Utc};
use lastseen_shared::Measurement;
use lastseen_shared::envelope::MAX_MEASUREMENTS;

const MAGIC: [u8; 4] = *b"LSSP";
const VERSION: u8 = 1;

/// A frame as kept in the spool.
#[derive(Clone, Debug, PartialEq)]
pub struct SpooledFrame {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub measurements: Vec<Measurement>,
    pub jpeg: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not a spool record (bad magic or version)")]
    Header,
    #[error("the record ends early")]
    Truncated,
    #[error("the record's checksum does not match")]
    Checksum,
    #[error("the record holds an invalid field: {0}")]
    Field(&'static str),
}

pub fn encode(frame: &SpooledFrame) -> Vec<u8> {
    let names: usize = frame.measurements.iter().map(|m| 5 + m.name.len()).sum();
    let mut out = Vec::with_capacity(30 + names + frame.jpeg.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&frame.seq.to_be_bytes());
    out.extend_from_slice(&frame.captured_at.timestamp_millis().to_be_bytes());
    let kept: Vec<&Measurement> = frame
        .measurements
        .iter()
        .filter(|m| !m.name.is_empty() && m.name.len() <= u8::MAX as usize)
        .take(MAX_MEASUREMENTS)
        .collect();
    out.push(kept.len() as u8);
    for m in kept {
        out.push(m.name.len() as u8);
        out.extend_from_slice(m.name.as_bytes());
        out.extend_from_slice(&m.value.to_be_bytes());
    }
    out.extend_from_slice(&(frame.jpeg.len() as u32).to_be_bytes());
    out.extend_from_slice(&frame.jpeg);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

pub fn decode(bytes: &[u8]) -> Result<SpooledFrame, RecordError> {
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(RecordError::Truncated);
    };
    if crc32fast::hash(body) != u32::from_be_bytes(*crc) {
        return Err(RecordError::Checksum);
    }
    let mut r = Reader { rest: body };
    if r.take(4)? != MAGIC || r.u8()? != VERSION {
        return Err(RecordError::Header);
    }
    let seq = u64::from_be_bytes(r.array()?);
    let millis = i64::from_be_bytes(r.array()?);
    let captured_at =
        DateTime::<Utc>::from_timestamp_millis(millis).ok_or(RecordError::Field("captured_at"))?;
    let count = r.u8()? as usize;
    let mut measurements = Vec::with_capacity(count.min(MAX_MEASUREMENTS));
    for _ in 0..count {
        let len = r.u8()? as usize;
        let name = std::str::from_utf8(r.take(len)?)
            .map_err(|_| RecordError::Field("measurement name"))?
            .to_owned();
        let value = f32::from_be_bytes(r.array()?);
        measurements.push(Measurement { name, value });
    }
    let jpeg_len = u32::from_be_bytes(r.array()?) as usize;
    let jpeg = r.take(jpeg_len)?.to_vec();
    if !r.rest.is_empty() {
        return Err(RecordError::Field("trailing bytes"));
    }
    Ok(SpooledFrame {
        seq,
        captured_at,
        measurements,
        jpeg,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(seq: u64, jpeg: Vec<u8>) -> SpooledFrame {
        SpooledFrame {
            seq,
            captured_at: DateTime::from_timestamp_millis(1_763_900_000_123).unwrap(),
            measurements: vec![Measurement {
                name: "changed_fraction".into(),
                value: 0.25,
            }],
            jpeg,
        }
    }

    #[test]
    fn a_flipped_bit_is_caught() {
        let mut bytes = encode(&sample(7, vec![1, 2, 3]));
        bytes[12] ^= 0x10;
        assert_eq!(decode(&bytes), Err(RecordError::Checksum));
    }

    proptest! {
        #[test]
        fn round_trips(seq: u64, jpeg in proptest::collection::vec(any::<u8>(), 0..512)) {
            let frame = sample(seq, jpeg);
            prop_assert_eq!(decode(&encode(&frame)), Ok(frame));
        }

        #[test]
        fn every_prefix_is_an_error_not_a_panic(jpeg in proptest::collection::vec(any::<u8>(), 0..64), cut in 0usize..100) {
            let bytes = encode(&sample(1, jpeg));
            let cut = cut.min(bytes.len() - 1);
            prop_assert!(decode(&bytes[..cut]).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }
}
