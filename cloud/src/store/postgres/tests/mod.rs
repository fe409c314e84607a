//! The conformance suite on PostgreSQL, each test on a database of its own
//! ([`test_db`]), and the checks only PostgreSQL has: concurrent writers on
//! its row locks, values that do not fit, migrations, TLS, query plans.

mod plans;
mod test_db;

use chrono::{DateTime, Duration, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use super::PgStore;
use crate::store::conformance::{RowCounts, store_conformance_tests};
use crate::store::{
    DeviceRecord, DeviceStore, FrameStore, InsertOutcome, NewFrame, Ping, SightingStore,
    StoreError, UserRecord, UserStore,
};
pub(crate) use test_db::TestDb;

pub(crate) async fn fresh() -> (PgStore, TestDb) {
    let db = TestDb::create().await;
    let store = PgStore::connect(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("open the store on {}: {e:?}", db.name));
    (store, db)
}

store_conformance_tests!(fresh);

#[async_trait::async_trait]
impl RowCounts for PgStore {
    async fn count_rows(&self, table: &str, filter: Option<(&str, Uuid)>) -> i64 {
        let mut sql = QueryBuilder::<Postgres>::new(format!("SELECT COUNT(*) FROM {table}"));
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

/// Rows per table that belong to one device.
const DEVICE_ROWS: [(&str, &str); 4] = [
    ("devices", "id"),
    ("frames", "device_id"),
    ("detections", "device_id"),
    ("last_seen", "device_id"),
];

async fn counts(store: &PgStore, tables: &[(&str, &str)], id: Uuid) -> Vec<i64> {
    let mut counts = Vec::new();
    for (table, column) in tables {
        counts.push(store.count_rows(table, Some((column, id))).await);
    }
    counts
}

fn user_record(name: &str) -> UserRecord {
    UserRecord {
        id: UserId::new(),
        username: name.into(),
        password_hash: "hash".into(),
        created_at: epoch(),
        tokens_valid_after: epoch(),
    }
}

async fn owner(store: &PgStore, name: &str) -> UserRecord {
    let user = user_record(name);
    store.create_user(&user).await.unwrap();
    user
}

async fn device_with_frames(store: &PgStore, owner: &UserRecord, frames: u64) -> DeviceRecord {
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

/// A frame another node is storing while the deletion starts: the deletion
/// waits for it and returns its key too, instead of cascading it away unseen.
#[tokio::test]
async fn deletions_wait_for_frames_being_stored_and_return_their_keys() {
    let (store, _db) = fresh().await;
    for delete_user in [false, true] {
        let alice = owner(&store, &format!("alice-{delete_user}")).await;
        let cam = device_with_frames(&store, &alice, 1).await;
        let mut storing = store.pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO frames (id, device_id, owner_id, seq, captured_at, received_at, \
             blob_key, bytes, width, height) VALUES ($1, $2, $3, 7, $4, $4, 'late', 1, 1, 1)",
        )
        .bind(Uuid::now_v7())
        .bind(cam.id.as_uuid())
        .bind(alice.id.as_uuid())
        .bind(epoch())
        .execute(&mut *storing)
        .await
        .unwrap();

        let deleting = tokio::spawn({
            let store = store.clone();
            async move {
                if delete_user {
                    store.delete_user(alice.id).await
                } else {
                    store.delete_device(alice.id, cam.id).await
                }
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!deleting.is_finished(), "the deletion did not wait");
        storing.commit().await.unwrap();

        let mut keys = deleting.await.unwrap().unwrap().unwrap();
        keys.sort();
        assert_eq!(keys, [format!("{}/0", cam.id), "late".to_owned()]);
        assert_eq!(counts(&store, &DEVICE_ROWS, cam.id.as_uuid()).await, [0; 4]);
    }
}

#[tokio::test]
async fn rows_that_do_not_fit_are_corrupt_errors_not_panics() {
    let (store, _db) = fresh().await;
    let alice = owner(&store, "alice").await;
    let cam = device_with_frames(&store, &alice, 1).await;

    // Written behind the store's back: a label the domain would never accept,
    // and times chrono cannot hold (sqlx's own decoder panics on these).
    for update in [
        "UPDATE last_seen SET label = 'Not A Label!' WHERE owner_id = $1 AND label = 'cup'",
        "UPDATE users SET created_at = 'infinity' WHERE id = $1",
        "UPDATE devices SET revoked_at = '290000-01-01 00:00:00+00' WHERE owner_id = $1",
        "UPDATE frames SET received_at = '-infinity' WHERE owner_id = $1",
    ] {
        sqlx::query(update)
            .bind(alice.id.as_uuid())
            .execute(&store.pool)
            .await
            .unwrap();
    }

    let error = store.last_seen(alice.id, None).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = store.user_by_id(alice.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = store.device(cam.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = store.frame_by_seq(cam.id, 0).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let db = TestDb::create().await;
    // Two nodes starting at once on an empty database: sqlx's advisory lock
    // lets one migrate while the other waits, then finds nothing to do.
    let (first, second) = tokio::join!(PgStore::connect(&db.url, 1), PgStore::connect(&db.url, 1));
    let (first, second) = (first.unwrap(), second.unwrap());
    let user = user_record("alice");
    first.create_user(&user).await.unwrap();
    assert_eq!(
        second.user_by_id(user.id).await.unwrap(),
        Some(user.clone())
    );
    first.pool.close().await;
    second.pool.close().await;

    let url = db.url.replacen("postgres://", "postgresql://", 1);
    let again = PgStore::connect(&url, 2).await.unwrap();
    assert_eq!(again.user_by_id(user.id).await.unwrap(), Some(user));
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&again.pool)
            .await
            .unwrap();
    let expected: Vec<(i64, bool)> = sqlx::migrate!("./migrations/postgres")
        .iter()
        .map(|migration| (migration.version, true))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(applied, expected);
    again.pool.close().await;
}

/// Production URLs carry `sslmode`; the one rustls provider in the build
/// (aws-lc-rs) must serve it. Checked when the test server offers TLS
/// (Debian's cluster does, with its snakeoil certificate).
#[tokio::test]
async fn connections_use_tls_when_the_url_asks_for_it() {
    let (store, db) = fresh().await;
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    // The machine's PostgreSQL (and CI's) has TLS on; a server without it
    // cannot show that sslmode=require really encrypts.
    if ssl != "on" {
        panic!("the test server has ssl = {ssl}: enable ssl to check TLS connections");
    }
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}sslmode=require", db.url);
    let tls = PgStore::connect(&url, 1).await.unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&tls.pool)
            .await
            .unwrap();
    assert!(encrypted);
    tls.ping().await.unwrap();
}
