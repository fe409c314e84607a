//! Building records from result rows, once for every SQL backend.
//!
//! Each backend implements [`ColumnReader`] (how its rows hold text, numbers,
//! ids and times); the records are assembled here from those reads, so both
//! backends read the same columns into the same fields. Columns are read by
//! name: SELECT lists must use the names below (aliasing with `AS` where a
//! join renames them). A value that does not fit its Rust type becomes
//! [`StoreError::Corrupt`].

use chrono::{DateTime, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use uuid::Uuid;

use super::{
    AgedFrame, DetectionRow, DeviceRecord, FrameIdentity, FrameRecord, ImageDigest,
    RetentionLimits, Sighting, StoreError, StoreResult, UserRecord,
};

/// The column reads that differ between backends.
pub(super) trait ColumnReader {
    fn text(&self, column: &str) -> StoreResult<String>;
    fn optional_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn optional_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
    fn real(&self, column: &str) -> StoreResult<f32>;
    fn uuid(&self, column: &str) -> StoreResult<Uuid>;
    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>>;
    fn optional_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>>;
    fn optional_bytes(&self, column: &str) -> StoreResult<Option<Vec<u8>>>;
}

/// The [`ColumnReader`] reads the backend's driver decodes as they are, through
/// the invoking module's `get` (`try_get` with [`read_error`]); only times
/// differ between backends, so each writes `time` and `optional_time` itself.
macro_rules! decoded_column_reads {
    () => {
        fn text(&self, column: &str) -> StoreResult<String> {
            get(self, column)
        }

        fn optional_text(&self, column: &str) -> StoreResult<Option<String>> {
            get(self, column)
        }

        fn int(&self, column: &str) -> StoreResult<i64> {
            get(self, column)
        }

        fn optional_int(&self, column: &str) -> StoreResult<Option<i64>> {
            get(self, column)
        }

        fn flag(&self, column: &str) -> StoreResult<bool> {
            get(self, column)
        }

        fn real(&self, column: &str) -> StoreResult<f32> {
            get(self, column)
        }

        fn uuid(&self, column: &str) -> StoreResult<Uuid> {
            get(self, column)
        }

        fn optional_bytes(&self, column: &str) -> StoreResult<Option<Vec<u8>>> {
            get(self, column)
        }
    };
}
pub(super) use decoded_column_reads;

/// Any error from sqlx that is not about decoding a value we read.
pub(super) fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error)
}

/// A failed read of `column`: a value that does not fit becomes
/// [`StoreError::Corrupt`], anything else stays a database error.
pub(super) fn read_error(column: &str, error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            StoreError::Corrupt(format!("column {column}: {error}"))
        }
        other => db(other),
    }
}

/// SQL integers are signed; a `u64` above `i64::MAX` is refused rather than wrapped.
pub(super) fn to_sql_int(column: &'static str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|e| {
        db(sqlx::Error::Encode(
            format!("{column} = {value} does not fit a signed 64-bit integer: {e}").into(),
        ))
    })
}

fn unsigned<T: TryFrom<i64>>(row: &impl ColumnReader, column: &str) -> StoreResult<T> {
    let value = row.int(column)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("column {column}: {value} is out of range")))
}

fn label(row: &impl ColumnReader) -> StoreResult<Label> {
    let value = row.text("label")?;
    Label::parse(&value).map_err(|e| StoreError::Corrupt(format!("column label: {e}")))
}

fn bbox(row: &impl ColumnReader) -> StoreResult<BBox> {
    Ok(BBox {
        x1: row.real("x1")?,
        y1: row.real("y1")?,
        x2: row.real("x2")?,
        y2: row.real("y2")?,
    })
}

/// Column: `id`.
pub(super) fn frame_id(row: &impl ColumnReader) -> StoreResult<FrameId> {
    row.uuid("id").map(FrameId::from_uuid)
}

/// Columns: `label, score, x1, y1, x2, y2`.
pub(super) fn detection(row: &impl ColumnReader) -> StoreResult<Detection> {
    Ok(Detection {
        label: label(row)?,
        score: row.real("score")?,
        bbox: bbox(row)?,
    })
}

/// The columns [`user`] reads, as a literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, password_hash, created_at, tokens_valid_after"
    };
}
pub(super) use user_columns;

/// The columns [`device`] reads, as a literal for `concat!`.
macro_rules! device_columns {
    () => {
        "id, owner_id, name, kind, created_at, tokens_valid_after, revoked_at"
    };
}
pub(super) use device_columns;

