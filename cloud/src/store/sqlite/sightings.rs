//! [`SightingStore`] on SQLite: the owner's reads of sightings, detection
//! listings and a device's frames.
//!
//! Every query that answers a user is filtered by `owner_id` in SQL, never
//! after the fact, and the listings walk an index in their ORDER BY order so
//! their cost follows the page size rather than the history size.

use async_trait::async_trait;
use lastseen_shared::{DeviceId, FrameId, Label, UserId};
use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use super::frames::with_detections;
use super::rows::{self, db, micros};
use crate::store::{
    DetectionQuery, DetectionRow, FrameRecord, Sighting, SightingStore, StoreResult, StoredFrame,
};

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

crate::store::sightings::sighting_store!(SqliteStore);
