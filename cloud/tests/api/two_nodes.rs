//! Two cloud nodes (two `run` instances, each with its own state) sharing one
//! fresh Postgres database, one blob directory and the machine's Mosquitto:
//! the shared subscription splits the frames, and each is stored once.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use lastseen_cloud::testkit::{CloudMqtt, tiny_jpeg};
use lastseen_shared::Topics;
use sqlx::{Connection, PgConnection};

use crate::helpers::{TestApp, file_count, spawn_app_with};
use crate::mqtt_client::{MOSQUITTO, MqttDevice, connect_device, envelope};

const DEVICES: usize = 10;
const FRAMES_PER_DEVICE: u64 = 100;
/// A device resends what got no ack after this long, as the agent does.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// Frames a device sends ahead of its acks.
const WINDOW: usize = 8;
const DEADLINE: Duration = Duration::from_secs(300);

fn admin_url() -> String {
    std::env::var("LASTSEEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own, dropped when the test ends (also when it fails).
pub(crate) struct TestDatabase {
    name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    pub(crate) async fn create() -> Self {
        let admin = admin_url();
        let name = format!("lastseen_test_{}", uuid::Uuid::now_v7().simple());
        let mut connection = PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("the two-node test needs PostgreSQL at {admin}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .expect("create the test database");
        let (base, _) = admin.rsplit_once('/').expect("a database in the URL");
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_url();
        let name = self.name.clone();
        // Drop runs outside any runtime's async context: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
    }
}

async fn node(
    database_url: &str,
    blob_dir: &std::path::Path,
    prefix: &str,
    group: &str,
) -> TestApp {
    spawn_app_with(|config| {
        config.store.database_url = Some(database_url.to_owned());
        config.blob.blob_dir = Some(blob_dir.to_path_buf());
        // Every frame carries the same picture: count one image per frame
        // rather than one shared image per device.
        config.ingest.skip_unchanged_images = false;
        let mosquitto = CloudMqtt::Mosquitto {
            prefix: prefix.to_owned(),
        };
        mosquitto.apply(config).expect("no port to reserve");
        config.mqtt.shared_group = group.to_owned();
        // Room for every device's window: few frames are refused for
        // overload, and the resend below covers those.
        config.detect.queue_depth = 128;
        config.mqtt.max_in_flight = 64;
    })
    .await
}

async fn stored_by(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("lastseen_frames_stored_total{transport=\"mqtt\"} "))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_split_a_thousand_mqtt_frames_and_store_each_once() {
    let database = TestDatabase::create().await;
    let blobs = tempfile::tempdir().expect("blob dir");
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let prefix = format!("lastseen-test/{unique}");
    let group = format!("g{unique}");
    let first = node(&database.url, blobs.path(), &prefix, &group).await;
    let second = node(&database.url, blobs.path(), &prefix, &group).await;
    let topics = Topics::new(&prefix).expect("prefix");

    let user = first.user("alice").await;
    let mut devices: Vec<(MqttDevice, String)> = Vec::new();
    for index in 0..DEVICES {
        let (id, token) = first.device(&user, &format!("camera-{index}")).await;
        devices.push((connect_device(MOSQUITTO, &topics, &id, &token).await, token));
    }
    let jpegs: Vec<Vec<u8>> = (0..DEVICES)
        .map(|i| tiny_jpeg(i as u8 * 20).expect("encodes"))
        .collect();

    // Each device keeps up to WINDOW frames unacknowledged, as an agent
    // sending from its spool does, and resends one that got no ack in time.
    let mut next: Vec<u64> = vec![1; DEVICES];
    let mut outstanding: Vec<HashMap<u64, Instant>> = vec![HashMap::new(); DEVICES];
    let mut acked: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); DEVICES];
    let mut sent: Vec<HashMap<u64, Vec<u8>>> = vec![HashMap::new(); DEVICES];
    let started = Instant::now();
    while acked.iter().map(BTreeSet::len).sum::<usize>() < DEVICES * FRAMES_PER_DEVICE as usize {
        assert!(
            started.elapsed() < DEADLINE,
            "acked per device after {DEADLINE:?}: {:?}",
            acked.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        for (index, (device, token)) in devices.iter_mut().enumerate() {
            for (_, payload) in device.drain() {
                if let Some(ack) = device.open_ack(&payload) {
                    assert!(ack.rejected.is_empty(), "{ack:?}");
                    for seq in ack.acked {
                        outstanding[index].remove(&seq);
                        acked[index].insert(seq);
                    }
                }
            }
            let late: Vec<u64> = outstanding[index]
                .iter()
                .filter(|(_, sent)| sent.elapsed() > RESEND_AFTER)
                .map(|(seq, _)| *seq)
                .collect();
            let mut to_send = late;
            while outstanding[index].len() + to_send.len() < WINDOW
                && next[index] <= FRAMES_PER_DEVICE
            {
                to_send.push(next[index]);
                next[index] += 1;
            }
            for seq in to_send {
                outstanding[index].insert(seq, Instant::now());
                // A resend is the same frame (same time), as from a spool.
                let message = sent[index]
                    .entry(seq)
                    .or_insert_with(|| envelope(device.id, token, seq, &jpegs[index]))
                    .clone();
                device.publish_frame(device.id, message).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut db = PgConnection::connect(&database.url)
        .await
        .expect("database");
    let (frames, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT (device_id, seq)) FROM frames")
            .fetch_one(&mut db)
            .await
            .expect("count frames");
    let total = (DEVICES as u64 * FRAMES_PER_DEVICE) as i64;
    assert_eq!((frames, distinct), (total, total));
    let blob_files = file_count(blobs.path());
    assert_eq!(blob_files, total as usize);

    let (by_first, by_second) = (stored_by(&first).await, stored_by(&second).await);
    assert_eq!(by_first + by_second, total as u64);
    assert!(
        by_first > 0 && by_second > 0,
        "one node did everything: {by_first} + {by_second}"
    );
    for (device, _) in &devices {
        device.clear_retained().await;
    }
}
