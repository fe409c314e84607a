//! Query plans: on a few thousand analysed rows, every read that answers a
//! user seeks the index made for it, and the listings never sort.

use lastseen_shared::{DeviceId, Label, UserId};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::{TestDb, fresh};
use crate::store::postgres::PgStore;
use crate::store::postgres::devices::DEVICE_BLOB_KEYS;
use crate::store::postgres::frames::{FRAME_DETECTIONS, LOCK_IMAGE_FRAME, PREVIOUS_IMAGE};
use crate::store::postgres::retention::{
    AFFECTED_SIGHTINGS, OLDEST_FRAMES, REPAIR_LAST_SEEN, STORED_BYTES, UNREFERENCED,
};
use crate::store::postgres::sightings::{
    LAST_SEEN_ALL, LAST_SEEN_OF_LABEL, push_detection_listing,
};
use crate::store::postgres::users::USER_BLOB_KEYS;
use crate::store::{Cursor, DetectionQuery};

/// Two kinds of owner over 8,500 frames, 29,000 detections and 5,080
/// `last_seen` rows. History owners (1,200 detections per device, 600 per
/// label) are where listings must stop after one page; breadth owners (50
/// `last_seen` rows each, 1% of the table) are where "last seen" and the
/// deletions' key reads must seek rather than scan.
const POPULATE: &str = "
    -- History: 10 owners x 2 devices x 400 frames x 3 detections over 4 labels,
    -- stored in time order across devices as ingest would.
    INSERT INTO users (id, username, password_hash, created_at, tokens_valid_after)
    SELECT gen_random_uuid(), 'history' || u, 'hash', now(), now() FROM generate_series(1, 10) u;
    INSERT INTO devices (id, owner_id, name, kind, created_at, tokens_valid_after)
    SELECT gen_random_uuid(), u.id, 'cam' || n, 'camera', now(), now()
    FROM users u, generate_series(1, 2) n;
    INSERT INTO frames (id, device_id, owner_id, seq, captured_at, received_at, blob_key,
                        bytes, width, height)
    SELECT gen_random_uuid(), d.id, d.owner_id, s,
           timestamptz '2024-01-01' + s * interval '1 minute',
           timestamptz '2024-01-01' + s * interval '1 minute',
           d.id || '/' || s, 1, 640, 360
    FROM generate_series(1, 400) s, devices d ORDER BY s, d.id;
    INSERT INTO detections (frame_id, device_id, owner_id, label, score, x1, y1, x2, y2,
                            captured_at)
    SELECT f.id, f.device_id, f.owner_id, 'label' || ((f.seq + k) % 4), 0.5, 0, 0, 1, 1,
           f.captured_at
    FROM frames f, generate_series(1, 3) k ORDER BY f.captured_at, f.device_id, k;
    -- Breadth: 100 owners x 5 devices x 1 frame with 10 labels.
    INSERT INTO users (id, username, password_hash, created_at, tokens_valid_after)
    SELECT gen_random_uuid(), 'breadth' || u, 'hash', now(), now() FROM generate_series(1, 100) u;
    INSERT INTO devices (id, owner_id, name, kind, created_at, tokens_valid_after)
    SELECT gen_random_uuid(), u.id, 'cam' || n, 'camera', now(), now()
    FROM users u, generate_series(1, 5) n WHERE u.username LIKE 'breadth%';
    INSERT INTO frames (id, device_id, owner_id, seq, captured_at, received_at, blob_key,
                        bytes, width, height)
    SELECT gen_random_uuid(), d.id, d.owner_id, 1, timestamptz '2024-02-01',
           timestamptz '2024-02-01', d.id || '/1', 1, 640, 360
    FROM devices d WHERE d.id NOT IN (SELECT device_id FROM frames);
    INSERT INTO detections (frame_id, device_id, owner_id, label, score, x1, y1, x2, y2,
                            captured_at)
    SELECT f.id, f.device_id, f.owner_id, 'thing' || k, 0.5, 0, 0, 1, 1, f.captured_at
    FROM frames f, generate_series(1, 10) k WHERE f.captured_at = timestamptz '2024-02-01';
    INSERT INTO last_seen (device_id, label, owner_id, frame_id, captured_at, score,
                           x1, y1, x2, y2)
    SELECT DISTINCT ON (t.device_id, t.label) t.device_id, t.label, t.owner_id, t.frame_id,
           t.captured_at, t.score, t.x1, t.y1, t.x2, t.y2
    FROM detections t ORDER BY t.device_id, t.label, t.captured_at DESC, t.id DESC;
    ANALYZE;
