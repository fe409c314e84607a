//! Device lifecycle: rename, rotate token, revoke, delete.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{error_code, fixture_jpeg, spawn_app};

const AT: &str = "2026-11-23T09:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_can_be_renamed_and_has_a_kind() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let created: Value = app
        .client
        .post(app.url("/api/v1/devices"))
        .bearer_auth(&user)
        .json(&json!({"name": "Pi", "kind": "pi"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["kind"], "pi");
    let id = created["id"].as_str().unwrap();
    let renamed = app
        .client
        .patch(app.url(&format!("/api/v1/devices/{id}")))
        .bearer_auth(&user)
        .json(&json!({"name": "Porch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    let (_, shown) = app.get_json(&user, &format!("/api/v1/devices/{id}")).await;
    assert_eq!(shown["name"], "Porch");
    assert_eq!(shown["kind"], "pi");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_replaces_the_old_one_at_once() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (id, old) = app.device(&user, "Hall").await;
    assert_eq!(
        app.post_frame(&old, 1, AT, fixture_jpeg("dog.jpg"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let rotated: Value = app
        .client
        .post(app.url(&format!("/api/v1/devices/{id}/rotate")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotated["token"].as_str().unwrap();
    error_code(
        app.post_frame(&old, 2, AT, fixture_jpeg("dog.jpg")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.post_frame(new, 2, AT, fixture_jpeg("dog.jpg"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_cannot_send_but_its_history_stays() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (id, token) = app.device(&user, "Hall").await;
    app.post_frame(&token, 1, AT, fixture_jpeg("coffee.png"))
        .await;
    let revoked = app
        .client
        .post(app.url(&format!("/api/v1/devices/{id}/revoke")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    error_code(
        app.post_frame(&token, 2, AT, fixture_jpeg("coffee.png"))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (status, cup) = app.get_json(&user, "/api/v1/last-seen?label=cup").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cup["device_id"], id.as_str());
    // Rotating does not bring a revoked device back.
    let rotated: Value = app
        .client
        .post(app.url(&format!("/api/v1/devices/{id}/rotate")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    error_code(
        app.post_frame(
            rotated["token"].as_str().unwrap(),
            3,
            AT,
            fixture_jpeg("coffee.png"),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_device_removes_its_history_and_images_only() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (kitchen_id, kitchen) = app.device(&user, "Kitchen").await;
    let (office_id, office) = app.device(&user, "Office").await;
    app.post_frame(&kitchen, 1, AT, fixture_jpeg("coffee.png"))
        .await;
    app.post_frame(&office, 1, AT, fixture_jpeg("dog.jpg"))
        .await;
    assert_eq!(app.blob_count(), 2);

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/devices/{kitchen_id}")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.blob_count(), 1);
    error_code(
        app.post_frame(&kitchen, 2, AT, fixture_jpeg("coffee.png"))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    error_code(
        app.get(&user, "/api/v1/last-seen?label=cup").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let (_, dog) = app.get_json(&user, "/api/v1/last-seen?label=dog").await;
    assert_eq!(dog["device_id"], office_id.as_str());
    let (_, devices) = app.get_json(&user, "/api/v1/devices").await;
    assert_eq!(devices["items"].as_array().unwrap().len(), 1);
}
