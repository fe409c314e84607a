//! Conversions between domain values and PostgreSQL column values.
//!
//! Columns are read by name, so the SELECT lists in the other modules must use
//! the names below (aliasing with `AS` where a join renames them). A value
//! that does not fit its Rust type becomes [`StoreError::Corrupt`].

use chrono::{DateTime, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::store::{
    DetectionRow, DeviceRecord, FrameRecord, Sighting, StoreError, StoreResult, UserRecord,
};

/// Any error from sqlx that is not about decoding a value we read.
pub(super) fn db(error: sqlx::Error) -> StoreError {
    StoreError::Database(error)
}

/// `at` cut to whole microseconds, rounding down as the SQLite backend does
/// (sqlx alone would round towards 2000-01-01, upwards before it).
pub(super) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

/// SQL integers are signed; a `u64` above `i64::MAX` is refused rather than wrapped.
pub(super) fn to_sql_int(column: &'static str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|e| {
        db(sqlx::Error::Encode(
            format!("{column} = {value} does not fit a signed 64-bit integer: {e}").into(),
        ))
    })
}

/// Microseconds from the Unix epoch to 2000-01-01, Postgres' epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamptz` read without sqlx's chrono decoder, which panics on
/// `infinity` and on years chrono cannot hold (Postgres goes to 294276 AD,
/// chrono to 262143): such a value is a decode error here, hence `Corrupt`.
struct PgTime(DateTime<Utc>);

impl Type<Postgres> for PgTime {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for PgTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let pg_micros: i64 = Decode::<Postgres>::decode(value)?;
                pg_micros
                    .checked_add(PG_EPOCH_MICROS)
                    .and_then(DateTime::from_timestamp_micros)
                    .map(PgTime)
                    .ok_or_else(|| format!("{pg_micros} µs after 2000-01-01 is not a time").into())
            }
            // Text only comes back from the simple query protocol, which the
            // store does not use; chrono's parser fails without panicking.
            PgValueFormat::Text => <DateTime<Utc> as Decode<Postgres>>::decode(value).map(PgTime),
        }
    }
}

fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(|e| match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            StoreError::Corrupt(format!("column {column}: {e}"))
        }
        other => db(other),
    })
}

fn id<T>(row: &PgRow, column: &str, wrap: fn(Uuid) -> T) -> StoreResult<T> {
    get::<Uuid>(row, column).map(wrap)
}

fn time(row: &PgRow, column: &str) -> StoreResult<DateTime<Utc>> {
    get::<PgTime>(row, column).map(|t| t.0)
}

fn optional_time(row: &PgRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<PgTime>>(row, column).map(|t| t.map(|t| t.0))
}

fn unsigned<T: TryFrom<i64>>(row: &PgRow, column: &str) -> StoreResult<T> {
    let value: i64 = get(row, column)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("column {column}: {value} is out of range")))
}

fn label(row: &PgRow) -> StoreResult<Label> {
    let value: String = get(row, "label")?;
    Label::parse(&value).map_err(|e| StoreError::Corrupt(format!("column label: {e}")))
}

fn bbox(row: &PgRow) -> StoreResult<BBox> {
    Ok(BBox {
        x1: get(row, "x1")?,
        y1: get(row, "y1")?,
        x2: get(row, "x2")?,
        y2: get(row, "y2")?,
    })
}

/// Column: `id`.
pub(super) fn frame_id(row: &PgRow) -> StoreResult<FrameId> {
    id(row, "id", FrameId::from_uuid)
}

/// Columns: `label, score, x1, y1, x2, y2`.
pub(super) fn detection(row: &PgRow) -> StoreResult<Detection> {
    Ok(Detection {
        label: label(row)?,
        score: get(row, "score")?,
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
pub(super) fn user(row: &PgRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: id(row, "id", UserId::from_uuid)?,
        username: get(row, "username")?,
        password_hash: get(row, "password_hash")?,
        created_at: time(row, "created_at")?,
        tokens_valid_after: time(row, "tokens_valid_after")?,
    })
}

/// Columns: [`device_columns`].
pub(super) fn device(row: &PgRow) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: id(row, "id", DeviceId::from_uuid)?,
        owner: id(row, "owner_id", UserId::from_uuid)?,
        name: get(row, "name")?,
        kind: get(row, "kind")?,
        created_at: time(row, "created_at")?,
        tokens_valid_after: time(row, "tokens_valid_after")?,
        revoked_at: optional_time(row, "revoked_at")?,
    })
}

/// Columns: `id, device_id, device_name, seq, captured_at, received_at,
/// blob_key, bytes, width, height`.
pub(super) fn frame(row: &PgRow) -> StoreResult<FrameRecord> {
    Ok(FrameRecord {
        id: frame_id(row)?,
        device: id(row, "device_id", DeviceId::from_uuid)?,
        device_name: get(row, "device_name")?,
        seq: unsigned(row, "seq")?,
        captured_at: time(row, "captured_at")?,
        received_at: time(row, "received_at")?,
        blob_key: get(row, "blob_key")?,
        bytes: unsigned(row, "bytes")?,
        width: unsigned(row, "width")?,
        height: unsigned(row, "height")?,
    })
}

/// Columns: `label, device_id, device_name, captured_at, frame_id, score, x1, y1, x2, y2`.
pub(super) fn sighting(row: &PgRow) -> StoreResult<Sighting> {
    Ok(Sighting {
        label: label(row)?,
        device: id(row, "device_id", DeviceId::from_uuid)?,
        device_name: get(row, "device_name")?,
        captured_at: time(row, "captured_at")?,
        frame: id(row, "frame_id", FrameId::from_uuid)?,
        score: get(row, "score")?,
        bbox: bbox(row)?,
    })
}

/// Columns: `id, frame_id, device_id, device_name, captured_at` and those of [`detection`].
pub(super) fn detection_row(row: &PgRow) -> StoreResult<DetectionRow> {
    Ok(DetectionRow {
        id: get(row, "id")?,
        frame: id(row, "frame_id", FrameId::from_uuid)?,
        device: id(row, "device_id", DeviceId::from_uuid)?,
        device_name: get(row, "device_name")?,
        captured_at: time(row, "captured_at")?,
        detection: detection(row)?,
    })
}
