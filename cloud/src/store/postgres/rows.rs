//! How PostgreSQL values are read: native uuid and timestamptz, the latter
//! through a decoder of our own (see [`PgTime`]). Records are built from these
//! reads by the shared [`crate::store::rows`].

use chrono::{DateTime, Utc};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgRow, PgTypeInfo, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Row, Type};
use uuid::Uuid;

use crate::store::StoreResult;
use crate::store::rows::{ColumnReader, read_error};

/// `at` cut to whole microseconds, rounding down as the SQLite backend does
/// (sqlx alone would round towards 2000-01-01, upwards before it).
pub(super) fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
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
    row.try_get(column).map_err(|e| read_error(column, e))
}

impl ColumnReader for PgRow {
    crate::store::rows::decoded_column_reads!();

    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        get::<PgTime>(self, column).map(|t| t.0)
    }

    fn optional_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        get::<Option<PgTime>>(self, column).map(|t| t.map(|t| t.0))
    }
}

pub(super) use crate::store::rows::{
    aged_frame, db, detection, detection_row, device, device_columns, frame, frame_id,
    frame_identity, retention_limits, sighting, to_sql_int, user,
};
