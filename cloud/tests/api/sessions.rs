//! Logout, log out everywhere, password change, account deletion, throttling.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, error_code, fixture_jpeg, spawn_app, spawn_app_with};

const NEW_PASSWORD: &str = "a brand new passphrase";

async fn post_json(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn login_token(app: &TestApp, username: &str, password: &str) -> String {
    let response = app.login(username, password).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn works(app: &TestApp, token: &str) -> bool {
    app.get(token, "/api/v1/devices").await.status() == StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_only_this_token() {
    let app = spawn_app().await;
    let first = app.user("alice").await;
    let second = login_token(&app, "alice", PASSWORD).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(
        !works(&app, &first).await,
        "a logged-out token must stop working at once"
    );
    assert!(works(&app, &second).await, "other sessions go on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_everywhere_ends_every_earlier_token() {
    let app = spawn_app().await;
    let first = app.user("alice").await;
    let second = login_token(&app, "alice", PASSWORD).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/logout-all"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(!works(&app, &first).await);
    assert!(!works(&app, &second).await);
    let fresh = login_token(&app, "alice", PASSWORD).await;
    assert!(works(&app, &fresh).await, "logging in again works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_needs_the_old_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let token = app.user("alice").await;
    let other = login_token(&app, "alice", PASSWORD).await;

    let wrong = post_json(
        &app,
        &token,
        "/api/v1/auth/password",
        json!({"old_password": "not it at all", "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(
        error_code(wrong, StatusCode::FORBIDDEN).await,
        "wrong_password"
    );
    let weak = post_json(
        &app,
        &token,
        "/api/v1/auth/password",
        json!({"old_password": PASSWORD, "new_password": "1234567890"}),
    )
    .await;
    assert_eq!(
        error_code(weak, StatusCode::BAD_REQUEST).await,
        "common_password"
    );
    assert!(works(&app, &other).await, "failed attempts change nothing");

    let changed = post_json(
        &app,
        &token,
        "/api/v1/auth/password",
        json!({"old_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let body: Value = changed.json().await.unwrap();
    let fresh = body["access_token"].as_str().unwrap();
    assert!(
        works(&app, fresh).await,
        "the answer carries a working token"
    );
    assert!(!works(&app, &token).await);
    assert!(!works(&app, &other).await);
    error_code(app.login("alice", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    login_token(&app, "alice", NEW_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_its_rows_and_images_and_nothing_else() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (_, alice_cam) = app.device(&alice, "Kitchen").await;
    let (_, bob_cam) = app.device(&bob, "Garage").await;
    app.post_frame(
        &alice_cam,
        1,
        "2026-11-23T09:00:00Z",
        fixture_jpeg("coffee.png"),
    )
    .await;
    app.post_frame(
        &alice_cam,
        2,
        "2026-11-23T09:01:00Z",
        fixture_jpeg("dog.jpg"),
    )
    .await;
    let bob_frame: Value = app
        .post_frame(
            &bob_cam,
            1,
            "2026-11-23T09:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.blob_count(), 3);

    let request = |password: &str| {
        app.client
            .delete(app.url("/api/v1/account"))
            .bearer_auth(&alice)
            .json(&json!({"password": password}))
            .send()
    };
    assert_eq!(
        error_code(
            request("wrong password!").await.unwrap(),
            StatusCode::FORBIDDEN
        )
        .await,
        "wrong_password"
    );
    assert_eq!(app.blob_count(), 3, "a refused deletion deletes nothing");
    assert_eq!(
        request(PASSWORD).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );

    assert_eq!(app.blob_count(), 1, "only bob's image is left");
    assert!(!works(&app, &alice).await);
    error_code(app.login("alice", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    error_code(
        app.post_frame(
            &alice_cam,
            3,
            "2026-11-23T09:02:00Z",
            fixture_jpeg("dog.jpg"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (status, frame) = app
        .get_json(
            &bob,
            &format!("/api/v1/frames/{}", bob_frame["frame_id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(frame["detections"].as_array().unwrap().len(), 2);
    let image = app.get(&bob, frame["image_url"].as_str().unwrap()).await;
    assert_eq!(image.status(), StatusCode::OK);
    // The name is free again.
    assert_eq!(
        app.register("alice", PASSWORD).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_logins_are_throttled_per_username() {
    let app = spawn_app_with(|config| {
        config.auth.login_max_failures = 3;
        config.auth.login_window_secs = 600;
    })
    .await;
    app.user("alice").await;
    for _ in 0..3 {
        error_code(
            app.login("alice", "wrong password!").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let throttled = app.login("alice", PASSWORD).await;
    let retry_after: u64 = throttled.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 600);
    assert_eq!(
        error_code(throttled, StatusCode::TOO_MANY_REQUESTS).await,
        "too_many_attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_passwords_are_refused_at_registration() {
    let app = spawn_app().await;
    for common in ["1234567890", "qwertyuiop", "1q2w3e4r5t"] {
        assert_eq!(
            error_code(app.register("alice", common).await, StatusCode::BAD_REQUEST).await,
            "common_password"
        );
    }
}
