//! Retention: per-user limits, the oldest frames, their deletion with the
//! `last_seen` repair, and which images no frame points at any more.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{FrameId, UserId};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::PgStore;
use super::rows::{self, db, micros, to_sql_int};
use crate::store::retention::sql;
use crate::store::rows::ColumnReader;
use crate::store::{
    AgedFrame, RetentionLimits, RetentionStore, RetentionSubject, StoreError, StoreResult,
};

const SUBJECTS: &str = "\
    SELECT u.id, (CASE WHEN r.user_id IS NULL THEN 0 ELSE 1 END)::int8 AS has_limits, r.max_age_days, r.max_bytes \
    FROM users u LEFT JOIN retention_overrides r ON r.user_id = u.id \
    WHERE u.id > $1 ORDER BY u.id LIMIT $2";

/// Frames sharing an image carry its size each, so one per image counts.
/// Read from `frames_by_owner_received`, which includes `blob_key` and `bytes`.
pub(super) const STORED_BYTES: &str = "\
    SELECT coalesce(sum(bytes), 0)::int8 FROM ( \
        SELECT max(bytes) AS bytes FROM frames WHERE owner_id = $1 GROUP BY blob_key \
    ) images";

/// Oldest by `received_at` (the server's clock: a device clock stuck in 1970
/// must not get its frames swept at once). One batch through
/// `frames_by_owner_received`, then one count per image of the batch through
/// `frames_by_blob_key` (per image, not per frame: a still scene may have
/// thousands of frames on one image).
pub(super) const OLDEST_FRAMES: &str = "\
    WITH batch AS ( \
        SELECT id, received_at, blob_key, bytes FROM frames \
        WHERE owner_id = $1 AND ($2::timestamptz IS NULL OR received_at < $2) \
        ORDER BY received_at, id LIMIT $3 \
    ), refs AS ( \
        SELECT k.blob_key, \
               (SELECT count(*) FROM frames g WHERE g.blob_key = k.blob_key) AS blob_refs \
        FROM (SELECT DISTINCT blob_key FROM batch) k \
    ) \
    SELECT b.id, b.received_at, b.blob_key, b.bytes, r.blob_refs \
    FROM batch b JOIN refs r ON r.blob_key = b.blob_key \
    ORDER BY b.received_at, b.id";

/// The `(device, label)` pairs whose sighting names one of the frames.
pub(super) const AFFECTED_SIGHTINGS: &str =
    "SELECT DISTINCT device_id, label FROM last_seen WHERE frame_id = ANY($1)";

/// The cascades take the detections and the `last_seen` rows with them.
const DELETE_FRAMES: &str =
    "DELETE FROM frames WHERE owner_id = $1 AND id = ANY($2) RETURNING blob_key";

/// For each pair, the newest remaining detection, best score on equal times;
/// it never replaces a newer sighting stored meanwhile.
pub(super) const REPAIR_LAST_SEEN: &str = "\
    INSERT INTO last_seen \
    (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) \
    SELECT best.device_id, best.label, best.owner_id, best.frame_id, best.captured_at, \
           best.score, best.x1, best.y1, best.x2, best.y2 \
    FROM UNNEST($1::uuid[], $2::text[]) AS p (device_id, label) \
    CROSS JOIN LATERAL ( \
        SELECT * FROM detections d \
        WHERE d.device_id = p.device_id AND d.label = p.label \
        ORDER BY d.captured_at DESC, d.score DESC, d.id LIMIT 1 \
    ) best \
    ON CONFLICT (device_id, label) DO UPDATE SET \
        owner_id = excluded.owner_id, frame_id = excluded.frame_id, \
        captured_at = excluded.captured_at, score = excluded.score, \
        x1 = excluded.x1, y1 = excluded.y1, x2 = excluded.x2, y2 = excluded.y2 \
    WHERE excluded.captured_at > last_seen.captured_at";

pub(super) const UNREFERENCED: &str = "\
    SELECT k.key FROM UNNEST($1::text[]) AS k (key) \
    WHERE NOT EXISTS (SELECT 1 FROM frames f WHERE f.blob_key = k.key)";

async fn unreferenced(conn: &mut PgConnection, keys: Vec<String>) -> StoreResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(UNREFERENCED)
        .bind(&keys)
        .fetch_all(conn)
        .await
        .map_err(db)
}

async fn oldest_frames(
    pool: &PgPool,
    owner: UserId,
    before: Option<DateTime<Utc>>,
    limit: u32,
) -> StoreResult<Vec<AgedFrame>> {
    sqlx::query(OLDEST_FRAMES)
        .bind(owner.as_uuid())
        .bind(before.map(micros))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::aged_frame)
        .collect()
}

async fn delete_frames(pool: &PgPool, owner: UserId, ids: &[FrameId]) -> StoreResult<Vec<String>> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
    let mut tx = pool.begin().await.map_err(db)?;
    let mut devices = Vec::new();
    let mut labels = Vec::new();
    for row in sqlx::query(AFFECTED_SIGHTINGS)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
    {
        devices.push(row.uuid("device_id")?);
        labels.push(row.text("label")?);
    }
    let mut keys = BTreeSet::new();
    for row in sqlx::query(DELETE_FRAMES)
        .bind(owner.as_uuid())
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?
    {
        keys.insert(row.text("blob_key")?);
    }
    if !devices.is_empty() {
        sqlx::query(REPAIR_LAST_SEEN)
            .bind(&devices)
            .bind(&labels)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    // A later statement under READ COMMITTED: it sees a frame that shared one
    // of these images and committed while the DELETE waited for its lock.
    let unreferenced = unreferenced(&mut tx, keys.into_iter().collect()).await?;
    tx.commit().await.map_err(db)?;
    Ok(unreferenced)
}

async fn unreferenced_blob_keys(pool: &PgPool, keys: &[String]) -> StoreResult<Vec<String>> {
    let distinct: BTreeSet<&String> = keys.iter().collect();
    let mut conn = pool.acquire().await.map_err(db)?;
    unreferenced(&mut conn, distinct.into_iter().cloned().collect()).await
}

crate::store::retention::retention_store!(PgStore);
