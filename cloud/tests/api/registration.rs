//! Who may create an account (`registration = open | invite | closed`),
//! invite codes (single-use, expiring, atomic), and the operator's
//! `lastseen-cloud add-user` / `invite` run as child processes against a
//! real database.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use chrono::{Duration, Utc};
use futures::future::join_all;
use lastseen_cloud::auth::RegistrationMode;
use lastseen_cloud::auth::registration::{code_hash, new_code};
use lastseen_cloud::store::{InviteRecord, InviteStore, SqliteStore, UserStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, spawn_app_with};
use crate::two_nodes::TestDatabase;

async fn app_in(mode: RegistrationMode) -> TestApp {
    spawn_app_with(|config| config.auth.registration = mode).await
}

async fn mode_of(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/auth/registration"))
        .send()
        .await
        .expect("registration request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("registration JSON")
}

async fn register_with(app: &TestApp, username: &str, invite: Option<&str>) -> reqwest::Response {
    let mut body = json!({"username": username, "password": PASSWORD});
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    app.client
        .post(app.url("/api/v1/auth/register"))
        .json(&body)
        .send()
        .await
        .expect("register request")
}

/// The app's own SQLite database, opened beside it as an operator would.
async fn store_of(app: &TestApp) -> SqliteStore {
    let path = app.data_dir().join("lastseen.db");
    SqliteStore::connect(&format!("sqlite://{}", path.display()), 1)
        .await
        .expect("the app's database")
}

/// Stores a code the operator made, expiring `expires_in` from now.
async fn operator_code(app: &TestApp, expires_in: Duration) -> String {
    let code = new_code();
    let now = Utc::now();
    let invite = InviteRecord {
        code_hash: code_hash(&code).expect("a code"),
        created_by: None,
        created_at: now - Duration::days(30),
        expires_at: now + expires_in,
        used_at: None,
        used_by: None,
    };
    assert!(
        store_of(app)
            .await
            .create_invite(&invite, None)
            .await
            .unwrap()
    );
    code
}

async fn token_of(app: &TestApp, username: &str) -> String {
    let response = app.login(username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("login JSON");
    body["access_token"].as_str().expect("token").to_owned()
}

async fn can_log_in(app: &TestApp, username: &str) -> bool {
    app.login(username, PASSWORD).await.status() == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registration_answers_403_and_creates_no_account() {
    let app = app_in(RegistrationMode::Closed).await;
    assert_eq!(mode_of(&app).await, json!({"mode": "closed"}));

    let refused = app.register("mallory", PASSWORD).await;
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "registration_closed"
    );
    // Not even with a code.
    let code = operator_code(&app, Duration::days(1)).await;
    let refused = register_with(&app, "mallory", Some(&code)).await;
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "registration_closed"
    );
    assert!(!can_log_in(&app, "mallory").await);
    let store = store_of(&app).await;
    assert_eq!(store.user_by_username("mallory").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_registration_admits_one_account_per_valid_unexpired_code() {
    let app = app_in(RegistrationMode::Invite).await;
    assert_eq!(mode_of(&app).await, json!({"mode": "invite"}));

    // No code, an unknown code, an empty one: one answer.
    let unknown = new_code();
    for invite in [None, Some(unknown.as_str()), Some("")] {
        let refused = register_with(&app, "walkin", invite).await;
        assert_eq!(
            error_code(refused, StatusCode::FORBIDDEN).await,
            "invite_invalid",
            "{invite:?}"
        );
    }
    assert!(!can_log_in(&app, "walkin").await);

    let code = operator_code(&app, Duration::days(1)).await;
    let created = register_with(&app, "guest", Some(&code)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert!(can_log_in(&app, "guest").await);

    // The same code again, also as typed with other case and spaces.
    for again in [code.clone(), format!(" {} ", code.to_uppercase())] {
        let refused = register_with(&app, "second", Some(&again)).await;
        assert_eq!(
            error_code(refused, StatusCode::FORBIDDEN).await,
            "invite_invalid"
        );
    }
    assert!(!can_log_in(&app, "second").await);

    let expired = operator_code(&app, Duration::seconds(-1)).await;
    let refused = register_with(&app, "latecomer", Some(&expired)).await;
    assert_eq!(
        error_code(refused, StatusCode::FORBIDDEN).await,
        "invite_invalid"
    );
    assert!(!can_log_in(&app, "latecomer").await);

    // A taken username leaves the code unused for a free one.
    let code = operator_code(&app, Duration::days(1)).await;
    let taken = register_with(&app, "guest", Some(&code)).await;
    assert_eq!(
        error_code(taken, StatusCode::CONFLICT).await,
        "username_taken"
    );
    let created = register_with(&app, "third", Some(&code)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_with_one_code_create_exactly_one_account() {
    let app = app_in(RegistrationMode::Invite).await;
    let code = operator_code(&app, Duration::days(1)).await;
    let names: Vec<String> = (0..12).map(|i| format!("racer{i}")).collect();
    let statuses: Vec<StatusCode> = join_all(
        names
            .iter()
            .map(|name| async { register_with(&app, name, Some(&code)).await.status() }),
    )
    .await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((created, refused), (1, names.len() - 1), "{statuses:?}");
    let mut accounts = 0;
    for name in &names {
        accounts += usize::from(can_log_in(&app, name).await);
    }
    assert_eq!(accounts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_count_against_the_registration_limit() {
    let app = spawn_app_with(|config| {
        config.auth.registration = RegistrationMode::Invite;
        config.auth.register_max_per_client = 3;
    })
    .await;
    for i in 0..3 {
        let refused = register_with(&app, &format!("prober{i}"), Some(&new_code())).await;
        assert_eq!(
            error_code(refused, StatusCode::FORBIDDEN).await,
            "invite_invalid"
        );
    }
    // Even a good code waits now: guessing costs the address its budget.
    let code = operator_code(&app, Duration::days(1)).await;
    let throttled = register_with(&app, "prober", Some(&code)).await;
    assert!(throttled.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(throttled, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_attempts"
    );
}

async fn make_invite(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/account/invites"))
        .bearer_auth(token)
        .send()
        .await
        .expect("invite request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_make_invite_codes_within_their_cap() {
    let app = spawn_app_with(|config| {
        config.auth.registration = RegistrationMode::Invite;
        config.auth.max_invites_per_user = 2;
        config.auth.invite_ttl_days = 3;
    })
    .await;
    let code = operator_code(&app, Duration::days(1)).await;
    assert_eq!(
        register_with(&app, "host", Some(&code)).await.status(),
        StatusCode::CREATED
    );
    let host = token_of(&app, "host").await;

    let mut codes = Vec::new();
    for _ in 0..2 {
        let made = make_invite(&app, &host).await;
        assert_eq!(made.status(), StatusCode::CREATED);
        let body: Value = made.json().await.unwrap();
        let expires: chrono::DateTime<Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
        let ttl = expires - Utc::now();
        assert!(
            ttl > Duration::days(3) - Duration::minutes(5) && ttl <= Duration::days(3),
            "{ttl}"
        );
        codes.push(body["code"].as_str().unwrap().to_owned());
    }
    assert_ne!(codes[0], codes[1]);
    assert_eq!(
        error_code(make_invite(&app, &host).await, StatusCode::CONFLICT).await,
        "too_many_invites"
    );

    // A code used frees its place under the cap.
    assert_eq!(
        register_with(&app, "friend", Some(&codes[0]))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert!(can_log_in(&app, "friend").await);
    assert_eq!(make_invite(&app, &host).await.status(), StatusCode::CREATED);

    // Without a token: 401.
    let anonymous = app
        .client
        .post(app.url("/api/v1/account/invites"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_registration_is_unchanged_and_makes_no_invites() {
    let app = app_in(RegistrationMode::Open).await;
    assert_eq!(mode_of(&app).await, json!({"mode": "open"}));
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
    // A code is not needed, and one sent is neither checked nor used.
    assert_eq!(
        register_with(&app, "bob", Some("not a code"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert!(can_log_in(&app, "alice").await && can_log_in(&app, "bob").await);
    let alice = token_of(&app, "alice").await;
    assert_eq!(
        error_code(make_invite(&app, &alice).await, StatusCode::FORBIDDEN).await,
        "invites_disabled"
    );
    // Unknown fields are still refused.
    let odd = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"username": "carol", "password": PASSWORD, "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(odd, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
    // The default is open.
    assert_eq!(
        lastseen_cloud::config::Config::default().auth.registration,
        RegistrationMode::Open
    );
}

/// `lastseen-cloud [flags] COMMAND`, with `stdin` written to its input.
fn cloud_command(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lastseen-cloud"))
        .args(args)
        .env_remove("LASTSEEN_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lastseen-cloud starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("writes stdin");
    child.wait_with_output().expect("lastseen-cloud ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_add_users_and_make_codes_in_the_services_postgres() {
    let database = TestDatabase::create().await;
    let app = spawn_app_with(|config| {
        config.store.database_url = Some(database.url.clone());
        config.auth.registration = RegistrationMode::Invite;
    })
    .await;
    // The operator's configuration: the same database, given in a file.
    let config_dir = tempfile::tempdir().unwrap();
    let config_file = config_dir.path().join("cloud.toml");
    std::fs::write(
        &config_file,
        format!(
            "database_url = \"{}\"\ndata_dir = \"{}\"\nregistration = \"closed\"\n\
             argon2_memory_kib = 256\nargon2_iterations = 1\n",
            database.url,
            config_dir.path().display()
        ),
    )
    .unwrap();
    let config = config_file.to_str().unwrap();

    let added = cloud_command(
        &["--config", config, "add-user", "--username", "olive"],
        &format!("{PASSWORD}\n"),
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stdout).starts_with("added user olive ("));
    assert!(can_log_in(&app, "olive").await);

    // The rules of registration hold; a refused password makes no account.
    let weak = cloud_command(
        &["--config", config, "add-user", "--username", "weakling"],
        "short\n",
    );
    assert!(!weak.status.success());
    assert!(text(&weak.stderr).contains("10"), "{}", text(&weak.stderr));
    let empty = cloud_command(
        &["--config", config, "add-user", "--username", "nobody"],
        "",
    );
    assert!(!empty.status.success());
    assert!(text(&empty.stderr).contains("standard input"));
    let taken = cloud_command(
        &["--config", config, "add-user", "--username", "olive"],
        &format!("{PASSWORD}\n"),
    );
    assert!(!taken.status.success());
    assert!(!can_log_in(&app, "weakling").await && !can_log_in(&app, "nobody").await);

    // A code, alone on stdout; a note on stderr that this file says closed.
    let made = cloud_command(&["--config", config, "invite", "--expires-days", "2"], "");
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stdout = text(&made.stdout);
    let code = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert_eq!(code.len(), 32, "{code}");
    assert!(text(&made.stderr).contains("`closed`"));
    let bad_days = cloud_command(&["--config", config, "invite", "--expires-days", "0"], "");
    assert!(!bad_days.status.success());

    // The service, in invite mode, takes the code once.
    assert_eq!(
        register_with(&app, "newcomer", Some(code)).await.status(),
        StatusCode::CREATED
    );
    assert!(can_log_in(&app, "newcomer").await);
    let again = register_with(&app, "other", Some(code)).await;
    assert_eq!(
        error_code(again, StatusCode::FORBIDDEN).await,
        "invite_invalid"
    );
    drop(app);
}
