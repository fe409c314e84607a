//! Storage benchmarks behind BENCHMARKS.md ("Storage"): batch inserts through
//! the `Store` trait on both backends, and query latency with 10 million
//! detections in Postgres.
//!
//! ```sh
//! cargo run --release -p lastseen-cloud --example storage_bench -- insert --backend sqlite
//! cargo run --release -p lastseen-cloud --example storage_bench -- insert --backend postgres
//! cargo run --release -p lastseen-cloud --example storage_bench -- load
//! cargo run --release -p lastseen-cloud --example storage_bench -- query
//! ```
//!
//! `--database-url` names the Postgres database (default
//! `postgres://postgres@127.0.0.1:5432/lastseen_bench`); `insert` and `load`
//! create it when missing. Drop it afterwards: `dropdb -h 127.0.0.1 -U
//! postgres lastseen_bench`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use lastseen_cloud::store::{
    Cursor, DetectionQuery, DeviceRecord, InsertOutcome, NewFrame, PgStore, SightingStore,
    SqliteStore, Store, UserRecord,
};
use lastseen_shared::labels::COCO;
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/lastseen_bench";

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = DEFAULT_URL, global = true)]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Subcommand)]
enum Command {
    /// Detection rows per second through `Store::insert_frame` (one
    /// transaction per frame, the detections batched).
    Insert {
        #[arg(long, value_enum)]
        backend: Backend,
        #[arg(long, default_value_t = 2_000)]
        frames: u64,
        #[arg(long, default_value_t = 50)]
        detections_per_frame: usize,
    },
    /// Fills the Postgres database with `users` users of `devices` devices
    /// each, and `detections` detections over one year, generated in SQL.
    Load {
        #[arg(long, default_value_t = 10_000_000)]
        detections: u64,
        #[arg(long, default_value_t = 10)]
        detections_per_frame: u64,
        #[arg(long, default_value_t = 10)]
        users: u64,
        #[arg(long, default_value_t = 4)]
        devices: u64,
    },
    /// Latency of last-seen and of paginated detection search on the loaded
    /// database, through the `Store` trait, one query at a time.
    Query {
        #[arg(long, default_value_t = 2_000)]
        iterations: usize,
        #[arg(long, default_value_t = 50)]
        page: u32,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Insert {
            backend,
            frames,
            detections_per_frame,
        } => insert(&args.database_url, backend, frames, detections_per_frame).await,
        Command::Load {
            detections,
            detections_per_frame,
            users,
            devices,
        } => {
            load(
                &args.database_url,
                detections,
                detections_per_frame,
                users,
                devices,
            )
            .await
        }
        Command::Query { iterations, page } => query(&args.database_url, iterations, page).await,
    }
}

async fn create_database_if_missing(url: &str) -> Result<()> {
    let options = PgConnectOptions::from_str(url)?;
    let name = options
        .get_database()
        .context("the URL names no database")?
        .to_owned();
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("use a plain database name, not {name:?}");
    }
    let mut admin = options.database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
    }
    admin.close().await?;
    Ok(())
}

