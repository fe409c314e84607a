//! Claims carried by the JWTs that users and devices present.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Who a token speaks for. A device token can only ingest for its own device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    User,
    Device,
}

/// The registered claims lastseen relies on. `sub` is the user id for user
/// tokens and the device id for device tokens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub kind: TokenKind,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    /// Unique token id, for revoking one token without revoking the rest.
    pub jti: Uuid,
    /// Device tokens only: the device's MAC key, base64url without padding
    /// ([`crate::device_key`]). Absent from tokens issued before 0.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mk: Option<String>,
}
