//! Retention: per-user limits, the oldest frames, their deletion with the
//! `last_seen` repair, and which images no frame points at any more.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, FrameId, UserId};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{self, db, micros, to_sql_int};
use crate::store::retention::sql;
use crate::store::rows::ColumnReader;
use crate::store::{
    AgedFrame, RetentionLimits, RetentionStore, RetentionSubject, StoreError, StoreResult,
};

/// Ids per `IN (...)` list, well under SQLite's 32,766 bound values.
const IDS_PER_STATEMENT: usize = 10_000;

const SUBJECTS: &str = "\
    SELECT u.id, r.user_id IS NOT NULL AS has_limits, r.max_age_days, r.max_bytes \
    FROM users u LEFT JOIN retention_overrides r ON r.user_id = u.id \
    WHERE u.id > ? ORDER BY u.id LIMIT ?";

/// Frames sharing an image carry its size each, so one per image counts.
const STORED_BYTES: &str = "\
    SELECT coalesce(sum(bytes), 0) FROM ( \
        SELECT max(bytes) AS bytes FROM frames WHERE owner_id = ? GROUP BY blob_key \
    )";

/// Oldest by `received_at` (the server's clock: a device clock stuck in 1970
/// must not get its frames swept at once). One batch through
/// `frames_by_owner_received`, then one count per image of the batch through
/// `frames_by_blob_key` (per image, not per frame: a still scene may have
/// thousands of frames on one image).
const OLDEST_FRAMES: &str = "\
    WITH batch AS ( \
        SELECT id, received_at, blob_key, bytes FROM frames \
        WHERE owner_id = ? AND received_at < ? ORDER BY received_at, id LIMIT ? \
    ), refs AS ( \
        SELECT k.blob_key, \
               (SELECT count(*) FROM frames g WHERE g.blob_key = k.blob_key) AS blob_refs \
        FROM (SELECT DISTINCT blob_key FROM batch) k \
    ) \
    SELECT b.id, b.received_at, b.blob_key, b.bytes, r.blob_refs \
    FROM batch b JOIN refs r ON r.blob_key = b.blob_key \
    ORDER BY b.received_at, b.id";

/// The newest remaining detection of one `(device, label)`, best score on
/// equal times; it never replaces a newer sighting stored meanwhile.
const REPAIR_LAST_SEEN: &str = "\
    INSERT INTO last_seen \
    (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) \
    SELECT device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2 \
    FROM detections WHERE device_id = ? AND label = ? \
    ORDER BY captured_at DESC, score DESC, id LIMIT 1 \
    ON CONFLICT (device_id, label) DO UPDATE SET \
        owner_id = excluded.owner_id, frame_id = excluded.frame_id, \
        captured_at = excluded.captured_at, score = excluded.score, \
        x1 = excluded.x1, y1 = excluded.y1, x2 = excluded.x2, y2 = excluded.y2 \
    WHERE excluded.captured_at > last_seen.captured_at";

const IS_REFERENCED: &str = "SELECT EXISTS (SELECT 1 FROM frames WHERE blob_key = ?)";

/// `(id, id, ...)`, closing the list.
fn push_ids(sql: &mut QueryBuilder<Sqlite>, ids: &[FrameId]) {
    let mut list = sql.separated(", ");
    for id in ids {
        list.push_bind(id.as_uuid());
    }
    sql.push(")");
}

async fn unreferenced(
    conn: &mut SqliteConnection,
    keys: BTreeSet<String>,
) -> StoreResult<Vec<String>> {
    let mut found = Vec::new();
    for key in keys {
        let referenced: bool = sqlx::query_scalar(IS_REFERENCED)
            .bind(&key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        if !referenced {
            found.push(key);
        }
    }
    Ok(found)
}

async fn oldest_frames(
    pool: &SqlitePool,
    owner: UserId,
    before: Option<DateTime<Utc>>,
    limit: u32,
) -> StoreResult<Vec<AgedFrame>> {
    sqlx::query(OLDEST_FRAMES)
        .bind(owner.as_uuid())
        .bind(before.map_or(i64::MAX, micros))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db)?
        .iter()
        .map(rows::aged_frame)
        .collect()
}

async fn delete_frames(
    pool: &SqlitePool,
    owner: UserId,
    ids: &[FrameId],
) -> StoreResult<Vec<String>> {
    // IMMEDIATE: the same write lock as ingest, so a frame that shares one
    // of these images is either committed before (and seen below) or checks
    // for the image after this commits (and does not find it).
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let mut pairs = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let mut select = QueryBuilder::<Sqlite>::new(
            "SELECT DISTINCT device_id, label FROM last_seen WHERE frame_id IN (",
        );
        push_ids(&mut select, chunk);
        for row in select.build().fetch_all(&mut *tx).await.map_err(db)? {
            pairs.insert((
                DeviceId::from_uuid(row.uuid("device_id")?),
                row.text("label")?,
            ));
        }

        let mut delete = QueryBuilder::<Sqlite>::new("DELETE FROM frames WHERE owner_id = ");
        delete.push_bind(owner.as_uuid()).push(" AND id IN (");
        push_ids(&mut delete, chunk);
        delete.push(" RETURNING blob_key");
        for row in delete.build().fetch_all(&mut *tx).await.map_err(db)? {
            keys.insert(row.text("blob_key")?);
        }
    }
    for (device, label) in &pairs {
        sqlx::query(REPAIR_LAST_SEEN)
            .bind(device.as_uuid())
            .bind(label)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
    }
    let unreferenced = unreferenced(&mut tx, keys).await?;
    tx.commit().await.map_err(db)?;
    Ok(unreferenced)
}

async fn unreferenced_blob_keys(pool: &SqlitePool, keys: &[String]) -> StoreResult<Vec<String>> {
    let mut conn = pool.acquire().await.map_err(db)?;
    unreferenced(&mut conn, keys.iter().cloned().collect()).await
}

crate::store::retention::retention_store!(SqliteStore);
