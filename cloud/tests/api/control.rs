//! Device settings and status over REST (the MQTT-free half of remote control),
//! and the HTTP side of `/metrics`.

use lastseen_shared::GateSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, fixture_jpeg, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_start_at_the_defaults_and_are_replaced_by_the_owner() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (id, device_token) = app.device(&alice, "Porch").await;
    let path = format!("/api/v1/devices/{id}/settings");

    let (status, body) = app.get_json(&alice, &path).await;
    assert_eq!(status, StatusCode::OK);
    let defaults: GateSettings = serde_json::from_value(body).unwrap();
    assert_eq!(defaults, GateSettings::default());

    // Fields left out take their defaults.
    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&alice)
        .json(&json!({"change": {"min_changed_fraction": 0.05}, "heartbeat_secs": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stored: GateSettings = response.json().await.unwrap();
    assert_eq!(stored.change.min_changed_fraction, 0.05);
    assert_eq!(stored.heartbeat_secs, 0);
    assert_eq!(stored.light, GateSettings::default().light);

    let (_, again) = app.get_json(&alice, &path).await;
    assert_eq!(
        serde_json::from_value::<GateSettings>(again).unwrap(),
        stored
    );
    // The device reads the same with its own token.
    let response = app
        .client
        .get(app.url("/api/v1/device/settings"))
        .bearer_auth(&device_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<GateSettings>().await.unwrap(), stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (id, _) = app.device(&alice, "Porch").await;
    let path = format!("/api/v1/devices/{id}/settings");
    let put = |body: Value| {
        app.client
            .put(app.url(&path))
            .bearer_auth(&alice)
            .json(&body)
            .send()
    };
    let out_of_range = put(json!({"person": {"min_score": 1.5}})).await.unwrap();
    assert_eq!(
        error_code(out_of_range, StatusCode::BAD_REQUEST).await,
        "invalid_settings"
    );
    let inverted = put(json!({"light": {"min_mean_luma": 200, "max_mean_luma": 100}}))
        .await
        .unwrap();
    assert_eq!(
        error_code(inverted, StatusCode::BAD_REQUEST).await,
        "invalid_settings"
    );
    let misspelt = put(json!({"lihgt": {}})).await.unwrap();
    assert_eq!(
        error_code(misspelt, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
    let (_, body) = app.get_json(&alice, &path).await;
    assert_eq!(
        serde_json::from_value::<GateSettings>(body).unwrap(),
        GateSettings::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_of_another_users_device_are_not_found() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (id, device_token) = app.device(&alice, "Porch").await;
    let path = format!("/api/v1/devices/{id}/settings");
    let response = app.get(&bob, &path).await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let response = app
        .client
        .put(app.url(&path))
        .bearer_auth(&bob)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    // A device token is not a user token, and the other way round.
    let response = app.get(&device_token, &path).await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    let response = app.get(&alice, "/api/v1/device/settings").await;
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_posted_over_https_shows_in_the_device_json() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (id, device_token) = app.device(&alice, "Porch").await;
    let (_, before) = app.get_json(&alice, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(before["status"], Value::Null);
    assert_eq!(before["last_status_at"], Value::Null);

    let status = json!({
        "state": "online",
        "at": "2026-11-23T10:00:00Z",
        "counters": {"captured": 120, "dropped_change": 100, "sent": 20},
        "spool_depth": 4,
        "version": "0.1.0"
    });
    let response = app
        .client
        .post(app.url("/api/v1/device/status"))
        .bearer_auth(&device_token)
        .json(&status)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let (_, shown) = app.get_json(&alice, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(shown["status"], status);
    assert!(shown["last_status_at"].is_string());
    let (_, list) = app.get_json(&alice, "/api/v1/devices").await;
    assert_eq!(list["items"][0]["status"], status);

    let bad = app
        .client
        .post(app.url("/api/v1/device/status"))
        .bearer_auth(&device_token)
        .json(&json!({"state": "asleep"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(bad, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_http_frames_by_outcome() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let (_, device) = app.device(&alice, "Desk").await;
    let at = "2026-11-23T10:00:00Z";
    assert_eq!(
        app.post_frame(&device, 1, at, fixture_jpeg("dog.jpg"))
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_frame(&device, 1, at, fixture_jpeg("dog.jpg"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_frame(&device, 2, at, b"\xFF\xD8\xFF truncated".to_vec())
            .await
            .status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for line in [
        "lastseen_frames_received_total{transport=\"http\"} 3",
        "lastseen_frames_stored_total{transport=\"http\"} 1",
        "lastseen_frames_resent_total{transport=\"http\"} 1",
        "lastseen_frames_rejected_total{transport=\"http\",reason=\"unprocessable_image\"} 1",
        "lastseen_detect_queue_capacity 64",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from\n{text}"
        );
    }
    let detected: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("lastseen_detection_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(detected >= 1, "{text}");
}
