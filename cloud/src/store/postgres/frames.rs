//! [`FrameStore`] on PostgreSQL. Storing one frame: the frame row, its
//! detections and the `last_seen` upserts, all in one transaction, or — for a
//! `(device, seq)` seen before — nothing at all. Then the reads ingest needs
//! to tell a resend, a reused seq and an unchanged scene apart.
//!
//! Each table gets one statement whatever the number of detections: the rows
//! travel as one array per column and `UNNEST` turns them back into rows,
//! which keeps the statement text (and its prepared plan) fixed.

use async_trait::async_trait;
use lastseen_shared::{Detection, DeviceId, FrameId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool};

use super::PgStore;
use super::rows::{self, db, micros, to_sql_int};
use crate::store::frames::{best_per_label, sql};
use crate::store::rows::ColumnReader;
use crate::store::{
    FrameIdentity, FrameStore, InsertOutcome, NewFrame, StoreError, StoreResult, StoredFrame,
};

/// A concurrent insert of the same `(device, seq)` makes this one wait for
/// its transaction; if that commits, this one does nothing and returns no row.
const INSERT_FRAME: &str = "\
    INSERT INTO frames \
    (id, device_id, owner_id, seq, captured_at, received_at, blob_key, bytes, width, height, \
     clock_skewed, image_sha256) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
    ON CONFLICT (device_id, seq) DO NOTHING \
    RETURNING id";

/// Under READ COMMITTED this statement sees the row whose commit made the
/// insert above do nothing.
const EXISTING_FRAME: &str = "SELECT id FROM frames WHERE device_id = $1 AND seq = $2";

/// Another frame of the device with the shared image, locked until commit.
/// `KEY SHARE` conflicts with a deletion's row lock: a retention deletion that
/// got there first makes this wait and then skip the deleted row (no frame
/// left: the image is going); one that comes later waits for this commit and
/// then sees the new frame pointing at the image, so it keeps the image.
pub(super) const LOCK_IMAGE_FRAME: &str = "\
    SELECT 1 FROM frames WHERE blob_key = $1 AND device_id = $2 AND id <> $3 \
    LIMIT 1 FOR KEY SHARE";

/// Ids are drawn in array order (`ORDER BY n`), as the SQLite backend's
/// multi-row `VALUES` does, so equal scores read back in the order sent.
const INSERT_DETECTIONS: &str = "\
    INSERT INTO detections \
    (frame_id, device_id, owner_id, label, score, x1, y1, x2, y2, captured_at) \
    SELECT $1, $2, $3, d.label, d.score, d.x1, d.y1, d.x2, d.y2, $4 \
    FROM UNNEST($5::text[], $6::real[], $7::real[], $8::real[], $9::real[], $10::real[]) \
         WITH ORDINALITY AS d (label, score, x1, y1, x2, y2, n) \
    ORDER BY d.n";

/// The `WHERE` on the update keeps a late frame (from a device's spool) from
/// replacing a newer sighting; on equal times the first stored frame stays.
/// The labels are distinct (one row per label), as `ON CONFLICT DO UPDATE`
/// requires within one statement.
const UPSERT_LAST_SEEN: &str = "\
    INSERT INTO last_seen \
    (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) \
    SELECT $1, s.label, $2, $3, $4, s.score, s.x1, s.y1, s.x2, s.y2 \
    FROM UNNEST($5::text[], $6::real[], $7::real[], $8::real[], $9::real[], $10::real[]) \
         AS s (label, score, x1, y1, x2, y2) \
    ON CONFLICT (device_id, label) DO UPDATE SET \
        owner_id = excluded.owner_id, frame_id = excluded.frame_id, \
        captured_at = excluded.captured_at, score = excluded.score, \
        x1 = excluded.x1, y1 = excluded.y1, x2 = excluded.x2, y2 = excluded.y2 \
    WHERE excluded.captured_at > last_seen.captured_at";

/// The device's newest frame before `$2`, then the first frame (lowest seq)
/// pointing at its image: both lookups walk an index (`(device_id, seq)`,
/// `(blob_key, seq)`) and stop at their first row.
pub(super) const PREVIOUS_IMAGE: &str = "\
    SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
           f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
    FROM frames f JOIN devices d ON d.id = f.device_id \
    WHERE f.device_id = $1 AND f.blob_key = ( \
        SELECT blob_key FROM frames WHERE device_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1 \
    ) \
    ORDER BY f.seq LIMIT 1";