";

/// A page as the API asks for it.
const PAGE: u32 = 20;

/// Tables that grow with the number of users or their history: never scanned whole.
const BIG_TABLES: [&str; 4] = ["devices", "frames", "detections", "last_seen"];

/// One plan node: its type, the index it reads (if any), its index condition.
#[derive(Debug)]
struct Node {
    kind: String,
    relation: Option<String>,
    index: Option<String>,
    cond: Option<String>,
}

fn collect(plan: &Value, nodes: &mut Vec<Node>) {
    let text = |key: &str| plan.get(key).and_then(Value::as_str).map(str::to_owned);
    nodes.push(Node {
        kind: text("Node Type").unwrap_or_default(),
        relation: text("Relation Name"),
        index: text("Index Name"),
        cond: text("Index Cond"),
    });
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        collect(child, nodes);
    }
}

/// The nodes of the plan `query` (an `EXPLAIN (FORMAT JSON)`), depth first from the top.
async fn nodes_of(store: &PgStore, query: Query<'_, Postgres, PgArguments>) -> Vec<Node> {
    let row = query.fetch_one(&store.pool).await.unwrap();
    // The column is `json`; its text is all we need (no sqlx `json` feature).
    let text: String = row.try_get_unchecked(0).unwrap();
    let explained: Value = serde_json::from_str(&text).unwrap();
    let mut nodes = Vec::new();
    collect(&explained[0]["Plan"], &mut nodes);
    nodes
}

fn explain(sql: &str) -> Query<'static, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) {sql}")))
}

fn is_index_scan(node: &Node, index: &str) -> bool {
    matches!(node.kind.as_str(), "Index Scan" | "Index Only Scan")
        && node.index.as_deref() == Some(index)
}

fn count(nodes: &[Node], kind: &str) -> usize {
    nodes.iter().filter(|n| n.kind == kind).count()
}

fn scans_a_big_table(nodes: &[Node]) -> bool {
    nodes.iter().any(|n| {
        n.kind == "Seq Scan"
            && n.relation
                .as_deref()
                .is_some_and(|r| BIG_TABLES.contains(&r))
    })
}

async fn populated() -> (PgStore, TestDb) {
    let (store, db) = fresh().await;
    sqlx::raw_sql(POPULATE).execute(&store.pool).await.unwrap();
    (store, db)
}

/// The first device (by id) of the user named `username`, and its owner.
async fn device_of(store: &PgStore, username: &str) -> (UserId, DeviceId) {
    let (owner, device): (Uuid, Uuid) = sqlx::query_as(
        "SELECT d.owner_id, d.id FROM devices d JOIN users u ON u.id = d.owner_id \
         WHERE u.username = $1 ORDER BY d.id LIMIT 1",
    )
    .bind(username)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    (UserId::from_uuid(owner), DeviceId::from_uuid(device))
}

/// Whether any node reads `index`, in order or through a bitmap.
fn reads_index(nodes: &[Node], index: &str) -> bool {
    nodes.iter().any(|n| n.index.as_deref() == Some(index))
}

