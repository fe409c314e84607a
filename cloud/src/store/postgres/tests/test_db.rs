//! A database of its own for each PostgreSQL test.
//!
//! The server is `LASTSEEN_TEST_DATABASE_URL` (default [`DEFAULT_ADMIN_URL`]);
//! each test creates `lastseen_test_<uuid>` there and drops it when it ends,
//! also when it fails. An unreachable server fails the tests: CI must not
//! pass because a service is missing.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The machine's PostgreSQL, as set up for development and CI.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DATABASE_PREFIX: &str = "lastseen_test_";
/// Test databases left behind by a killed run are dropped once they are this
/// old. Younger ones may belong to another test run against the same server
/// (another checkout), which must not lose its databases mid-test.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);

fn admin_url() -> String {
    std::env::var("LASTSEEN_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database (the path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, params) = url
        .split_once('?')
        .map_or((url, None), |(b, p)| (b, Some(p)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let params = params.map(|p| format!("?{p}")).unwrap_or_default();
    format!("{}/{database}{params}", &base[..authority_end])
}

async fn admin_connection(url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(url).await
}

/// Connects to the test server or fails the test saying what to do.
async fn admin() -> PgConnection {
    let url = admin_url();
    // Host and port only: the URL may hold a password.
    let server = PgConnectOptions::from_str(&url).map_or_else(
        |e| format!("<unparsable URL: {e}>"),
        |o| format!("{}:{}", o.get_host(), o.get_port()),
    );
    admin_connection(&url).await.unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL tests need a server, and {server} does not answer: {e}. Start the \
             local one with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main \
             start`, or set LASTSEEN_TEST_DATABASE_URL (default {DEFAULT_ADMIN_URL})."
        )
    })
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(conn)
    .await?;
    Ok(())
}

/// When the test database named `name` was created (its UUIDv7), if it is one.
fn created_at(name: &str) -> Option<SystemTime> {
    let uuid = Uuid::try_parse(name.strip_prefix(DATABASE_PREFIX)?).ok()?;
    let (seconds, nanos) = uuid.get_timestamp()?.to_unix();
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// Drops the test databases of runs that were killed before their guards ran.
async fn sweep_leftovers(conn: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{}%", DATABASE_PREFIX.replace('_', "\\_")))
            .fetch_all(&mut *conn)
            .await
            .expect("list the test databases");
    let cutoff = SystemTime::now() - LEFTOVER_AGE;
    for name in names {
        if created_at(&name).is_some_and(|created| created < cutoff) {
            drop_database(conn, &name)
                .await
                .expect("drop a leftover test database");
        }
    }
}

/// A database of one test; dropping this drops the database.
pub(crate) struct TestDb {
    pub(super) name: String,
    admin_url: String,
    /// Where the test's store connects.
    pub(crate) url: String,
}

impl TestDb {
    pub(crate) async fn create() -> Self {
        static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        let mut conn = admin().await;
        SWEPT.get_or_init(|| sweep_leftovers(&mut conn)).await;
        // UUIDv7: the name tells its age to `sweep_leftovers`; hex is a safe identifier.
        let name = format!("{DATABASE_PREFIX}{}", Uuid::now_v7().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("create the test database {name}: {e}"));
        let admin_url = admin_url();
        let url = with_database(&admin_url, &name);
        let _ = conn.close().await;
        Self {
            name,
            admin_url,
            url,
        }
    }
}

impl Drop for TestDb {
    /// The test's runtime may be unwinding or busy, so the `DROP DATABASE`
    /// runs on a runtime of its own on another thread; `FORCE` ends the
    /// store's connections that are still open. A failure is only reported:
    /// the next run sweeps what is left.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(sqlx::Error::Io)?;
            runtime.block_on(async {
                let mut conn = admin_connection(&admin_url).await?;
                drop_database(&mut conn, &name).await?;
                conn.close().await
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cannot drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "cannot drop test database {}: the thread panicked",
                self.name
            ),
        }
    }
}

#[test]
fn database_urls_get_the_test_database_and_keep_their_parameters() {
    for (url, want) in [
        (
            "postgres://postgres@127.0.0.1:5432/postgres",
            "postgres://postgres@127.0.0.1:5432/db",
        ),
        ("postgres://h", "postgres://h/db"),
        (
            "postgresql://u:p@h/postgres?sslmode=require",
            "postgresql://u:p@h/db?sslmode=require",
        ),
    ] {
        assert_eq!(with_database(url, "db"), want);
    }
}

#[test]
fn test_database_names_tell_their_age() {
    let name = format!("{DATABASE_PREFIX}{}", Uuid::now_v7().simple());
    let age = SystemTime::now()
        .duration_since(created_at(&name).unwrap())
        .unwrap_or_default();
    assert!(age < Duration::from_secs(60), "{age:?}");
    assert_eq!(created_at("lastseen_test_not_a_uuid"), None);
    assert_eq!(
        created_at(&format!("{DATABASE_PREFIX}{}", Uuid::nil().simple())),
        None
    );
    assert_eq!(created_at("postgres"), None);
}
