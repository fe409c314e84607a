//! Reads of frames, sightings and detection listings.
//!
//! Every query that answers a user is filtered by `owner_id` in SQL, never
//! after the fact, and the listings walk an index in their ORDER BY order so
//! their cost follows the page size rather than the history size.

use lastseen_shared::{DeviceId, FrameId, Label, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::rows::{self, db, micros};
use crate::store::rows::ColumnReader;
use crate::store::{
    DetectionQuery, DetectionRow, FrameIdentity, FrameRecord, Sighting, StoreError, StoreResult,
    StoredFrame,
};

const FRAME_BY_SEQ: &str = "\
    SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
           f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
    FROM frames f JOIN devices d ON d.id = f.device_id \
    WHERE f.device_id = ? AND f.seq = ?";

/// Walks the unique `(device_id, seq)` index and stops after `LIMIT` rows.
const FRAMES_OF_DEVICE: &str = "\
    SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
           f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
    FROM frames f JOIN devices d ON d.id = f.device_id \
    WHERE f.device_id = ? AND f.owner_id = ? AND f.seq > ? \
    ORDER BY f.seq LIMIT ?";

const FRAME_OF_OWNER: &str = "\
    SELECT f.id, f.device_id, d.name AS device_name, f.seq, f.captured_at, f.received_at, \
           f.blob_key, f.bytes, f.width, f.height, f.clock_skewed \
    FROM frames f JOIN devices d ON d.id = f.device_id \
    WHERE f.id = ? AND f.owner_id = ?";

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

/// The newest sighting of one label; ties between devices go to the higher
/// score, then the lower device id, so the answer is deterministic.
pub(super) const LAST_SEEN_OF_LABEL: &str = "\
    SELECT s.label, s.device_id, d.name AS device_name, s.captured_at, s.frame_id, \
           s.score, s.x1, s.y1, s.x2, s.y2 \
    FROM last_seen s JOIN devices d ON d.id = s.device_id \
    WHERE s.owner_id = ? AND s.label = ? \
    ORDER BY s.captured_at DESC, s.score DESC, s.device_id \
    LIMIT 1";

/// The same choice as [`LAST_SEEN_OF_LABEL`], made for every label at once.
/// An owner has at most (devices x labels) rows here, so ranking them all is cheap.
pub(super) const LAST_SEEN_ALL: &str = "\
    SELECT s.label, s.device_id, d.name AS device_name, s.captured_at, s.frame_id, \
           s.score, s.x1, s.y1, s.x2, s.y2 \
    FROM ( \
        SELECT *, ROW_NUMBER() OVER ( \
            PARTITION BY label ORDER BY captured_at DESC, score DESC, device_id \
        ) AS newest \
        FROM last_seen WHERE owner_id = ? \
    ) s JOIN devices d ON d.id = s.device_id \
    WHERE s.newest = 1 \
    ORDER BY s.captured_at DESC, s.label";

pub(super) async fn frame_by_seq(
    pool: &SqlitePool,
    device: DeviceId,
    seq: u64,
) -> StoreResult<Option<StoredFrame>> {
    // No frame can be stored with a seq beyond i64::MAX, so there is nothing to find.
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let row = sqlx::query(FRAME_BY_SEQ)
        .bind(device.as_uuid())
        .bind(seq)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    with_detections(pool, row).await
}

/// One row of the unique `(device_id, seq)` index.
const FRAME_IDENTITY: &str = "\
    SELECT captured_at, image_sha256 FROM frames WHERE device_id = ? AND seq = ?";

/// The last entry of the device's part of the `(device_id, seq)` index.
const HIGHEST_SEQ: &str = "SELECT MAX(seq) AS seq FROM frames WHERE device_id = ?";

pub(super) async fn frame_identity(
    pool: &SqlitePool,
    device: DeviceId,
    seq: u64,
) -> StoreResult<Option<FrameIdentity>> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    sqlx::query(FRAME_IDENTITY)
        .bind(device.as_uuid())
        .bind(seq)
        .fetch_optional(pool)
        .await
        .map_err(db)?
        .as_ref()
        .map(rows::frame_identity)
        .transpose()
}