#[tokio::test]
async fn last_seen_seeks_its_index() {
    let (store, _db) = populated().await;
    let (owner, _) = device_of(&store, "breadth1").await;

    let query = explain(LAST_SEEN_OF_LABEL)
        .bind(owner.as_uuid())
        .bind("thing3");
    let nodes = nodes_of(&store, query).await;
    println!("last seen of one label: {nodes:?}");
    assert!(
        nodes
            .iter()
            .any(|n| is_index_scan(n, "last_seen_by_owner_label")
                && n.cond.as_deref().is_some_and(|c| c.contains("label"))),
        "{nodes:#?}"
    );
    assert_eq!(count(&nodes, "Sort"), 0, "{nodes:#?}");
    assert!(!scans_a_big_table(&nodes), "{nodes:#?}");

    let nodes = nodes_of(&store, explain(LAST_SEEN_ALL).bind(owner.as_uuid())).await;
    println!("last seen of all labels: {nodes:?}");
    // Every row of the owner is needed (devices x labels, here 50), so the
    // planner may read them in index order or through a bitmap and sort
    // them; either way through the index, never by scanning the table.
    assert!(
        reads_index(&nodes, "last_seen_by_owner_label"),
        "{nodes:#?}"
    );
    assert!(!scans_a_big_table(&nodes), "{nodes:#?}");
}

#[tokio::test]
async fn detection_listings_walk_their_index_without_sorting() {
    let (store, _db) = populated().await;
    let (owner, device) = device_of(&store, "history1").await;
    let newest: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT max(captured_at) FROM detections WHERE owner_id = $1")
            .bind(owner.as_uuid())
            .fetch_one(&store.pool)
            .await
            .unwrap();
    let first = DetectionQuery {
        owner,
        label: None,
        device: None,
        since: None,
        until: None,
        after: None,
        limit: PAGE,
    };
    let next = DetectionQuery {
        after: Some(Cursor {
            captured_at: newest - chrono::Duration::minutes(100),
            detection_id: 5_000,
        }),
        ..first.clone()
    };
    let window = DetectionQuery {
        since: Some(newest - chrono::Duration::minutes(300)),
        until: Some(newest),
        ..next.clone()
    };
    let label = Some(Label::parse("label1").unwrap());
    for (base, paged) in [(&first, false), (&next, true), (&window, true)] {
        for (query, index) in [
            (base.clone(), "detections_by_owner"),
            (
                DetectionQuery {
                    label: label.clone(),
                    ..base.clone()
                },
                "detections_by_owner_label",
            ),
            (
                DetectionQuery {
                    device: Some(device),
                    ..base.clone()
                },
                "detections_by_device",
            ),
        ] {
            let mut sql = QueryBuilder::new("EXPLAIN (FORMAT JSON) ");
            push_detection_listing(&mut sql, &query);
            let nodes = nodes_of(&store, sql.build()).await;
            println!("{index} paged={paged}: {nodes:?}");
            let scan = nodes.iter().find(|n| is_index_scan(n, index));
            let scan = scan.unwrap_or_else(|| panic!("{query:?}\n{nodes:#?}"));
            if paged {
                // The cursor is where the seek starts, not a filter on the way.
                let cond = scan.cond.as_deref().unwrap_or_default();
                assert!(
                    cond.contains("ROW(captured_at, id) <"),
                    "{query:?}\n{nodes:#?}"
                );
            }
            assert_eq!(count(&nodes, "Sort"), 0, "{query:?}\n{nodes:#?}");
            assert!(!scans_a_big_table(&nodes), "{query:?}\n{nodes:#?}");
        }
    }
}

