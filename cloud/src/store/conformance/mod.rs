//! Behaviour every [`Store`] backend must show, written once.
//!
//! One file per area, named as the area's trait file in `store/` and its
//! implementation in each backend. A backend runs the whole suite with
//! `crate::store::conformance::store_conformance_tests!(fresh);` inside its
//! test module, where `async fn fresh() -> (impl Store + RowCounts, Guard)`
//! opens an empty store and `Guard` (temp dir, database, …) is dropped when
//! the test ends.
//!
//! Each body creates its own users with unique names and reads only through
//! them, so bodies also pass when several share one database; the one
//! exception counts a whole table through [`RowCounts`], and says so.
//! Timestamps are whole microseconds, the precision every backend keeps.

pub(crate) mod device_state;
pub(crate) mod devices;
pub(crate) mod frames;
pub(crate) mod invites;
pub(crate) mod retention;
pub(crate) mod sightings;
pub(crate) mod users;

use chrono::{DateTime, Duration, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use uuid::Uuid;

use super::{
    Cursor, DetectionQuery, DetectionRow, DeviceRecord, FrameIdentity, FrameRecord, ImageDigest,
    InsertOutcome, NewFrame, Sighting, Store, StoreError, StoredFrame, UserRecord,
};

/// One `#[tokio::test]` per body in the submodules; see the module docs.
macro_rules! store_conformance_tests {
    ($fresh:path) => {
        #[tokio::test]
        async fn ping_answers() {
            let (store, _guard) = $fresh().await;
            $crate::store::Ping::ping(&store).await.unwrap();
        }

        $crate::store::conformance::store_conformance_tests!(@each $fresh;
            users::users_are_found_by_name_and_by_id,
            users::taken_username_is_a_conflict,
            users::hostile_usernames_are_matched_literally,
            users::token_and_revocation_fields_round_trip,
            users::password_update_replaces_the_hash_and_moves_tokens_valid_after,
            users::user_tokens_valid_after_moves_forward_only,
            users::revoked_tokens_are_remembered_until_purged_after_expiry,
            users::deleting_a_user_removes_all_their_rows_and_returns_their_blob_keys,
            users::deleting_a_user_without_devices_returns_no_keys,
            users::only_a_taken_username_is_a_username_conflict,
            users::deletions_leave_no_row_behind_in_any_table,
            devices::devices_are_listed_oldest_first_and_counted_per_owner,
            devices::device_changes_return_the_device_as_it_is_afterwards,
            devices::revoking_keeps_the_first_revoked_at_and_voids_tokens_again,
            devices::device_tokens_valid_after_moves_forward_only,
            devices::another_owners_device_is_neither_changed_nor_deleted,
            devices::deleting_a_device_removes_its_history_and_nothing_else,
            frames::stored_frame_is_read_back_by_seq_and_by_its_owner_only,
            frames::frame_without_detections_is_stored,
            frames::duplicate_seq_is_stored_once,
            frames::identity_of_a_stored_seq_and_the_highest_seq_are_read_back,
            frames::concurrent_inserts_of_one_seq_store_one_frame,
            frames::seq_beyond_i64_max_is_refused_and_i64_max_round_trips,
            frames::frame_with_thousands_of_detections_is_stored_whole,
            frames::previous_image_is_the_first_frame_showing_the_previous_frames_image,
            sightings::frames_of_a_device_are_listed_in_seq_order_for_its_owner_only,
            sightings::last_seen_moves_forward_but_never_back,
            sightings::last_seen_keeps_the_best_detection_of_a_label_in_a_frame,
            sightings::last_seen_of_all_labels_is_the_newest_per_label_newest_first,
            sightings::detections_are_filtered_by_label_device_and_time_window,
            sightings::detection_pages_neither_lose_nor_repeat_rows_when_times_tie,
            sightings::no_read_crosses_owners,
            retention::retention_limits_are_set_replaced_and_cleared_per_user,
            retention::oldest_frames_come_oldest_first_with_their_image_references,
            retention::oldest_frames_go_by_arrival_not_by_the_device_clock,
            retention::stored_bytes_count_each_image_once,
            retention::deleting_frames_repairs_last_seen_and_returns_the_images_left_unused,
            retention::a_frame_sharing_an_image_is_stored_only_while_the_image_has_frames,
            retention::unreferenced_blob_keys_are_those_no_frame_points_at,
            device_state::settings_are_none_until_set_then_replaced,
            device_state::statuses_are_kept_per_device_and_listed_per_owner,
            device_state::state_goes_with_its_device,
            device_state::state_of_an_unknown_device_is_refused,
            device_state::the_last_frame_of_each_device_is_listed_per_owner,
            invites::invites_round_trip_and_are_usable_until_they_expire,
            invites::an_invite_admits_one_account,
            invites::an_expired_invite_admits_nobody,
            invites::a_taken_username_leaves_the_invite_unused,
            invites::concurrent_uses_of_one_invite_admit_one_account,
            invites::the_cap_counts_only_the_makers_open_invites,
            invites::an_existing_hash_is_a_conflict,
            invites::invites_go_with_their_maker_and_outlive_their_account,
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

/// Raw row counts, below what the public reads can show: how a backend's
/// test module lets the suite check that deletions leave nothing behind.
#[async_trait::async_trait]
pub(crate) trait RowCounts {
    /// Rows of `table`, only those whose `column` is `id` when given.
    async fn count_rows(&self, table: &str, filter: Option<(&str, Uuid)>) -> i64;
}

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
        tokens_valid_after: at(0),
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
        kind: "camera".into(),
        created_at: at(created),
        tokens_valid_after: at(created),
        revoked_at: None,
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
        shares_image: false,
        clock_skewed: false,
        image_sha256: None,
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
            clock_skewed: frame.clock_skewed,
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

/// Everything the public reads tell about one user, for before/after
/// comparisons: "nothing changed" is `snapshot(..) == before`, and "nothing
/// left" is [`Snapshot::gone`].
#[derive(Debug, PartialEq)]
struct Snapshot {
    by_id: Option<UserRecord>,
    by_name: Option<UserRecord>,
    devices: Vec<DeviceRecord>,
    device_count: u64,
    each_device: Vec<Option<DeviceRecord>>,
    frames_of_owner: Vec<Option<StoredFrame>>,
    frames_by_seq: Vec<Option<StoredFrame>>,
    last_seen: Vec<Sighting>,
    detections: Vec<DetectionRow>,
}

impl Snapshot {
    /// What [`snapshot`] must show once the user and all their rows are gone.
    fn gone(devices: usize, frames: usize) -> Self {
        Self {
            by_id: None,
            by_name: None,
            devices: Vec::new(),
            device_count: 0,
            each_device: vec![None; devices],
            frames_of_owner: vec![None; frames],
            frames_by_seq: vec![None; frames],
            last_seen: Vec::new(),
            detections: Vec::new(),
        }
    }
}

/// `devices` and `frames` name what to look up one by one.
async fn snapshot(
    store: &dyn Store,
    user: &UserRecord,
    devices: &[&DeviceRecord],
    frames: &[&NewFrame],
) -> Snapshot {
    let mut each_device = Vec::new();
    for device in devices {
        each_device.push(store.device(device.id).await.unwrap());
    }
    let mut frames_of_owner = Vec::new();
    let mut frames_by_seq = Vec::new();
    for frame in frames {
        frames_of_owner.push(store.frame_of_owner(user.id, frame.id).await.unwrap());
        frames_by_seq.push(store.frame_by_seq(frame.device, frame.seq).await.unwrap());
    }
    Snapshot {
        by_id: store.user_by_id(user.id).await.unwrap(),
        by_name: store.user_by_username(&user.username).await.unwrap(),
        devices: store.devices_of(user.id).await.unwrap(),
        device_count: store.count_devices_of(user.id).await.unwrap(),
        each_device,
        frames_of_owner,
        frames_by_seq,
        last_seen: store.last_seen(user.id, None).await.unwrap(),
        detections: store.detections(&query(user)).await.unwrap(),
    }
}

fn sorted_keys(frames: &[&NewFrame]) -> Vec<String> {
    let mut keys: Vec<String> = frames.iter().map(|f| f.blob_key.clone()).collect();
    keys.sort();
    keys
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

/// A frame pointing at `image`'s blob (an unchanged scene), with its size.
fn sharing(image: &NewFrame, seq: u64, captured: i64, detections: Vec<Detection>) -> NewFrame {
    let device = DeviceRecord {
        id: image.device,
        owner: image.owner,
        name: String::new(),
        kind: String::new(),
        created_at: at(0),
        tokens_valid_after: at(0),
        revoked_at: None,
    };
    NewFrame {
        blob_key: image.blob_key.clone(),
        bytes: image.bytes,
        shares_image: true,
        ..frame(&device, seq, captured, detections)
    }
}