pub(super) async fn highest_seq(pool: &SqlitePool, device: DeviceId) -> StoreResult<Option<u64>> {
    let row = sqlx::query(HIGHEST_SEQ)
        .bind(device.as_uuid())
        .fetch_one(pool)
        .await
        .map_err(db)?;
    row.optional_int("seq")?
        .map(|seq| {
            u64::try_from(seq)
                .map_err(|_| StoreError::Corrupt(format!("column seq: {seq} is negative")))
        })
        .transpose()
}

pub(super) async fn frames_of_device(
    pool: &SqlitePool,
    owner: UserId,
    device: DeviceId,
    after_seq: Option<u64>,
    limit: u32,
) -> StoreResult<Vec<FrameRecord>> {
    // Stored seqs are 0..=i64::MAX: -1 is before all of them, and nothing is after i64::MAX.
    let after = match after_seq {
        None => -1,
        Some(seq) => match i64::try_from(seq) {
            Ok(seq) => seq,
            Err(_) => return Ok(Vec::new()),
        },
    };
    sqlx::query(FRAMES_OF_DEVICE)
        .bind(device.as_uuid())
        .bind(owner.as_uuid())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::frame)
        .collect()
}

pub(super) async fn frame_of_owner(
    pool: &SqlitePool,
    owner: UserId,
    id: FrameId,
) -> StoreResult<Option<StoredFrame>> {
    let row = sqlx::query(FRAME_OF_OWNER)
        .bind(id.as_uuid())
        .bind(owner.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    with_detections(pool, row).await
}

pub(super) async fn previous_image(
    pool: &SqlitePool,
    device: DeviceId,
    seq: u64,
) -> StoreResult<Option<StoredFrame>> {
    // Every stored seq fits an i64, so a larger one is after all of them.
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let row = sqlx::query(PREVIOUS_IMAGE)
        .bind(device.as_uuid())
        .bind(seq)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    with_detections(pool, row).await
}

/// Two statements without a snapshot between them are enough: detections are
/// written in the frame's own transaction and never change afterwards.
async fn with_detections(
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

pub(super) async fn last_seen(
    pool: &SqlitePool,
    owner: UserId,
    label: Option<&Label>,
) -> StoreResult<Vec<Sighting>> {
    let query = match label {
        Some(label) => sqlx::query(LAST_SEEN_OF_LABEL)
            .bind(owner.as_uuid())
            .bind(label.as_str()),
        None => sqlx::query(LAST_SEEN_ALL).bind(owner.as_uuid()),
    };
    query
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::sighting)
        .collect()
}

pub(super) async fn detections(
    pool: &SqlitePool,
    query: &DetectionQuery,
) -> StoreResult<Vec<DetectionRow>> {
    let mut listing = QueryBuilder::new("");
    push_detection_listing(&mut listing, query);
    listing
        .build()
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::detection_row)
        .collect()
}

/// Appends the listing SELECT for `query` to `sql` (tests prefix it with
/// `EXPLAIN QUERY PLAN`).
///
/// `CROSS JOIN` makes SQLite keep `detections` as the outer loop: it then
/// walks one of the `(…, captured_at DESC, id DESC)` indexes and stops after
/// `LIMIT` rows, instead of starting from the small `devices` table and sorting.
pub(super) fn push_detection_listing(sql: &mut QueryBuilder<Sqlite>, query: &DetectionQuery) {
    sql.push(
        "SELECT t.id, t.frame_id, t.device_id, d.name AS device_name, t.captured_at, \
                t.label, t.score, t.x1, t.y1, t.x2, t.y2 \
         FROM detections t CROSS JOIN devices d ON d.id = t.device_id \
         WHERE t.owner_id = ",
    )
    .push_bind(query.owner.as_uuid());
    if let Some(label) = &query.label {
        sql.push(" AND t.label = ").push_bind(label.as_str());
    }
    if let Some(device) = query.device {
        sql.push(" AND t.device_id = ").push_bind(device.as_uuid());
    }
    if let Some(since) = query.since {
        sql.push(" AND t.captured_at >= ").push_bind(micros(since));
    }
    if let Some(until) = query.until {
        sql.push(" AND t.captured_at < ").push_bind(micros(until));
    }
    if let Some(after) = query.after {
        sql.push(" AND (t.captured_at, t.id) < (")
            .push_bind(micros(after.captured_at))
            .push(", ")
            .push_bind(after.detection_id)
            .push(")");
    }
    sql.push(" ORDER BY t.captured_at DESC, t.id DESC LIMIT ")
        .push_bind(i64::from(query.limit));
}
