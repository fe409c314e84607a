//! The per-device MAC key (`k_dev`) that authenticates MQTT messages in both
//! directions without a reusable credential on the wire: frame envelopes
//! (v2, [`crate::envelope`]) and the cloud's acks and configs
//! ([`crate::signed`]).
//!
//! The cloud derives `k_dev = HMAC-SHA256(master, "lastseen device key v1" ||
//! device uuid || tokens_valid_after ms)` from the device's record, so it
//! stores no device secret and a token rotation (a new `tokens_valid_after`)
//! rotates the key too. The device gets the key inside its token, as the
//! claim `mk` (base64url without padding), so the token stays the one secret
//! it holds. The device reads the claim without checking the token's
//! signature: it trusts its own configuration, and only the cloud can check.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Bytes in a key and in a tag (HMAC-SHA256 output).
pub const KEY_LEN: usize = 32;
pub const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// One device's MAC key. Its `Debug` hides the bytes.
#[derive(Clone)]
pub struct DeviceKey([u8; KEY_LEN]);

impl DeviceKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key as the token's `mk` claim: base64url without padding.
    pub fn to_claim(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key from an `mk` claim; `None` unless it is exactly [`KEY_LEN`] bytes.
    pub fn from_claim(claim: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(claim).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The `mk` claim of a JWT, read from its payload without checking the
    /// signature. `None` for a token without one (issued before keys
    /// existed) or for anything that is not a JWT.
    pub fn from_token(jwt: &str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Payload {
            mk: Option<String>,
        }
        let mut parts = jwt.trim().split('.');
        let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(payload), Some(_), None) => payload,
            _ => return None,
        };
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let payload: Payload = serde_json::from_slice(&json).ok()?;
        Self::from_claim(&payload.mk?)
    }

    /// HMAC-SHA256 of the concatenation of `parts`.
    pub fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        let mac = self.mac(parts);
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&mac.finalize().into_bytes());
        tag
    }

    /// Whether `tag` is the tag of `parts`, compared in constant time.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        self.mac(parts).verify_slice(tag).is_ok()
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in parts {
            mac.update(part);
        }
        mac
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn the_key_travels_as_a_claim_and_comes_back_from_the_token() {
        let key = DeviceKey::from_bytes([9; KEY_LEN]);
        let claim = key.to_claim();
        assert!(!claim.contains('='));
        let token = jwt(&format!(r#"{{"sub":"x","kind":"device","mk":"{claim}"}}"#));
        let read = DeviceKey::from_token(&token).unwrap();
        assert_eq!(read.as_bytes(), key.as_bytes());
        // A token file may end with a newline.
        assert!(DeviceKey::from_token(&format!("{token}\n")).is_some());
    }

    #[test]
    fn tokens_without_a_usable_key_have_none() {
        assert!(DeviceKey::from_token(&jwt(r#"{"sub":"x","kind":"device"}"#)).is_none());
        assert!(DeviceKey::from_token(&jwt(r#"{"mk":"c2hvcnQ"}"#)).is_none());
        assert!(DeviceKey::from_token(&jwt(r#"{"mk":42}"#)).is_none());
        assert!(DeviceKey::from_token("not a token").is_none());
        assert!(DeviceKey::from_token("a.b.c.d").is_none());
        assert!(DeviceKey::from_token("").is_none());
    }

    #[test]
    fn a_tag_verifies_with_its_key_and_parts_only() {
        let key = DeviceKey::from_bytes([1; KEY_LEN]);
        let tag = key.tag(&[b"hello ", b"world"]);
        // Only the concatenation counts, not how it is split.
        assert!(key.verify(&[b"hello world"], &tag));
        assert!(!key.verify(&[b"hello worle"], &tag));
        assert!(!DeviceKey::from_bytes([2; KEY_LEN]).verify(&[b"hello world"], &tag));
        assert!(!key.verify(&[b"hello world"], &tag[..31]));
        assert!(!key.verify(&[b"hello world"], &[]));
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert_eq!(
            format!("{:?}", DeviceKey::from_bytes([7; KEY_LEN])),
            "DeviceKey(***)"
        );
    }
}
