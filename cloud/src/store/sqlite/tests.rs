//! The conformance suite on SQLite, each test on a file of its own, and the
//! checks only SQLite has: its pragmas, query plans, and migrations of rows
//! written before them.

use chrono::{DateTime, Duration, Utc};
use lastseen_shared::{DeviceId, Label, UserId};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite};
use tempfile::TempDir;
use uuid::Uuid;

use super::SqliteStore;
use super::devices::DEVICE_BLOB_KEYS;
use super::sightings::{LAST_SEEN_ALL, LAST_SEEN_OF_LABEL, push_detection_listing};
use super::users::USER_BLOB_KEYS;
use crate::store::conformance::{RowCounts, store_conformance_tests};
use crate::store::device_state::sql;
use crate::store::{
    Cursor, DetectionQuery, DeviceRecord, DeviceStore, Ping, SightingStore, StoreError, UserRecord,
    UserStore,
};

pub(crate) async fn fresh() -> (SqliteStore, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in(dir.path()).await.unwrap();
    (store, dir)
}

store_conformance_tests!(fresh);

#[async_trait::async_trait]
impl RowCounts for SqliteStore {
    async fn count_rows(&self, table: &str, filter: Option<(&str, Uuid)>) -> i64 {
        let mut sql = QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM {table}"));
        if let Some((column, id)) = filter {
            sql.push(format!(" WHERE {column} = ")).push_bind(id);
        }
        sql.build_query_scalar()
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

async fn plan_of(store: &SqliteStore, mut sql: QueryBuilder<Sqlite>) -> String {
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
    sql.push(sql::LAST_FRAMES_OF.replace("$1", "'owner'"));
    let plan = plan_of(&store, sql).await;
    assert!(plan.contains("devices_by_owner"), "{plan}");
    assert!(plan.contains("sqlite_autoindex_frames"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "{plan}");
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
