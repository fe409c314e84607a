//! Signed cloud -> device messages: acks and gate settings that the agent can
//! tell apart from ones anybody else on the broker published.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `LSSM` |
//! | 4 | 1 | version, `1` |
//! | 5 | 1 | kind: `1` ack, `2` config |
//! | 6 | 32 | tag: HMAC-SHA256(k_dev, magic \|\| version \|\| kind \|\| device uuid \|\| body) |
//! | 38 | B | the JSON body ([`crate::Ack`] or [`crate::GateSettings`]) |
//!
//! The device id is in the tag, not in the message, so a message sealed for
//! one device does not verify on another even if both had the same key; the
//! kind is in the tag, so an ack cannot pass as a config. A replayed message
//! is harmless: acks settle only frames the agent has published and still
//! holds (it ignores the rest), and a config repeats settings the cloud sent.
//!
//! An agent whose token carries no key (issued before keys existed) has
//! nothing to check with: [`open`] without a key accepts a plain JSON body,
//! and the body of a sealed message. Acks to v1 envelopes stay plain JSON, so
//! agents of earlier releases keep working.

use crate::device_key::{DeviceKey, TAG_LEN};
use crate::ids::DeviceId;

pub const MAGIC: [u8; 4] = *b"LSSM";
pub const VERSION: u8 = 1;
/// Bytes before the body.
pub const HEADER_LEN: usize = 6 + TAG_LEN;

/// What a signed message is; part of what the tag covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedKind {
    Ack = 1,
    Config = 2,
}

/// Why a message was not accepted as signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignedError {
    #[error("the message is not signed")]
    NotSigned,
    #[error("unsupported signed-message version {0}")]
    Version(u8),
    #[error("a signed {found} message where a {expected} message was expected")]
    Kind { expected: &'static str, found: u8 },
    #[error("the signature does not verify")]
    BadTag,
}

impl SignedKind {
    fn as_str(self) -> &'static str {
        match self {
            SignedKind::Ack => "ack",
            SignedKind::Config => "config",
        }
    }
}

/// `body` signed for `device` with its key.
pub fn seal(key: &DeviceKey, kind: SignedKind, device: DeviceId, body: &[u8]) -> Vec<u8> {
    let head = [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, kind as u8];
    let tag = key.tag(&[&head, device.as_uuid().as_bytes(), body]);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&tag);
    out.extend_from_slice(body);
    out
}

/// The body of a message on `device`'s topic of `kind`.
///
/// With a key, only a message sealed with that key, for that device and kind
/// opens. Without one (a legacy token) the payload is taken as it is: the
/// JSON body, or the body of a sealed message, unchecked.
pub fn open<'a>(
    key: Option<&DeviceKey>,
    kind: SignedKind,
    device: DeviceId,
    payload: &'a [u8],
) -> Result<&'a [u8], SignedError> {
    let sealed = payload.len() >= HEADER_LEN && payload[..4] == MAGIC;
    let Some(key) = key else {
        return Ok(if sealed {
            &payload[HEADER_LEN..]
        } else {
            payload
        });
    };
    if !sealed {
        return Err(SignedError::NotSigned);
    }
    if payload[4] != VERSION {
        return Err(SignedError::Version(payload[4]));
    }
    if payload[5] != kind as u8 {
        return Err(SignedError::Kind {
            expected: kind.as_str(),
            found: payload[5],
        });
    }
    let (head, rest) = payload.split_at(6);
    let (tag, body) = rest.split_at(TAG_LEN);
    if key.verify(&[head, device.as_uuid().as_bytes(), body], tag) {
        Ok(body)
    } else {
        Err(SignedError::BadTag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device_key::KEY_LEN;
    use proptest::prelude::*;

    fn key() -> DeviceKey {
        DeviceKey::from_bytes([3; KEY_LEN])
    }

    const BODY: &[u8] = br#"{"acked":[1,2,3],"rejected":[]}"#;

    #[test]
    fn a_sealed_message_opens_for_its_device_and_kind() {
        let device = DeviceId::new();
        let sealed = seal(&key(), SignedKind::Ack, device, BODY);
        assert_eq!(&sealed[..6], b"LSSM\x01\x01");
        assert_eq!(sealed.len(), HEADER_LEN + BODY.len());
        assert_eq!(
            open(Some(&key()), SignedKind::Ack, device, &sealed),
            Ok(BODY)
        );
    }

    #[test]
    fn another_device_kind_or_key_does_not_open() {
        let device = DeviceId::new();
        let sealed = seal(&key(), SignedKind::Ack, device, BODY);
        assert_eq!(
            open(Some(&key()), SignedKind::Ack, DeviceId::new(), &sealed),
            Err(SignedError::BadTag)
        );
        assert_eq!(
            open(Some(&key()), SignedKind::Config, device, &sealed),
            Err(SignedError::Kind {
                expected: "config",
                found: 1
            })
        );
        // The kind byte rewritten to match: the tag still says ack.
        let mut relabelled = sealed.clone();
        relabelled[5] = SignedKind::Config as u8;
        assert_eq!(
            open(Some(&key()), SignedKind::Config, device, &relabelled),
            Err(SignedError::BadTag)
        );
        let other = DeviceKey::from_bytes([4; KEY_LEN]);
        assert_eq!(
            open(Some(&other), SignedKind::Ack, device, &sealed),
            Err(SignedError::BadTag)
        );
    }

    #[test]
    fn unsigned_and_truncated_messages_do_not_open_with_a_key() {
        let device = DeviceId::new();
        assert_eq!(
            open(Some(&key()), SignedKind::Ack, device, BODY),
            Err(SignedError::NotSigned)
        );
        let sealed = seal(&key(), SignedKind::Ack, device, BODY);
        for end in 0..HEADER_LEN {
            assert_eq!(
                open(Some(&key()), SignedKind::Ack, device, &sealed[..end]),
                Err(SignedError::NotSigned),
                "{end}"
            );
        }
        // Tag present, body cut: the tag no longer matches.
        assert_eq!(
            open(
                Some(&key()),
                SignedKind::Ack,
                device,
                &sealed[..sealed.len() - 1]
            ),
            Err(SignedError::BadTag)
        );
        let mut newer = sealed;
        newer[4] = 2;
        assert_eq!(
            open(Some(&key()), SignedKind::Ack, device, &newer),
            Err(SignedError::Version(2))
        );
    }

    #[test]
    fn without_a_key_the_body_is_taken_as_it_is() {
        let device = DeviceId::new();
        assert_eq!(open(None, SignedKind::Ack, device, BODY), Ok(BODY));
        let sealed = seal(&key(), SignedKind::Config, device, BODY);
        assert_eq!(open(None, SignedKind::Config, device, &sealed), Ok(BODY));
    }

    proptest! {
        #[test]
        fn any_changed_byte_makes_it_fail(
            body in proptest::collection::vec(any::<u8>(), 0..200),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let device = DeviceId::new();
            let mut sealed = seal(&key(), SignedKind::Config, device, &body);
            prop_assert_eq!(
                open(Some(&key()), SignedKind::Config, device, &sealed),
                Ok(&body[..])
            );
            let i = at.index(sealed.len());
            sealed[i] ^= flip;
            prop_assert!(open(Some(&key()), SignedKind::Config, device, &sealed).is_err());
        }

        #[test]
        fn open_never_panics(payload in proptest::collection::vec(any::<u8>(), 0..128)) {
            let device = DeviceId::new();
            let _ = open(Some(&key()), SignedKind::Ack, device, &payload);
            let _ = open(None, SignedKind::Ack, device, &payload);
        }
    }
}
