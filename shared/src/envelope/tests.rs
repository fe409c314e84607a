use super::*;
use crate::device_key::KEY_LEN;
use proptest::prelude::*;

const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.e30.sig";

fn header() -> EnvelopeHeader {
    EnvelopeHeader {
        device: DeviceId::new(),
        seq: 42,
        captured_at: DateTime::from_timestamp_millis(1_763_900_000_123).unwrap(),
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

fn key() -> DeviceKey {
    DeviceKey::from_bytes([5; KEY_LEN])
}

const JPEG: [u8; 9] = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];

#[test]
fn v1_round_trips_and_the_jpeg_ends_the_message() {
    let header = header();
    let bytes = encode_v1(&header, TOKEN, &JPEG).unwrap();
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.header, header);
    assert_eq!(decoded.credential, Credential::Token(TOKEN.to_owned()));
    assert_eq!(decoded.jpeg, JPEG);
    assert_eq!(&bytes[decoded.jpeg_offset(&bytes)..], JPEG);
    assert_eq!(&bytes[..6], b"LSFE\x01\x00");
    // A v1 envelope has no tag to check.
    assert!(!decoded.verify(&bytes, &key()));
}

#[test]
fn v2_round_trips_verifies_and_carries_no_token() {
    let header = header();
    let bytes = encode_v2(&header, &JPEG, &key()).unwrap();
    assert_eq!(&bytes[..6], b"LSFE\x02\x00");
    let decoded = decode(&bytes).unwrap();
    assert_eq!(decoded.header, header);
    assert!(matches!(decoded.credential, Credential::Mac(_)));
    assert_eq!(&bytes[decoded.jpeg_offset(&bytes)..], JPEG);
    assert!(decoded.verify(&bytes, &key()));
    assert!(!decoded.verify(&bytes, &DeviceKey::from_bytes([6; KEY_LEN])));
    // The tag is the 32 bytes before the JPEG length, over all the others.
    let tag_at = bytes.len() - JPEG.len() - 4 - TAG_LEN;
    let expected = key().tag(&[&bytes[..tag_at], &bytes[tag_at + TAG_LEN..]]);
    assert_eq!(decoded.credential, Credential::Mac(expected));
    // The same header re-encoded as it was decoded: the same bytes.
    assert_eq!(encode(&decoded).unwrap(), bytes);
}

#[test]
fn a_v2_envelope_changed_anywhere_does_not_verify() {
    let bytes = encode_v2(&header(), &JPEG, &key()).unwrap();
    for i in 0..bytes.len() {
        let mut changed = bytes.clone();
        changed[i] ^= 0x01;
        if let Ok(decoded) = decode(&changed) {
            assert!(
                !decoded.verify(&changed, &key()),
                "byte {i} changed unnoticed"
            );
        }
    }
}

#[test]
fn every_prefix_is_truncated_and_trailing_bytes_are_refused() {
    for bytes in [
        encode_v1(&header(), TOKEN, b"\xFF\xD8jpeg").unwrap(),
        encode_v2(&header(), b"\xFF\xD8jpeg", &key()).unwrap(),
    ] {
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
}

#[test]
fn refuses_what_it_cannot_read() {
    let bytes = encode_v1(&header(), TOKEN, b"\xFF\xD8").unwrap();
    let mut other = bytes.clone();
    other[0] = b'X';
    assert_eq!(decode(&other), Err(EnvelopeError::Magic));
    let mut other = bytes.clone();
    other[4] = 3;
    assert_eq!(decode(&other), Err(EnvelopeError::Version(3)));
    let mut other = bytes.clone();
    other[5] = 1;
    assert_eq!(decode(&other), Err(EnvelopeError::Flags(1)));
    let mut other = bytes;
    other[30..38].copy_from_slice(&i64::MAX.to_be_bytes());
    assert_eq!(decode(&other), Err(EnvelopeError::CapturedAt));
}

#[test]
fn encode_refuses_bad_headers() {
    let long = "x".repeat(MAX_TOKEN_LEN + 1);
    assert_eq!(encode_v1(&header(), &long, b"j"), Err(EnvelopeError::Token));
    let mut bad = header();
    bad.measurements[0].name = "Luma".to_owned();
    assert_eq!(
        encode_v2(&bad, b"j", &key()),
        Err(EnvelopeError::MeasurementName)
    );
    let mut bad = header();
    bad.measurements[0].value = f32::NAN;
    assert!(matches!(
        encode_v1(&bad, TOKEN, b"j"),
        Err(EnvelopeError::MeasurementValue(_))
    ));
    assert_eq!(
        encode_v2(&header(), b"", &key()),
        Err(EnvelopeError::JpegLength)
    );
}

#[test]
fn debug_output_hides_the_token() {
    let debug = format!("{:?}", Credential::Token(TOKEN.to_owned()));
    assert!(!debug.contains(TOKEN), "{debug}");
}

fn any_header() -> impl Strategy<Value = EnvelopeHeader> {
    (
        any::<u128>(),
        any::<u64>(),
        -8_000_000_000_000i64..8_000_000_000_000,
        proptest::collection::vec(("[a-z0-9_]{1,32}", -1e6f32..1e6), 0..8),
    )
        .prop_map(|(device, seq, ms, measurements)| EnvelopeHeader {
            device: DeviceId::from_uuid(Uuid::from_u128(device)),
            seq,
            captured_at: DateTime::from_timestamp_millis(ms).unwrap(),
            measurements: measurements
                .into_iter()
                .map(|(name, value)| Measurement { name, value })
                .collect(),
        })
}

fn any_credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        "[A-Za-z0-9._-]{0,300}".prop_map(Credential::Token),
        any::<[u8; TAG_LEN]>().prop_map(Credential::Mac),
    ]
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_envelopes(
        header in any_header(),
        credential in any_credential(),
        jpeg in proptest::collection::vec(any::<u8>(), 1..64),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let envelope = Envelope { header, credential, jpeg: &jpeg };
        let mut bytes = encode(&envelope).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(decoded) = decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes: one spelling per envelope.
            prop_assert_eq!(encode(&decoded).unwrap(), bytes);
        }
    }

    #[test]
    fn round_trips(
        header in any_header(),
        credential in any_credential(),
        jpeg in proptest::collection::vec(any::<u8>(), 1..256),
    ) {
        let envelope = Envelope { header, credential, jpeg: &jpeg };
        let bytes = encode(&envelope).unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), envelope);
    }

    #[test]
    fn a_signed_envelope_verifies_until_a_byte_changes(
        header in any_header(),
        jpeg in proptest::collection::vec(any::<u8>(), 1..128),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = encode_v2(&header, &jpeg, &key()).unwrap();
        let decoded = decode(&bytes).unwrap();
        prop_assert!(decoded.verify(&bytes, &key()));
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(decoded) = decode(&bytes) {
            prop_assert!(!decoded.verify(&bytes, &key()));
        }
    }
}