/// Through `detections_by_frame`; a frame has few detections to sort.
pub(super) const FRAME_DETECTIONS: &str = "\
    SELECT label, score, x1, y1, x2, y2 FROM detections \
    WHERE frame_id = $1 ORDER BY score DESC, id";

async fn image_has_other_frames(conn: &mut PgConnection, frame: &NewFrame) -> StoreResult<bool> {
    let locked: Option<i32> = sqlx::query_scalar(LOCK_IMAGE_FRAME)
        .bind(&frame.blob_key)
        .bind(frame.device.as_uuid())
        .bind(frame.id.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db)?;
    Ok(locked.is_some())
}

async fn existing_frame(
    conn: &mut PgConnection,
    frame: &NewFrame,
    seq: i64,
) -> StoreResult<FrameId> {
    let row = sqlx::query(EXISTING_FRAME)
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

/// One array per column, in the order of the detections given.
struct Columns<'a> {
    labels: Vec<&'a str>,
    scores: Vec<f32>,
    x1: Vec<f32>,
    y1: Vec<f32>,
    x2: Vec<f32>,
    y2: Vec<f32>,
}

impl<'a> Columns<'a> {
    fn of(detections: impl ExactSizeIterator<Item = &'a Detection>) -> Self {
        let n = detections.len();
        let mut columns = Self {
            labels: Vec::with_capacity(n),
            scores: Vec::with_capacity(n),
            x1: Vec::with_capacity(n),
            y1: Vec::with_capacity(n),
            x2: Vec::with_capacity(n),
            y2: Vec::with_capacity(n),
        };
        for detection in detections {
            columns.labels.push(detection.label.as_str());
            columns.scores.push(detection.score);
            columns.x1.push(detection.bbox.x1);
            columns.y1.push(detection.bbox.y1);
            columns.x2.push(detection.bbox.x2);
            columns.y2.push(detection.bbox.y2);
        }
        columns
    }
}

async fn insert_detections(conn: &mut PgConnection, frame: &NewFrame) -> StoreResult<()> {
    let columns = Columns::of(frame.detections.iter());
    sqlx::query(INSERT_DETECTIONS)
        .bind(frame.id.as_uuid())
        .bind(frame.device.as_uuid())
        .bind(frame.owner.as_uuid())
        .bind(micros(frame.captured_at))
        .bind(&columns.labels)
        .bind(&columns.scores)
        .bind(&columns.x1)
        .bind(&columns.y1)
        .bind(&columns.x2)
        .bind(&columns.y2)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Upserts, per label, the frame's highest-scoring detection of that label.
async fn update_last_seen(conn: &mut PgConnection, frame: &NewFrame) -> StoreResult<()> {
    let best = best_per_label(&frame.detections);
    let columns = Columns::of(best.into_values());
    sqlx::query(UPSERT_LAST_SEEN)
        .bind(frame.device.as_uuid())
        .bind(frame.owner.as_uuid())
        .bind(frame.id.as_uuid())
        .bind(micros(frame.captured_at))
        .bind(&columns.labels)
        .bind(&columns.scores)
        .bind(&columns.x1)
        .bind(&columns.y1)
        .bind(&columns.x2)
        .bind(&columns.y2)
        .execute(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Two statements without a snapshot between them are enough: detections are
/// written in the frame's own transaction and never change afterwards.
pub(super) async fn with_detections(
    pool: &PgPool,
    row: Option<PgRow>,
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

async fn insert_frame(pool: &PgPool, frame: &NewFrame) -> StoreResult<InsertOutcome> {
    // Checked before the transaction starts: nothing is written for a frame
    // whose numbers the schema cannot hold.
    let seq = to_sql_int("seq", frame.seq)?;
    let bytes = to_sql_int("bytes", frame.bytes)?;

    let mut tx = pool.begin().await.map_err(db)?;
    let inserted: Option<uuid::Uuid> = sqlx::query_scalar(INSERT_FRAME)
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
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;

    if inserted.is_none() {
        let existing = existing_frame(&mut tx, frame, seq).await?;
        tx.rollback().await.map_err(db)?;
        return Ok(InsertOutcome::Duplicate(existing));
    }
    if frame.shares_image && !image_has_other_frames(&mut tx, frame).await? {
        tx.rollback().await.map_err(db)?;
        return Ok(InsertOutcome::ImageGone);
    }

    if !frame.detections.is_empty() {
        insert_detections(&mut tx, frame).await?;
        update_last_seen(&mut tx, frame).await?;
    }
    tx.commit().await.map_err(db)?;
    Ok(InsertOutcome::Inserted)
}

crate::store::frames::frame_store!(PgStore);
