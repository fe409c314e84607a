//! Retention through the API (`/account/retention`), the maintenance task in
//! the running server, and frames of an unchanged scene sharing one image.

use std::time::Duration;

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, fixture_jpeg, spawn_app, spawn_app_with};

async fn retention_call(
    app: &TestApp,
    method: reqwest::Method,
    user: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .request(method, app.url("/api/v1/account/retention"))
        .bearer_auth(user);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("retention request")
}

async fn image_of(app: &TestApp, user: &str, frame: &Value) -> Vec<u8> {
    let id = frame["frame_id"].as_str().expect("frame_id");
    let response = app.get(user, &format!("/api/v1/frames/{id}/image")).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.expect("image").to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_scene_sent_twice_is_two_frames_and_one_image() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    let coffee = fixture_jpeg("coffee.png");

    let mut frames = Vec::new();
    for seq in [1, 2] {
        let captured_at = format!("2026-11-23T10:00:0{seq}Z");
        let response = app
            .post_frame(&device, seq, &captured_at, coffee.clone())
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        frames.push(response.json::<Value>().await.unwrap());
    }
    assert_ne!(frames[0]["frame_id"], frames[1]["frame_id"]);
    assert_eq!(frames[0]["detections"], frames[1]["detections"]);
    assert_eq!(app.blob_count(), 1);
    // Both frames have their rows, and both answer with the one image.
    assert_eq!(image_of(&app, &user, &frames[0]).await, coffee);
    assert_eq!(image_of(&app, &user, &frames[1]).await, coffee);
    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 2);
    let (_, cup) = app.get_json(&user, "/api/v1/last-seen?label=cup").await;
    assert_eq!(cup["frame_id"], frames[1]["frame_id"]);

    // Another scene stores its own image.
    let dog = fixture_jpeg("dog.jpg");
    let response = app
        .post_frame(&device, 3, "2026-11-23T10:00:03Z", dog.clone())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let third: Value = response.json().await.unwrap();
    assert_eq!(app.blob_count(), 2);
    assert_eq!(image_of(&app, &user, &third).await, dog);

    // Deleting the device removes its frames and each image once.
    let devices: Value = app.get_json(&user, "/api/v1/devices").await.1;
    let id = devices["items"][0]["id"].as_str().unwrap();
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/devices/{id}")))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.blob_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_skipping_off_every_frame_stores_its_image() {
    let app = spawn_app_with(|config| config.ingest.skip_unchanged_images = false).await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    for seq in [1, 2] {
        let response = app
            .post_frame(
                &device,
                seq,
                "2026-11-23T10:00:00Z",
                fixture_jpeg("coffee.png"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    assert_eq!(app.blob_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_read_set_and_reset_through_the_api() {
    let app = spawn_app_with(|config| config.retention.retention_days = Some(30)).await;
    let user = app.user("alice").await;
    let get = reqwest::Method::GET;
    let put = reqwest::Method::PUT;

    let defaults =
        json!({"max_age_days": 30, "max_bytes": null, "source": "default", "stored_bytes": 0});
    let response = retention_call(&app, get.clone(), &user, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), defaults);

    let (_, device) = app.device(&user, "Desk").await;
    let coffee = fixture_jpeg("coffee.png");
    let size = coffee.len();
    app.post_frame(&device, 1, "2026-11-23T10:00:00Z", coffee)
        .await;

    let response = retention_call(
        &app,
        put.clone(),
        &user,
        Some(json!({"max_age_days": null, "max_bytes": 5_000_000_000u64})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    // The server's 30 days are an upper bound: "no limit" does not lift it.
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"max_age_days": 30, "max_bytes": 5_000_000_000u64, "source": "user", "stored_bytes": size})
    );
    // A missing field is no limit too.
    let response = retention_call(&app, put.clone(), &user, Some(json!({"max_age_days": 7}))).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["max_age_days"].clone(), body["max_bytes"].clone()),
        (json!(7), Value::Null)
    );
    let (_, again) = app.get_json(&user, "/api/v1/account/retention").await;
    assert_eq!(again, body);

    for bad in [
        json!({"max_age_days": 0}),
        json!({"max_bytes": 0}),
        json!({"max_bytes": 9_223_372_036_854_775_808u64}),
    ] {
        let response = retention_call(&app, put.clone(), &user, Some(bad.clone())).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_retention",
            "{bad}"
        );
    }
    for bad in [
        json!({"days": 7}),
        json!({"max_age_days": -1}),
        json!({"max_age_days": "7"}),
    ] {
        let response = retention_call(&app, put.clone(), &user, Some(bad.clone())).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "bad_request",
            "{bad}"
        );
    }
    // The failed changes changed nothing.
    let (_, unchanged) = app.get_json(&user, "/api/v1/account/retention").await;
    assert_eq!(unchanged, body);

    let response = retention_call(&app, reqwest::Method::DELETE, &user, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut back = defaults.clone();
    back["stored_bytes"] = json!(size);
    assert_eq!(response.json::<Value>().await.unwrap(), back);

    let response = app
        .client
        .get(app.url("/api/v1/account/retention"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

/// Retention goes by the server's clock. A frame captured in 1970 (a Pi
/// without a real-time clock, before NTP syncs) survives a 30-day sweep and
/// is flagged `clock_skewed`; the byte limit deletes the frame *received*
/// first, and `last_seen` is repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maintenance_task_goes_by_arrival_and_keeps_a_wrong_clocks_frames() {
    let first = fixture_jpeg("coffee.png");
    let from_1970 = fixture_jpeg("dog.jpg");
    let last = fixture_jpeg("chelsea.png");
    let max_bytes = (from_1970.len() + last.len()) as u64;
    let app = spawn_app_with(|config| {
        config.retention.retention_days = Some(30);
        config.retention.retention_max_bytes = Some(max_bytes);
        config.retention.maintenance_interval_secs = 1;
        config.ingest.skip_unchanged_images = false;
    })
    .await;
    let user = app.user("alice").await;
    // The user asks to keep everything forever: the server's limits hold.
    let response = retention_call(
        &app,
        reqwest::Method::PUT,
        &user,
        Some(json!({"max_age_days": null, "max_bytes": null})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (_, device) = app.device(&user, "Desk").await;
    let now = Utc::now().to_rfc3339();
    let mut stored = Vec::new();
    for (seq, captured_at, jpeg) in [
        (1, now.as_str(), first),
        (2, "1970-01-01T00:00:10Z", from_1970),
        (3, now.as_str(), last),
    ] {
        let response = app.post_frame(&device, seq, captured_at, jpeg).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        stored.push(format!(
            "/api/v1/frames/{}",
            body["frame_id"].as_str().unwrap()
        ));
    }
    assert_eq!(app.blob_count(), 3);

    // The task runs every second; give it plenty of runs on a busy machine.
    // The rows go first, then the image.
    let mut status = StatusCode::OK;
    for _ in 0..600 {
        status = app.get(&user, &stored[0]).await.status();
        if status == StatusCode::NOT_FOUND && app.blob_count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the first frame received was never deleted"
    );
    let (status, old) = app.get_json(&user, &stored[1]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the frame captured in 1970 was swept"
    );
    assert_eq!(old["captured_at"], "1970-01-01T00:00:10Z");
    assert_eq!(old["clock_skewed"], true);
    let (status, recent) = app.get_json(&user, &stored[2]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recent["clock_skewed"], false);
    assert_eq!(app.blob_count(), 2);
    let response = app.get(&user, "/api/v1/last-seen?label=cup").await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "never_seen"
    );
    let (_, dog) = app.get_json(&user, "/api/v1/last-seen?label=dog").await;
    assert_eq!(dog["frame_id"], old["id"]);
}
