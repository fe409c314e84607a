//! Behaviour every [`Store`] backend must show, written once.
//!
//! A backend runs the whole suite with
//! `crate::store::conformance::store_conformance_tests!(fresh);` inside its
//! test module, where `async fn fresh() -> (impl Store, Guard)` opens an empty
//! store and `Guard` (temp dir, schema, …) is dropped when the test ends.
//!
//! Each body creates its own users with unique names and reads only through
//! them, so bodies also pass when several share one database. Timestamps are
//! whole microseconds, the precision every backend keeps.

pub(crate) mod accounts;
pub(crate) mod frames;
pub(crate) mod listings;
pub(crate) mod sightings;

use chrono::{DateTime, Duration, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};

use super::{
    Cursor, DetectionQuery, DetectionRow, DeviceRecord, FrameRecord, InsertOutcome, NewFrame,
    Sighting, Store, StoreError, StoredFrame, UserRecord,
};

/// One `#[tokio::test]` per body in the submodules; see the module docs.
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        $crate::store::conformance::store_conformance_tests!(@each $fresh;
            accounts::ping_answers,
            accounts::users_are_found_by_name_and_by_id,
            accounts::taken_username_is_a_conflict,
            accounts::hostile_usernames_are_matched_literally,
            accounts::devices_are_listed_oldest_first_and_counted_per_owner,
            frames::stored_frame_is_read_back_by_seq_and_by_its_owner_only,
            frames::frame_without_detections_is_stored,
            frames::duplicate_seq_is_stored_once,
            frames::concurrent_inserts_of_one_seq_store_one_frame,
            frames::seq_beyond_i64_max_is_refused_and_i64_max_round_trips,
            frames::frame_with_thousands_of_detections_is_stored_whole,
            sightings::last_seen_moves_forward_but_never_back,
            sightings::last_seen_keeps_the_best_detection_of_a_label_in_a_frame,
            sightings::last_seen_of_all_labels_is_the_newest_per_label_newest_first,
            listings::detections_are_filtered_by_label_device_and_time_window,
            listings::detection_pages_neither_lose_nor_repeat_rows_when_times_tie,
            listings::no_read_crosses_owners,
        );
    };
    (@each $fresh:path; $($module:ident::$name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let (store, _guard) = $fresh().await;
            $crate::store::conformance::$module::$name(&store).await;
        }
    )*};
}
pub(crate) use store_conformance_tests;

/// A fixed instant with a sub-second part, plus `seconds`.
fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap() + Duration::seconds(seconds)
}

fn label(name: &str) -> Label {
    Label::parse(name).unwrap()
}

fn det(name: &str, score: f32, b: [f32; 4]) -> Detection {
    Detection {
        label: label(name),
        score,
        bbox: BBox::from(b),
    }
}

async fn user_named(store: &dyn Store, username: String) -> UserRecord {
    let user = UserRecord {
        id: UserId::new(),
        username,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: at(0),
    };
    store.create_user(&user).await.unwrap();
    user
}

async fn user(store: &dyn Store) -> UserRecord {
    user_named(store, format!("user-{}", UserId::new())).await
}

async fn device_at(
    store: &dyn Store,
    owner: &UserRecord,
    name: &str,
    created: i64,
) -> DeviceRecord {
    let device = DeviceRecord {
        id: DeviceId::new(),
        owner: owner.id,
        name: name.into(),
        created_at: at(created),
    };
    store.create_device(&device).await.unwrap();
    device
}

async fn device(store: &dyn Store, owner: &UserRecord) -> DeviceRecord {
    device_at(store, owner, "kitchen", 0).await
}

fn frame(device: &DeviceRecord, seq: u64, captured: i64, detections: Vec<Detection>) -> NewFrame {
    NewFrame {
        id: FrameId::new(),
        device: device.id,
        owner: device.owner,
        seq,
        captured_at: at(captured),
        received_at: at(captured + 1),
        blob_key: format!("frames/{}/{seq:020}.jpg", device.id),
        bytes: 12_345,
        width: 640,
        height: 360,
        detections,
    }
}

async fn insert(store: &dyn Store, frame: &NewFrame) {
    assert_eq!(
        store.insert_frame(frame).await.unwrap(),
        InsertOutcome::Inserted
    );
}

/// What a backend must return for `frame`, stored on `device`.
fn expected(device: &DeviceRecord, frame: &NewFrame) -> StoredFrame {
    let mut detections = frame.detections.clone();
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    StoredFrame {
        frame: FrameRecord {
            id: frame.id,
            device: frame.device,
            device_name: device.name.clone(),
            seq: frame.seq,
            captured_at: frame.captured_at,
            received_at: frame.received_at,
            blob_key: frame.blob_key.clone(),
            bytes: frame.bytes,
            width: frame.width,
            height: frame.height,
        },
        detections,
    }
}

fn query(owner: &UserRecord) -> DetectionQuery {
    DetectionQuery {
        owner: owner.id,
        label: None,
        device: None,
        since: None,
        until: None,
        after: None,
        limit: 1_000,
    }
}

fn cursor_after(row: &DetectionRow) -> Cursor {
    Cursor {
        captured_at: row.captured_at,
        detection_id: row.id,
    }
}

/// `(frame, label)` of each row, which is what the filter tests compare.
fn frames_and_labels(rows: &[DetectionRow]) -> Vec<(FrameId, String)> {
    rows.iter()
        .map(|r| (r.frame, r.detection.label.to_string()))
        .collect()
}

fn sighting_of(device: &DeviceRecord, frame: &NewFrame, detection: &Detection) -> Sighting {
    Sighting {
        label: detection.label.clone(),
        device: device.id,
        device_name: device.name.clone(),
        captured_at: frame.captured_at,
        frame: frame.id,
        score: detection.score,
        bbox: detection.bbox,
    }
}
