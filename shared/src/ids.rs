//! Identifiers. Each is a UUID (v7, so ids sort by creation time) behind its own
//! type, so a device id can never be passed where a frame id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An identifier that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {kind} id")]
pub struct IdError {
    kind: &'static str,
    input: String,
}

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses the hyphenated text form; anything else is an error.
            pub fn parse(input: &str) -> Result<Self, IdError> {
                // Only the canonical 36-character form: ids appear in URLs and
                // topics, where one spelling per id keeps them comparable.
                if input.len() != 36 {
                    return Err(IdError { kind: $kind, input: truncate(input) });
                }
                Uuid::try_parse(input)
                    .map(Self)
                    .map_err(|_| IdError { kind: $kind, input: truncate(input) })
            }

            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A user account.
    UserId,
    "user"
);
uuid_id!(
    /// A camera device owned by one user.
    DeviceId,
    "device"
);
uuid_id!(
    /// One stored frame.
    FrameId,
    "frame"
);

/// Error messages echo the input, but never more than a short prefix of it.
fn truncate(input: &str) -> String {
    input.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_prints() {
        let id = DeviceId::new();
        assert_eq!(DeviceId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn rejects_other_spellings_and_garbage() {
        let id = FrameId::new().as_uuid();
        for bad in [
            id.simple().to_string(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            "../../etc/passwd".to_owned(),
            "' OR 1=1 --".to_owned(),
            String::new(),
        ] {
            assert!(FrameId::parse(&bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn error_message_does_not_echo_huge_input() {
        let huge = "x".repeat(10_000);
        let message = UserId::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 100, "{message}");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics_and_accepts_only_canonical_uuids(text in "\\PC{0,60}") {
                if let Ok(id) = DeviceId::parse(&text) {
                    prop_assert_eq!(id.to_string(), text.to_lowercase());
                }
            }

            #[test]
            fn every_uuid_round_trips(bits in any::<u128>()) {
                let id = FrameId::from_uuid(Uuid::from_u128(bits));
                prop_assert_eq!(FrameId::parse(&id.to_string()), Ok(id));
            }
        }
    }
}
