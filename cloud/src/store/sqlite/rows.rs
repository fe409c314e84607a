//! How SQLite holds values: times as integer microseconds since the Unix
//! epoch, ids as 16-byte blobs. Records are built from these reads by the
//! shared [`crate::store::rows`].

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};
use uuid::Uuid;

use crate::store::rows::{ColumnReader, read_error};
use crate::store::{StoreError, StoreResult};

pub(super) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> StoreResult<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column).map_err(|e| read_error(column, e))
}

impl ColumnReader for SqliteRow {
    crate::store::rows::decoded_column_reads!();

    fn time(&self, column: &str) -> StoreResult<DateTime<Utc>> {
        from_micros(column, get(self, column)?)
    }

    fn optional_time(&self, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let value: Option<i64> = get(self, column)?;
        value.map(|value| from_micros(column, value)).transpose()
    }
}

fn from_micros(column: &str, value: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(value)
        .ok_or_else(|| StoreError::Corrupt(format!("column {column}: {value} is not a time")))
}

pub(super) use crate::store::rows::{
    aged_frame, db, detection, detection_row, device, device_columns, frame, frame_id,
    frame_identity, retention_limits, sighting, to_sql_int, user,
};
