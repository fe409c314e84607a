use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, Label, UserId};
use sqlx::{QueryBuilder, Sqlite};
use tempfile::TempDir;

use super::SqliteStore;
use super::device_state::LAST_FRAMES_OF;
use super::reads::{LAST_SEEN_ALL, LAST_SEEN_OF_LABEL, push_detection_listing};
use crate::store::conformance::device_state::device_state_conformance_tests;
use crate::store::conformance::invites::invite_conformance_tests;
use crate::store::conformance::store_conformance_tests;
use crate::store::{Cursor, DetectionQuery, DeviceRecord, Store, StoreError, UserRecord};

pub(crate) async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    (store, dir)
}

store_conformance_tests!(fresh);
device_state_conformance_tests!(fresh);
invite_conformance_tests!(fresh);

pub(super) fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

pub(super) async fn plan_of(store: &SqliteStore, mut sql: QueryBuilder<Sqlite>) -> String {
    let rows: Vec<(i64, i64, i64, String)> =
        sql.build_query_as().fetch_all(&store.pool).await.unwrap();
    rows.into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn listing_queries_walk_an_index_without_sorting() {
    let (store, _dir) = fresh().await;
    let full = DetectionQuery {
        owner: UserId::new(),
        label: None,
        device: None,
        since: Some(epoch()),
        until: Some(epoch()),
        after: Some(Cursor {
            captured_at: epoch(),
            detection_id: 5,
        }),
        limit: 10,
    };
    let cup = Label::parse("cup").unwrap();
    for (query, index) in [
        (full.clone(), "detections_by_owner "),
        (
            DetectionQuery {
                label: Some(cup.clone()),
                ..full.clone()
            },
            "detections_by_owner_label",
        ),
        (
            DetectionQuery {
                device: Some(DeviceId::new()),
                ..full.clone()
            },
            "detections_by_device",
        ),
        (
            DetectionQuery {
                label: Some(cup),
                after: None,
                since: None,
                until: None,
                ..full.clone()
            },
            "detections_by_owner_label",
        ),
    ] {
        let mut sql = QueryBuilder::new("EXPLAIN QUERY PLAN ");
        push_detection_listing(&mut sql, &query);
        let plan = plan_of(&store, sql).await;
        assert!(plan.contains(index), "{query:?}\n{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{query:?}\n{plan}");
    }

    let mut sql = QueryBuilder::new("EXPLAIN QUERY PLAN ");
    sql.push(LAST_SEEN_OF_LABEL);
    let plan = plan_of(&store, sql).await;
    assert!(plan.contains("last_seen_by_owner_label"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");

    let mut sql = QueryBuilder::new("EXPLAIN QUERY PLAN ");
    sql.push(LAST_SEEN_ALL);
    let plan = plan_of(&store, sql).await;
    assert!(plan.contains("last_seen_by_owner_label"), "{plan}");
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let user = UserRecord {
        id: UserId::new(),
        username: "alice".into(),
        password_hash: "hash".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
    };
    {
        let store = SqliteStore::open_in(dir.path()).await.unwrap();
        store.create_user(&user).await.unwrap();
        store.pool.close().await;
    }
    let path = dir.path().join("lastseen.sqlite3");
    let store = SqliteStore::connect(path.to_str().unwrap(), 2)
        .await
        .unwrap();
    assert_eq!(store.user_by_id(user.id).await.unwrap(), Some(user));

    let url = format!("sqlite://{}", path.display());
    let again = SqliteStore::connect(&url, 1).await.unwrap();
    again.ping().await.unwrap();
}

#[tokio::test]
async fn connections_use_wal_foreign_keys_and_normal_sync() {
    let (store, _dir) = fresh().await;
    let mut conn = store.pool.acquire().await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!((journal.as_str(), foreign_keys, synchronous), ("wal", 1, 1));
}

#[tokio::test]
async fn rows_that_do_not_fit_are_corrupt_errors_not_panics() {
    let (store, _dir) = fresh().await;
    let user = UserRecord {
        id: UserId::new(),
        username: "alice".into(),
        password_hash: "hash".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
    };
    store.create_user(&user).await.unwrap();
    let device = DeviceRecord {
        id: DeviceId::new(),
        owner: user.id,
        name: "cam".into(),
        kind: "camera".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
        revoked_at: None,
    };
    store.create_device(&device).await.unwrap();

    // Written behind the store's back, on one connection with foreign keys
    // off: a label the domain would never accept and a time chrono cannot hold.
    let mut conn = store.pool.acquire().await.unwrap();
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO last_seen (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) \
         VALUES (?, 'Not A Label!', ?, zeroblob(16), 0, 0.5, 0, 0, 1, 1)",
    )
    .bind(device.id.as_uuid())
    .bind(user.id.as_uuid())
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("UPDATE users SET created_at = ? WHERE id = ?")
        .bind(i64::MAX)
        .bind(user.id.as_uuid())
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("PRAGMA foreign_keys = ON")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let error = store.last_seen(user.id, None).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = store.user_by_id(user.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn last_frames_seek_the_device_seq_index_without_sorting() {
    let (store, _dir) = fresh().await;
    let mut sql = QueryBuilder::new("EXPLAIN QUERY PLAN ");
    sql.push(LAST_FRAMES_OF.replace('?', "'owner'"));
    let plan = plan_of(&store, sql).await;
    assert!(plan.contains("devices_by_owner"), "{plan}");
    assert!(plan.contains("sqlite_autoindex_frames"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
}
