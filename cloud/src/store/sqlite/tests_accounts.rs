//! SQLite-only checks of the account migration and deletions, below what the
//! public reads can show: raw row counts per table and query plans.

use chrono::Duration;
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use sqlx::QueryBuilder;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use uuid::Uuid;

use super::SqliteStore;
use super::accounts::USER_BLOB_KEYS;
use super::devices::DEVICE_BLOB_KEYS;
use super::tests::{epoch, fresh, plan_of};
use crate::store::{DeviceRecord, InsertOutcome, NewFrame, Store, UserRecord};

/// Rows per table that belong to one owner.
const OWNER_ROWS: [&str; 5] = [
    "SELECT COUNT(*) FROM users WHERE id = ?",
    "SELECT COUNT(*) FROM devices WHERE owner_id = ?",
    "SELECT COUNT(*) FROM frames WHERE owner_id = ?",
    "SELECT COUNT(*) FROM detections WHERE owner_id = ?",
    "SELECT COUNT(*) FROM last_seen WHERE owner_id = ?",
];

/// Rows per table that belong to one device.
const DEVICE_ROWS: [&str; 4] = [
    "SELECT COUNT(*) FROM devices WHERE id = ?",
    "SELECT COUNT(*) FROM frames WHERE device_id = ?",
    "SELECT COUNT(*) FROM detections WHERE device_id = ?",
    "SELECT COUNT(*) FROM last_seen WHERE device_id = ?",
];

async fn counts(store: &SqliteStore, queries: &[&'static str], id: Uuid) -> Vec<i64> {
    let mut counts = Vec::new();
    for query in queries {
        let count: i64 = sqlx::query_scalar(*query)
            .bind(id)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        counts.push(count);
    }
    counts
}

async fn owner(store: &SqliteStore, name: &str) -> UserRecord {
    let user = UserRecord {
        id: UserId::new(),
        username: name.into(),
        password_hash: "hash".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
    };
    store.create_user(&user).await.unwrap();
    user
}

async fn device_with_frames(store: &SqliteStore, owner: &UserRecord, frames: u64) -> DeviceRecord {
    let device = DeviceRecord {
        id: DeviceId::new(),
        owner: owner.id,
        name: "cam".into(),
        kind: "camera".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
        revoked_at: None,
    };
    store.create_device(&device).await.unwrap();
    for seq in 0..frames {
        let detections = ["cup", "dog"]
            .into_iter()
            .map(|label| Detection {
                label: Label::parse(label).unwrap(),
                score: 0.5,
                bbox: BBox::from([0.0, 0.0, 1.0, 1.0]),
            })
            .collect();
        let captured_at = epoch() + Duration::seconds(i64::try_from(seq).unwrap());
        let frame = NewFrame {
            id: FrameId::new(),
            device: device.id,
            owner: owner.id,
            seq,
            captured_at,
            received_at: captured_at,
            blob_key: format!("{}/{seq}", device.id),
            bytes: 1,
            width: 1,
            height: 1,
            detections,
            shares_image: false,
            clock_skewed: false,
            image_sha256: None,
        };
        let outcome = store.insert_frame(&frame).await.unwrap();
        assert_eq!(outcome, InsertOutcome::Inserted);
    }
    device
}

#[tokio::test]
async fn deletions_leave_no_row_behind_in_any_table() {
    let (store, _dir) = fresh().await;
    let alice = owner(&store, "alice").await;
    let cam = device_with_frames(&store, &alice, 3).await;
    let hall = device_with_frames(&store, &alice, 2).await;
    let bob = owner(&store, "bob").await;
    device_with_frames(&store, &bob, 2).await;
    store.revoke_token(Uuid::now_v7(), epoch()).await.unwrap();

    let hall_before = counts(&store, &DEVICE_ROWS, hall.id.as_uuid()).await;
    assert_eq!(hall_before, [1, 2, 4, 2]);
    let bob_before = counts(&store, &OWNER_ROWS, bob.id.as_uuid()).await;
    assert_eq!(bob_before, [1, 1, 2, 4, 2]);

    let keys = store
        .delete_device(alice.id, cam.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(counts(&store, &DEVICE_ROWS, cam.id.as_uuid()).await, [0; 4]);
    assert_eq!(
        counts(&store, &DEVICE_ROWS, hall.id.as_uuid()).await,
        hall_before
    );

    let keys = store.delete_user(alice.id).await.unwrap().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        counts(&store, &OWNER_ROWS, alice.id.as_uuid()).await,
        [0; 5]
    );
    assert_eq!(
        counts(&store, &OWNER_ROWS, bob.id.as_uuid()).await,
        bob_before
    );
    let revocations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM revoked_tokens")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(revocations, 1);
}

/// `frames` has no index on `owner_id`: reading a user's keys must go
/// through their devices, never scan every frame.
#[tokio::test]
async fn blob_key_reads_search_indexes_without_scanning() {
    let (store, _dir) = fresh().await;
    for query in [USER_BLOB_KEYS, DEVICE_BLOB_KEYS] {
        let mut sql = QueryBuilder::new("EXPLAIN QUERY PLAN ");
        sql.push(query);
        let plan = plan_of(&store, sql).await;
        assert!(
            !plan.is_empty() && plan.lines().all(|line| line.starts_with("SEARCH")),
            "{query}\n{plan}"
        );
    }
}

#[tokio::test]
async fn migration_gives_rows_from_before_it_their_starting_values() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new()
        .filename(dir.path().join("lastseen.sqlite3"))
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run_to(1, &pool)
        .await
        .unwrap();
    let (user, device) = (UserId::new(), DeviceId::new());
    let (user_created, device_created) = (epoch(), epoch() + Duration::microseconds(1_234_567));
    sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES (?, 'old', 'hash', ?)",
    )
    .bind(user.as_uuid())
    .bind(user_created.timestamp_micros())
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO devices (id, owner_id, name, created_at) VALUES (?, ?, 'cam', ?)")
        .bind(device.as_uuid())
        .bind(user.as_uuid())
        .bind(device_created.timestamp_micros())
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    assert_eq!(
        store.user_by_id(user).await.unwrap(),
        Some(UserRecord {
            id: user,
            username: "old".into(),
            password_hash: "hash".into(),
            created_at: user_created,
            tokens_valid_after: user_created,
        })
    );
    let migrated = DeviceRecord {
        id: device,
        owner: user,
        name: "cam".into(),
        kind: "camera".into(),
        created_at: device_created,
        tokens_valid_after: device_created,
        revoked_at: None,
    };
    assert_eq!(
        store.device(device).await.unwrap().as_ref(),
        Some(&migrated)
    );
    // The cascades of 0001 still hold on the migrated tables.
    assert_eq!(store.delete_user(user).await.unwrap(), Some(Vec::new()));
    assert_eq!(store.device(device).await.unwrap(), None);
}