#[tokio::test]
async fn frame_reads_and_deletions_search_indexes_without_scanning() {
    let (store, _db) = populated().await;
    let (owner, device) = device_of(&store, "breadth1").await;
    let frame: Uuid = sqlx::query_scalar("SELECT id FROM frames LIMIT 1")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    let nodes = nodes_of(&store, explain(FRAME_DETECTIONS).bind(frame)).await;
    println!("frame detections: {nodes:?}");
    assert!(reads_index(&nodes, "detections_by_frame"), "{nodes:#?}");
    assert!(!scans_a_big_table(&nodes), "{nodes:#?}");

    for (query, nodes) in [
        (
            USER_BLOB_KEYS,
            nodes_of(&store, explain(USER_BLOB_KEYS).bind(owner.as_uuid())).await,
        ),
        (
            DEVICE_BLOB_KEYS,
            nodes_of(
                &store,
                explain(DEVICE_BLOB_KEYS)
                    .bind(device.as_uuid())
                    .bind(owner.as_uuid()),
            )
            .await,
        ),
    ] {
        println!("{query}: {nodes:?}");
        assert!(
            reads_index(&nodes, "frames_device_seq_key"),
            "{query}\n{nodes:#?}"
        );
        assert!(!scans_a_big_table(&nodes), "{query}\n{nodes:#?}");
    }
}

#[tokio::test]
async fn ingest_and_retention_reads_seek_their_indexes() {
    let (store, _db) = populated().await;
    let (owner, device) = device_of(&store, "history1").await;
    let (frame, key): (Uuid, String) =
        sqlx::query_as("SELECT id, blob_key FROM frames WHERE device_id = $1 AND seq = 200")
            .bind(device.as_uuid())
            .fetch_one(&store.pool)
            .await
            .unwrap();
    let cutoff = chrono::DateTime::parse_from_rfc3339("2024-01-01T03:00:00Z").unwrap();
    let cutoff = cutoff.with_timezone(&chrono::Utc);
    let none: Option<chrono::DateTime<chrono::Utc>> = None;

    // (name, plan, indexes it must read)
    let plans = [
        (
            "previous image (every ingest)",
            nodes_of(
                &store,
                explain(PREVIOUS_IMAGE).bind(device.as_uuid()).bind(200i64),
            )
            .await,
            vec!["frames_device_seq_key", "frames_by_blob_key"],
        ),
        (
            "lock a frame of a shared image",
            nodes_of(
                &store,
                explain(LOCK_IMAGE_FRAME)
                    .bind(&key)
                    .bind(device.as_uuid())
                    .bind(Uuid::nil()),
            )
            .await,
            vec!["frames_by_blob_key"],
        ),
        (
            "oldest frames before a cutoff",
            nodes_of(
                &store,
                explain(OLDEST_FRAMES)
                    .bind(owner.as_uuid())
                    .bind(Some(cutoff))
                    .bind(500i64),
            )
            .await,
            vec!["frames_by_owner_received", "frames_by_blob_key"],
        ),
        (
            "oldest frames",
            nodes_of(
                &store,
                explain(OLDEST_FRAMES)
                    .bind(owner.as_uuid())
                    .bind(none)
                    .bind(500i64),
            )
            .await,
            vec!["frames_by_owner_received", "frames_by_blob_key"],
        ),
        (
            "stored bytes",
            nodes_of(&store, explain(STORED_BYTES).bind(owner.as_uuid())).await,
            vec!["frames_by_owner_received"],
        ),
        (
            "sightings of deleted frames",
            nodes_of(&store, explain(AFFECTED_SIGHTINGS).bind(vec![frame])).await,
            vec!["last_seen_by_frame"],
        ),
        (
            "last_seen repair",
            nodes_of(
                &store,
                explain(REPAIR_LAST_SEEN)
                    .bind(vec![device.as_uuid()])
                    .bind(vec!["label1".to_owned()]),
            )
            .await,
            vec!["detections_by_device"],
        ),
        (
            "unreferenced images",
            nodes_of(&store, explain(UNREFERENCED).bind(vec![key.clone()])).await,
            vec!["frames_by_blob_key"],
        ),
    ];
    for (name, nodes, indexes) in plans {
        println!("{name}: {nodes:?}");
        for index in indexes {
            assert!(reads_index(&nodes, index), "{name}: {index}\n{nodes:#?}");
        }
        assert!(!scans_a_big_table(&nodes), "{name}\n{nodes:#?}");
    }
}
