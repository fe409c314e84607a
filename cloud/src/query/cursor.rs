//! Opaque pagination cursors: the position of the last row a page returned.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;

use crate::store::Cursor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this server handed out")]
pub struct CursorError;

const MAX_ENCODED_LEN: usize = 64;

pub fn encode(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}.{}",
        cursor.captured_at.timestamp_micros(),
        cursor.detection_id
    ))
}

pub fn decode(text: &str) -> Result<Cursor, CursorError> {
    if text.len() > MAX_ENCODED_LEN {
        return Err(CursorError);
    }
    let raw = URL_SAFE_NO_PAD.decode(text).map_err(|_| CursorError)?;
    let raw = std::str::from_utf8(&raw).map_err(|_| CursorError)?;
    let (micros, id) = raw.split_once('.').ok_or(CursorError)?;
    let micros: i64 = micros.parse().map_err(|_| CursorError)?;
    let detection_id: i64 = id.parse().map_err(|_| CursorError)?;
    let captured_at = DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
    Ok(Cursor {
        captured_at,
        detection_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use proptest::prelude::*;

    #[test]
    fn decodes_what_it_encodes() {
        let cursor = Cursor {
            captured_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap(),
            detection_id: 42,
        };
        assert_eq!(decode(&encode(&cursor)), Ok(cursor));
    }

    #[test]
    fn rejects_tampered_cursors() {
        for bad in ["", "abc", "MTIz", "' OR 1=1 --", &"A".repeat(200)] {
            assert_eq!(decode(bad), Err(CursorError), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_text(text in ".{0,80}") {
            let _ = decode(&text);
        }
    }
}
