//! Login and registration throttling under attack: concurrent guesses, a
//! shared address, a spoofed X-Forwarded-For, a registration flood.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, error_code, metric, spawn_app_with};

/// Statuses of `n` concurrent login attempts.
async fn concurrent_logins(app: &TestApp, n: usize, username: &str) -> Vec<StatusCode> {
    join_all((0..n).map(|i| async move {
        app.login(username, &format!("wrong guess number {i}"))
            .await
            .status()
    }))
    .await
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn login_from(
    app: &TestApp,
    forwarded_for: &str,
    username: &str,
    password: &str,
) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_race_past_the_limit_nor_lock_out_a_neighbour() {
    let app = spawn_app_with(|config| {
        config.auth.login_max_failures = 10;
        config.auth.login_window_secs = 600;
    })
    .await;
    app.user("alice").await;
    app.user("bob").await;

    let statuses = concurrent_logins(&app, 200, "alice").await;
    // Each attempt is counted before its password is checked: exactly the
    // limit reached Argon2, however many raced.
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        10,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 190);

    // Another user behind the same address (a NAT, a proxy) is not locked out.
    let bob = app.login("bob", PASSWORD).await;
    assert_eq!(bob.status(), StatusCode::OK);
    // The guesser still is.
    assert_eq!(
        error_code(
            app.login("alice", PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS
        )
        .await,
        "too_many_attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_does_not_escape_the_limit() {
    let app = spawn_app_with(|config| {
        config.auth.login_max_failures = 5;
        config.auth.login_window_secs = 600;
        config.http.client_ip_header = Some("x-forwarded-for".to_owned());
        config.http.trusted_proxies = vec!["127.0.0.1".to_owned()];
    })
    .await;
    app.user("alice").await;
    app.user("bob").await;
    // The attacker writes a new left-hand address each time; the trusted
    // proxy (here the test client's own address) appended the real one.
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(
            login_from(
                &app,
                &format!("198.51.100.{i}, 203.0.113.9"),
                "alice",
                "a wrong password",
            )
            .await,
        );
    }
    assert_eq!(
        count(&statuses, StatusCode::UNAUTHORIZED),
        5,
        "{statuses:?}"
    );
    assert_eq!(count(&statuses, StatusCode::TOO_MANY_REQUESTS), 3);
    // Another client behind the same proxy is someone else.
    assert_eq!(
        login_from(&app, "203.0.113.10", "bob", PASSWORD).await,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_limited_per_address() {
    let app = spawn_app_with(|config| {
        config.auth.register_max_per_client = 3;
    })
    .await;
    for name in ["ann", "ben", "cat"] {
        assert_eq!(
            app.register(name, PASSWORD).await.status(),
            StatusCode::CREATED
        );
    }
    let refused = app.register("dan", PASSWORD).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(refused, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_flood_never_runs_more_argon2_than_the_bound() {
    let app = spawn_app_with(|config| {
        // Costly enough that hashes overlap when nothing bounds them.
        config.auth.argon2_memory_kib = 4096;
        config.auth.argon2_iterations = 3;
        config.auth.argon2_max_concurrent = 2;
        config.auth.argon2_wait_ms = 120_000;
    })
    .await;
    let app = &app;
    let statuses = join_all(
        (0..400)
            .map(|i| async move { app.register(&format!("flood{i}"), PASSWORD).await.status() }),
    )
    .await;
    assert_eq!(count(&statuses, StatusCode::CREATED), 400, "{statuses:?}");
    let peak = metric(app, "lastseen_password_hashes_in_flight_peak").await;
    assert!((1..=2).contains(&peak), "peak {peak}");
    assert_eq!(metric(app, "lastseen_password_hashes_in_flight").await, 0);
}

#[test]
fn a_client_ip_header_without_trusted_proxies_is_a_config_error() {
    let mut config = lastseen_cloud::config::Config::default();
    config.http.client_ip_header = Some("x-real-ip".to_owned());
    let problems = config.validate().unwrap_err().to_string();
    assert!(problems.contains("trusted_proxies"), "{problems}");
}
