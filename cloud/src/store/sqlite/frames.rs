//! [`FrameStore`] on SQLite. Storing one frame: the frame row, its detections
//! and the `last_seen` upserts, all in one transaction, or — for a
//! `(device, seq)` seen before — nothing at all. Then the reads ingest needs
//! to tell a resend, a reused seq and an unchanged scene apart.

use async_trait::async_trait;
use lastseen_shared::{Detection, DeviceId, FrameId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::SqliteStore;
use super::rows::{self, db, micros, to_sql_int};
use crate::store::frames::{best_per_label, sql};
use crate::store::rows::ColumnReader;
use crate::store::{
    FrameIdentity, FrameStore, InsertOutcome, NewFrame, StoreError, StoreResult, StoredFrame,
};

/// SQLite's default `SQLITE_MAX_VARIABLE_NUMBER` (since 3.32).
const MAX_BINDS: usize = 32_766;

/// Bound values per row in the detections and `last_seen` inserts below.
const BINDS_PER_ROW: usize = 10;

const ROWS_PER_INSERT: usize = MAX_BINDS / BINDS_PER_ROW;

/// The device's newest frame before `?2`, then the first frame (lowest seq)
/// pointing at its image: both lookups walk an index (`(device_id, seq)`,
/// `(blob_key, seq)`) and stop at their first row.
const PREVIOUS_IMAGE: &str = "\
    SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
           f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
    FROM frames f JOIN devices d ON d.id = f.device_id \
    WHERE f.device_id = ?1 AND f.blob_key = ( \
        SELECT blob_key FROM frames WHERE device_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1 \
    ) \
    ORDER BY f.seq LIMIT 1";

const FRAME_DETECTIONS: &str = "\
    SELECT label, score, x1, y1, x2, y2 FROM detections \
    WHERE frame_id = ? ORDER BY score DESC, id";

async fn existing_frame(
    conn: &mut SqliteConnection,
    frame: &NewFrame,
    seq: i64,
) -> StoreResult<FrameId> {
    let row = sqlx::query("SELECT id FROM frames WHERE device_id = ? AND seq = ?")
        .bind(frame.device.as_uuid())
        .bind(seq)
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .ok_or_else(|| {
            StoreError::Corrupt("frame insert conflicted, but no frame has its seq".into())
        })?;
    rows::frame_id(&row)
}

async fn image_has_other_frames(
    conn: &mut SqliteConnection,
    frame: &NewFrame,
) -> StoreResult<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM frames WHERE blob_key = ? AND device_id = ? AND id <> ?)",
    )
    .bind(&frame.blob_key)
    .bind(frame.device.as_uuid())
    .bind(frame.id.as_uuid())
    .fetch_one(conn)
    .await
    .map_err(db)
}

async fn insert_detections(conn: &mut SqliteConnection, frame: &NewFrame) -> StoreResult<()> {
    let captured_at = micros(frame.captured_at);
    for chunk in frame.detections.chunks(ROWS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO detections \
             (frame_id, device_id, owner_id, label, score, x1, y1, x2, y2, captured_at) ",
        );
        insert.push_values(chunk, |mut row, detection| {
            row.push_bind(frame.id.as_uuid())
                .push_bind(frame.device.as_uuid())
                .push_bind(frame.owner.as_uuid())
                .push_bind(detection.label.as_str())
                .push_bind(detection.score)
                .push_bind(detection.bbox.x1)
                .push_bind(detection.bbox.y1)
                .push_bind(detection.bbox.x2)
                .push_bind(detection.bbox.y2)
                .push_bind(captured_at);
        });
        insert.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// Upserts, per label, the frame's highest-scoring detection of that label.
/// The `WHERE` on the update keeps a late frame (from a device's spool) from
/// replacing a newer sighting; on equal times the first stored frame stays.
async fn update_last_seen(conn: &mut SqliteConnection, frame: &NewFrame) -> StoreResult<()> {
    let captured_at = micros(frame.captured_at);
    let best: Vec<&Detection> = best_per_label(&frame.detections).into_values().collect();
    for chunk in best.chunks(ROWS_PER_INSERT) {
        let mut upsert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO last_seen \
             (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) ",
        );
        upsert.push_values(chunk, |mut row, detection| {
            row.push_bind(frame.device.as_uuid())
                .push_bind(detection.label.as_str())
                .push_bind(frame.owner.as_uuid())
                .push_bind(frame.id.as_uuid())
                .push_bind(captured_at)
                .push_bind(detection.score)
                .push_bind(detection.bbox.x1)
                .push_bind(detection.bbox.y1)
                .push_bind(detection.bbox.x2)
                .push_bind(detection.bbox.y2);
        });
        upsert.push(
            " ON CONFLICT (device_id, label) DO UPDATE SET \
             owner_id = excluded.owner_id, frame_id = excluded.frame_id, \
             captured_at = excluded.captured_at, score = excluded.score, \
             x1 = excluded.x1, y1 = excluded.y1, x2 = excluded.x2, y2 = excluded.y2 \
             WHERE excluded.captured_at > last_seen.captured_at",
        );
        upsert.build().execute(&mut *conn).await.map_err(db)?;
    }
    Ok(())
}

/// Two statements without a snapshot between them are enough: detections are
/// written in the frame's own transaction and never change afterwards.
pub(super) async fn with_detections(
    pool: &SqlitePool,
    row: Option<SqliteRow>,
) -> StoreResult<Option<StoredFrame>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let frame = rows::frame(&row)?;
    let detections = sqlx::query(FRAME_DETECTIONS)
        .bind(frame.id.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::detection)
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(StoredFrame { frame, detections }))
}

async fn insert_frame(pool: &SqlitePool, frame: &NewFrame) -> StoreResult<InsertOutcome> {
    let seq = to_sql_int("seq", frame.seq)?;
    let bytes = to_sql_int("bytes", frame.bytes)?;

    // IMMEDIATE takes the write lock up front, waiting out `busy_timeout` if
    // needed. A deferred transaction would start as a reader and could then
    // fail its upgrade to writer with SQLITE_BUSY, which no timeout retries.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;

    let inserted = sqlx::query(
        "INSERT INTO frames \
         (id, device_id, owner_id, seq, captured_at, received_at, blob_key, bytes, width, height, \
          clock_skewed, image_sha256) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (device_id, seq) DO NOTHING",
    )
    .bind(frame.id.as_uuid())
    .bind(frame.device.as_uuid())
    .bind(frame.owner.as_uuid())
    .bind(seq)
    .bind(micros(frame.captured_at))
    .bind(micros(frame.received_at))
    .bind(&frame.blob_key)
    .bind(bytes)
    .bind(i64::from(frame.width))
    .bind(i64::from(frame.height))
    .bind(frame.clock_skewed)
    .bind(frame.image_sha256.map(|d| d.as_bytes().to_vec()))
    .execute(&mut *tx)
    .await
    .map_err(db)?
    .rows_affected();

    if inserted == 0 {
        let existing = existing_frame(&mut tx, frame, seq).await?;
        tx.rollback().await.map_err(db)?;
        return Ok(InsertOutcome::Duplicate(existing));
    }
    // Deletions take the same write lock, so this answer holds until commit.
    if frame.shares_image && !image_has_other_frames(&mut tx, frame).await? {
        tx.rollback().await.map_err(db)?;
        return Ok(InsertOutcome::ImageGone);
    }

    insert_detections(&mut tx, frame).await?;
    update_last_seen(&mut tx, frame).await?;
    tx.commit().await.map_err(db)?;
    Ok(InsertOutcome::Inserted)
}

crate::store::frames::frame_store!(SqliteStore);