/// Columns: [`user_columns`].
pub(super) fn user(row: &impl ColumnReader) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: UserId::from_uuid(row.uuid("id")?),
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        created_at: row.time("created_at")?,
        tokens_valid_after: row.time("tokens_valid_after")?,
    })
}

/// Columns: [`device_columns`].
pub(super) fn device(row: &impl ColumnReader) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: DeviceId::from_uuid(row.uuid("id")?),
        owner: UserId::from_uuid(row.uuid("owner_id")?),
        name: row.text("name")?,
        kind: row.text("kind")?,
        created_at: row.time("created_at")?,
        tokens_valid_after: row.time("tokens_valid_after")?,
        revoked_at: row.optional_time("revoked_at")?,
    })
}

/// Columns: `id, device_id, device_name, seq, captured_at, received_at,
/// blob_key, bytes, width, height, clock_skewed`.
pub(super) fn frame(row: &impl ColumnReader) -> StoreResult<FrameRecord> {
    Ok(FrameRecord {
        id: frame_id(row)?,
        device: DeviceId::from_uuid(row.uuid("device_id")?),
        device_name: row.text("device_name")?,
        seq: unsigned(row, "seq")?,
        captured_at: row.time("captured_at")?,
        received_at: row.time("received_at")?,
        blob_key: row.text("blob_key")?,
        bytes: unsigned(row, "bytes")?,
        width: unsigned(row, "width")?,
        height: unsigned(row, "height")?,
        clock_skewed: row.flag("clock_skewed")?,
    })
}

/// Columns: `captured_at, image_sha256`.
pub(super) fn frame_identity(row: &impl ColumnReader) -> StoreResult<FrameIdentity> {
    let image_sha256 = match row.optional_bytes("image_sha256")? {
        None => None,
        Some(bytes) => Some(ImageDigest::from_slice(&bytes).ok_or_else(|| {
            StoreError::Corrupt(format!("column image_sha256: {} bytes", bytes.len()))
        })?),
    };
    Ok(FrameIdentity {
        captured_at: row.time("captured_at")?,
        image_sha256,
    })
}

/// Columns: `label, device_id, device_name, captured_at, frame_id, score, x1, y1, x2, y2`.
pub(super) fn sighting(row: &impl ColumnReader) -> StoreResult<Sighting> {
    Ok(Sighting {
        label: label(row)?,
        device: DeviceId::from_uuid(row.uuid("device_id")?),
        device_name: row.text("device_name")?,
        captured_at: row.time("captured_at")?,
        frame: FrameId::from_uuid(row.uuid("frame_id")?),
        score: row.real("score")?,
        bbox: bbox(row)?,
    })
}

/// Columns: `id, frame_id, device_id, device_name, captured_at` and those of [`detection`].
pub(super) fn detection_row(row: &impl ColumnReader) -> StoreResult<DetectionRow> {
    Ok(DetectionRow {
        id: row.int("id")?,
        frame: FrameId::from_uuid(row.uuid("frame_id")?),
        device: DeviceId::from_uuid(row.uuid("device_id")?),
        device_name: row.text("device_name")?,
        captured_at: row.time("captured_at")?,
        detection: detection(row)?,
    })
}

/// Columns: `id, captured_at, blob_key, bytes, blob_refs`.
pub(super) fn aged_frame(row: &impl ColumnReader) -> StoreResult<AgedFrame> {
    Ok(AgedFrame {
        id: frame_id(row)?,
        received_at: row.time("received_at")?,
        blob_key: row.text("blob_key")?,
        bytes: unsigned(row, "bytes")?,
        blob_refs: unsigned(row, "blob_refs")?,
    })
}

fn optional_unsigned<T: TryFrom<i64>>(
    row: &impl ColumnReader,
    column: &str,
) -> StoreResult<Option<T>> {
    row.optional_int(column)?
        .map(|value| {
            T::try_from(value).map_err(|_| {
                StoreError::Corrupt(format!("column {column}: {value} is out of range"))
            })
        })
        .transpose()
}

/// Columns: `max_age_days, max_bytes` (NULL: no limit).
pub(super) fn retention_limits(row: &impl ColumnReader) -> StoreResult<RetentionLimits> {
    Ok(RetentionLimits {
        max_age_days: optional_unsigned(row, "max_age_days")?,
        max_bytes: optional_unsigned(row, "max_bytes")?,
    })
}
