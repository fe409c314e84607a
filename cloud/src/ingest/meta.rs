//! Frame metadata as devices send it (`X-Frame-Seq`, `X-Captured-At` on HTTP).
//! Pure parsing, shared by every transport.

use chrono::{DateTime, Duration, Utc};

/// Identity and time of one frame, as the device stated them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMeta {
    /// Per-device, monotonically increasing; at most `i64::MAX` so SQL can hold it.
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("seq must be a decimal integer from 0 to {}", i64::MAX)]
    Seq,
    #[error("captured_at must be an RFC 3339 timestamp, e.g. 2026-11-23T10:00:00Z")]
    CapturedAt,
    #[error(
        "captured_at lies more than {} hours in the future",
        MAX_CLOCK_SKEW_HOURS
    )]
    FromTheFuture,
}

/// Device clocks drift; a frame from further ahead than this is a broken clock.
pub const MAX_CLOCK_SKEW_HOURS: i64 = 24;

pub fn parse_seq(text: &str) -> Result<u64, MetaError> {
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MetaError::Seq);
    }
    let seq: u64 = text.parse().map_err(|_| MetaError::Seq)?;
    if seq > i64::MAX as u64 {
        return Err(MetaError::Seq);
    }
    Ok(seq)
}

pub fn parse_captured_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, MetaError> {
    if text.len() > 64 {
        return Err(MetaError::CapturedAt);
    }
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| MetaError::CapturedAt)?
        .with_timezone(&Utc);
    if at > now + Duration::hours(MAX_CLOCK_SKEW_HOURS) {
        return Err(MetaError::FromTheFuture);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_accepts_decimal_integers_up_to_i64_max() {
        assert_eq!(parse_seq("0"), Ok(0));
        assert_eq!(parse_seq("42"), Ok(42));
        assert_eq!(parse_seq(&i64::MAX.to_string()), Ok(i64::MAX as u64));
    }

    #[test]
    fn seq_rejects_everything_else() {
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "0x10",
            "9223372036854775808",
            "18446744073709551616",
            "1; DROP TABLE",
        ] {
            assert_eq!(parse_seq(bad), Err(MetaError::Seq), "{bad:?}");
        }
    }

    #[test]
    fn captured_at_is_rfc3339_in_any_offset_and_stored_as_utc() {
        let now = Utc::now();
        let at = parse_captured_at("2026-11-23T11:00:00+01:00", now).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-23T10:00:00+00:00");
    }

    #[test]
    fn captured_at_rejects_garbage_and_the_far_future() {
        let now = Utc::now();
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "1700000000",
            "2026-11-23 10:00:00",
        ] {
            assert_eq!(
                parse_captured_at(bad, now),
                Err(MetaError::CapturedAt),
                "{bad:?}"
            );
        }
        let far = (now + Duration::days(3)).to_rfc3339();
        assert_eq!(parse_captured_at(&far, now), Err(MetaError::FromTheFuture));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsers_never_panic_on_any_header_text(text in "\\PC{0,80}") {
                let _ = parse_seq(&text);
                let _ = parse_captured_at(&text, Utc::now());
            }

            #[test]
            fn every_seq_up_to_i64_max_round_trips(seq in 0..=i64::MAX as u64) {
                prop_assert_eq!(parse_seq(&seq.to_string()), Ok(seq));
            }

            #[test]
            fn seqs_above_i64_max_are_refused(seq in (i64::MAX as u64 + 1)..=u64::MAX) {
                prop_assert_eq!(parse_seq(&seq.to_string()), Err(MetaError::Seq));
            }

            #[test]
            fn any_past_instant_round_trips(micros in 0i64..4_000_000_000_000_000) {
                let at = DateTime::from_timestamp_micros(micros).unwrap();
                let now = Utc::now().max(at);
                prop_assert_eq!(parse_captured_at(&at.to_rfc3339(), now), Ok(at));
            }
        }
    }
}
