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
    let rotated = app.act_on_device(&user, &id, "rotate").await;
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
    let rotated = app.act_on_device(&user, &id, "rotate").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devices_frames_are_listed_by_seq_in_pages_for_its_owner_only() {
    let app = spawn_app().await;
    let user = app.user("ledger").await;
    let (id, token) = app.device(&user, "Hall").await;
    // Sent out of order, with a gap at 2; a resend of 3 is stored once.
    for seq in [3, 0, 1, 4, 3] {
        let response = app
            .post_frame(&token, seq, AT, fixture_jpeg("dog.jpg"))
            .await;
        assert!(response.status().is_success(), "{}", response.status());
    }
    let path = format!("/api/v1/devices/{id}/frames");
    let seqs = |page: &Value| -> Vec<u64> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["seq"].as_u64().unwrap())
            .collect()
    };
    let (status, first) = app.get_json(&user, &format!("{path}?limit=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seqs(&first), [0, 1]);
    assert_eq!(first["items"][0]["captured_at"], "2026-11-23T09:00:00Z");
    assert!(first["items"][0]["id"].is_string());
    assert_eq!(first["next_after_seq"], 1);
    let (_, second) = app
        .get_json(&user, &format!("{path}?after_seq=1&limit=2"))
        .await;
    assert_eq!(seqs(&second), [3, 4]);
    let (_, last) = app
        .get_json(&user, &format!("{path}?after_seq=4&limit=2"))
        .await;
    assert_eq!(seqs(&last), Vec::<u64>::new());
    assert!(last["next_after_seq"].is_null());

    // Another user's device looks like a missing one; bad parameters are 400.
    let mallory = app.user("mallory").await;
    let code = error_code(app.get(&mallory, &path).await, StatusCode::NOT_FOUND).await;
    assert_eq!(code, "not_found");
    for bad in [
        "?limit=0",
        "?limit=100000",
        "?after_seq=-1",
        "?after_seq=x",
        "?seq=1",
    ] {
        let response = app.get(&user, &format!("{path}{bad}")).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "bad_request",
            "{bad}"
        );
    }
    let response = app.get(&user, "/api/v1/devices/not-a-uuid/frames").await;
    assert_eq!(
        error_code(response, StatusCode::BAD_REQUEST).await,
        "bad_request"
    );
}