async fn user_with_devices(
    store: &dyn Store,
    devices: u64,
    now: DateTime<Utc>,
) -> Result<(UserId, Vec<DeviceRecord>)> {
    let user = UserRecord {
        id: UserId::new(),
        username: format!("bench-{}", UserId::new()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now,
        tokens_valid_after: now,
    };
    store.create_user(&user).await?;
    let mut created = Vec::new();
    for n in 0..devices {
        let device = DeviceRecord {
            id: DeviceId::new(),
            owner: user.id,
            name: format!("camera {n}"),
            kind: "camera".into(),
            created_at: now,
            tokens_valid_after: now,
            revoked_at: None,
        };
        store.create_device(&device).await?;
        created.push(device);
    }
    Ok((user.id, created))
}

async fn insert(url: &str, backend: Backend, frames: u64, per_frame: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = match backend {
        Backend::Sqlite => Arc::new(SqliteStore::open_in(dir.path()).await?),
        Backend::Postgres => {
            create_database_if_missing(url).await?;
            Arc::new(PgStore::connect(url, 4).await?)
        }
    };
    let now = Utc::now();
    let (user, devices) = user_with_devices(store.as_ref(), 1, now).await?;
    let device = &devices[0];
    let detections: Vec<Detection> = (0..per_frame)
        .map(|i| Detection {
            label: Label::parse(COCO[i % COCO.len()]).expect("COCO names are labels"),
            score: 0.3 + (i % 70) as f32 / 100.0,
            bbox: BBox::from([i as f32, 10.0, i as f32 + 50.0, 90.0]),
        })
        .collect();
    let started = Instant::now();
    for seq in 0..frames {
        let captured_at = now + TimeDelta::milliseconds(seq as i64 * 100);
        let frame = NewFrame {
            id: FrameId::new(),
            device: device.id,
            owner: user,
            seq,
            captured_at,
            received_at: captured_at,
            blob_key: format!("frames/{}/{seq:020}.jpg", device.id),
            bytes: 50_000,
            width: 640,
            height: 480,
            detections: detections.clone(),
            shares_image: false,
            clock_skewed: false,
            image_sha256: None,
        };
        if store.insert_frame(&frame).await? != InsertOutcome::Inserted {
            bail!("frame {seq} was not inserted");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rows = frames * per_frame as u64;
    println!(
        "{}: {frames} frames x {per_frame} detections in {elapsed:.2} s: {:.0} detection rows/s, {:.0} frames/s",
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        rows as f64 / elapsed,
        frames as f64 / elapsed
    );
    if let Backend::Postgres = backend {
        // Leave the load's database as it was.
        store.delete_user(user).await?;
    }
    Ok(())
}

/// Frames (one per `every` over the last year) for every device, with
/// `per_frame` detections each: COCO labels skewed so a few are common and
/// most are rare, as in real footage.
async fn load(url: &str, total: u64, per_frame: u64, users: u64, devices: u64) -> Result<()> {
    create_database_if_missing(url).await?;
    let store = PgStore::connect(url, 4).await?;
    let now = Utc::now();
    let mut device_ids = Vec::new();
    for _ in 0..users {
        let (_, created) = user_with_devices(&store, devices, now).await?;
        device_ids.extend(created.into_iter().map(|d| d.id.as_uuid()));
    }
    let frames_per_device = total / per_frame / (users * devices);
    let year = TimeDelta::days(365);
    let step_micros = year.num_microseconds().context("a year in µs")? / frames_per_device as i64;
    let mut conn = PgConnection::connect(url).await?;
    let started = Instant::now();
    for (n, device) in device_ids.iter().enumerate() {
        sqlx::query(
            "INSERT INTO frames \
             (id, device_id, owner_id, seq, captured_at, received_at, blob_key, bytes, width, height) \
             SELECT gen_random_uuid(), d.id, d.owner_id, s, \
                    $2 + make_interval(secs => s * $3 / 1e6), $2 + make_interval(secs => s * $3 / 1e6), \
                    'frames/' || d.id || '/' || lpad(s::text, 20, '0') || '.jpg', 50000, 640, 480 \
             FROM devices d, generate_series(1, $4) s WHERE d.id = $1",
        )
        .bind(device)
        .bind(now - year)
        .bind(step_micros as f64)
        .bind(frames_per_device as i64)
        .execute(&mut conn)
        .await?;
        // Label index: the square of a uniform number skews towards the
        // first COCO names ("person", "bicycle", "car", ...).
        sqlx::query(
            "INSERT INTO detections \
             (frame_id, device_id, owner_id, label, score, x1, y1, x2, y2, captured_at) \
             SELECT f.id, f.device_id, f.owner_id, \
                    ($2::text[])[1 + floor(power(random(), 2) * 80)::int], \
                    0.3 + random() * 0.7, x, 10, x + 50, 90, f.captured_at \
             FROM frames f, generate_series(1, $3) k, LATERAL (SELECT (k * 40)::real AS x) b \
             WHERE f.device_id = $1",
        )
        .bind(device)
        .bind(COCO.as_slice())
        .bind(per_frame as i64)
        .execute(&mut conn)
        .await?;
        println!(
            "device {}/{}: {} detections so far, {:.0} s",
            n + 1,
            device_ids.len(),
            (n as u64 + 1) * frames_per_device * per_frame,
            started.elapsed().as_secs_f64()
        );
    }
    sqlx::query(
        "INSERT INTO last_seen (device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2) \
         SELECT DISTINCT ON (device_id, label) device_id, label, owner_id, frame_id, captured_at, score, x1, y1, x2, y2 \
         FROM detections ORDER BY device_id, label, captured_at DESC, score DESC, id \
         ON CONFLICT (device_id, label) DO NOTHING",
    )
    .execute(&mut conn)
    .await?;
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut conn).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM detections")
        .fetch_one(&mut conn)
        .await?;
    println!(
        "loaded {count} detections in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[index].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} queries)",
        at(0.5),
        at(0.99),
        at(1.0),
        samples.len()
    )
}

async fn query(url: &str, iterations: usize, page: u32) -> Result<()> {
    let store = PgStore::connect(url, 4).await?;
    let mut conn = PgConnection::connect(url).await?;
    let owners: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT DISTINCT owner_id FROM last_seen ORDER BY owner_id")
            .fetch_all(&mut conn)
            .await?;
    if owners.is_empty() {
        bail!("nothing loaded: run `load` first");
    }
    let owner = |i: usize| UserId::from_uuid(owners[i % owners.len()]);
    let label = |i: usize| Label::parse(COCO[(i * 7) % COCO.len()]).expect("COCO label");

    // Warm-up: the first queries of a connection plan and cache.
    for i in 0..50 {
        store.last_seen(owner(i), Some(&label(i))).await?;
    }

    let mut one = Vec::new();
    for i in 0..iterations {
        let started = Instant::now();
        store.last_seen(owner(i), Some(&label(i))).await?;
        one.push(started.elapsed());
    }
    println!("last-seen of one label:      {}", percentiles(one));

    let mut all = Vec::new();
    for i in 0..iterations {
        let started = Instant::now();
        store.last_seen(owner(i), None).await?;
        all.push(started.elapsed());
    }
    println!("last-seen of every label:    {}", percentiles(all));

    for (name, by_label) in [("detections by label", true), ("detections, all", false)] {
        let mut first = Vec::new();
        let mut next = Vec::new();
        for i in 0..iterations / 5 {
            let mut query = DetectionQuery {
                owner: owner(i),
                label: by_label.then(|| label(i)),
                device: None,
                since: None,
                until: None,
                after: None,
                limit: page,
            };
            // The first page, then four more with the cursor.
            for n in 0..5 {
                let started = Instant::now();
                let rows = store.detections(&query).await?;
                let took = started.elapsed();
                if n == 0 { &mut first } else { &mut next }.push(took);
                let Some(last) = rows.last() else { break };
                query.after = Some(Cursor {
                    captured_at: last.captured_at,
                    detection_id: last.id,
                });
            }
        }
        println!("{name:<21} page 1:  {}", percentiles(first));
        println!("{name:<21} pages 2-5: {}", percentiles(next));
    }
    Ok(())
}
