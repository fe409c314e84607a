use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{error_code, fixture_jpeg, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn where_was_the_cup_last_seen() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, kitchen) = app.device(&user, "Kitchen").await;
    let (office_id, office) = app.device(&user, "Office").await;

    app.post_frame(
        &kitchen,
        1,
        "2026-11-23T09:00:00Z",
        fixture_jpeg("coffee.png"),
    )
    .await;
    let newest = app
        .post_frame(
            &office,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    let newest: Value = newest.json().await.unwrap();
    // A late frame from a spool, captured earlier, must not hide the newer sighting.
    app.post_frame(
        &kitchen,
        2,
        "2026-11-23T08:00:00Z",
        fixture_jpeg("coffee.png"),
    )
    .await;

    let (status, cup) = app.get_json(&user, "/api/v1/last-seen?label=cup").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cup["label"], "cup");
    assert_eq!(cup["device_id"], office_id.as_str());
    assert_eq!(cup["device_name"], "Office");
    assert_eq!(cup["frame_id"], newest["frame_id"]);
    assert_eq!(cup["captured_at"], "2026-11-23T10:00:00Z");
    assert!((cup["score"].as_f64().unwrap() - 0.899).abs() < 0.03);
    assert_eq!(cup["box"].as_array().unwrap().len(), 4);

    let image = app.get(&user, cup["image_url"].as_str().unwrap()).await;
    assert_eq!(image.status(), StatusCode::OK);
    assert_eq!(image.headers()["content-type"], "image/jpeg");
    let original = image.bytes().await.unwrap();
    assert_eq!(original.as_ref(), fixture_jpeg("coffee.png").as_slice());

    let boxed = app
        .get(
            &user,
            &format!("{}?boxes=true", cup["image_url"].as_str().unwrap()),
        )
        .await;
    assert_eq!(boxed.status(), StatusCode::OK);
    let boxed = image::load_from_memory(&boxed.bytes().await.unwrap())
        .expect("a JPEG")
        .into_rgb8();
    let plain = image::load_from_memory(&original).unwrap().into_rgb8();
    assert_eq!(boxed.dimensions(), plain.dimensions());
    assert_ne!(boxed.as_raw(), plain.as_raw(), "boxes were drawn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_seen_lists_every_label_and_404s_for_unseen_ones() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Yard").await;
    app.post_frame(
        &device,
        1,
        "2026-11-23T09:00:00Z",
        fixture_jpeg("coffee.png"),
    )
    .await;
    app.post_frame(&device, 2, "2026-11-23T09:01:00Z", fixture_jpeg("dog.jpg"))
        .await;

    let (status, all) = app.get_json(&user, "/api/v1/last-seen").await;
    assert_eq!(status, StatusCode::OK);
    let mut labels: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        ["bicycle", "car", "cat", "cup", "dining table", "dog"]
    );
    assert_eq!(
        all["items"][0]["captured_at"], "2026-11-23T09:01:00Z",
        "newest first"
    );

    let response = app.get(&user, "/api/v1/last-seen?label=umbrella").await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "never_seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detections_are_filtered_and_paginated_newest_first() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (kitchen_id, kitchen) = app.device(&user, "Kitchen").await;
    let (_, office) = app.device(&user, "Office").await;
    for (seq, hour) in [(1, "09"), (2, "10"), (3, "11")] {
        let at = format!("2026-11-23T{hour}:00:00Z");
        assert_eq!(
            app.post_frame(&kitchen, seq, &at, fixture_jpeg("coffee.png"))
                .await
                .status(),
            StatusCode::CREATED
        );
    }
    app.post_frame(
        &office,
        1,
        "2026-11-23T12:00:00Z",
        fixture_jpeg("coffee.png"),
    )
    .await;

    // 4 frames x (cup, dining table), walked 3 at a time.
    let mut seen = Vec::new();
    let mut path = "/api/v1/detections?limit=3".to_owned();
    loop {
        let (status, page) = app.get_json(&user, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/detections?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8);
    let mut ids: Vec<i64> = seen.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    let times: Vec<&str> = seen
        .iter()
        .map(|d| d["captured_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "no row repeated across pages");

    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 4);
    let (_, kitchen_cups) = app
        .get_json(
            &user,
            &format!("/api/v1/detections?label=cup&device={kitchen_id}"),
        )
        .await;
    assert_eq!(kitchen_cups["items"].as_array().unwrap().len(), 3);
    let window =
        "/api/v1/detections?label=cup&since=2026-11-23T10:00:00Z&until=2026-11-23T12:00:00Z";
    let (_, windowed) = app.get_json(&user, window).await;
    let times: Vec<&str> = windowed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["captured_at"].as_str().unwrap())
        .collect();
    assert_eq!(times, ["2026-11-23T11:00:00Z", "2026-11-23T10:00:00Z"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_shows_its_metadata_and_detections() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (device_id, device) = app.device(&user, "Desk").await;
    let posted: Value = app
        .post_frame(&device, 5, "2026-11-23T09:00:00Z", fixture_jpeg("dog.jpg"))
        .await
        .json()
        .await
        .unwrap();
    let id = posted["frame_id"].as_str().unwrap();

    let (status, frame) = app.get_json(&user, &format!("/api/v1/frames/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(frame["id"], id);
    assert_eq!(frame["device_id"], device_id.as_str());
    assert_eq!(frame["device_name"], "Desk");
    assert_eq!(frame["seq"], 5);
    assert_eq!(frame["width"], 768);
    assert_eq!(frame["height"], 576);
    assert_eq!(frame["detections"], posted["detections"]);
    assert_eq!(frame["image_url"], format!("/api/v1/frames/{id}/image"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_frames_are_not_found() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    let (alice_device_id, alice_device) = app.device(&alice, "Desk").await;
    let posted: Value = app
        .post_frame(
            &alice_device,
            1,
            "2026-11-23T09:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = posted["frame_id"].as_str().unwrap();

    for path in [
        format!("/api/v1/frames/{id}"),
        format!("/api/v1/frames/{id}/image"),
        format!("/api/v1/frames/{id}/image?boxes=true"),
    ] {
        assert_eq!(
            error_code(app.get(&mallory, &path).await, StatusCode::NOT_FOUND).await,
            "not_found",
            "{path}"
        );
    }
    error_code(
        app.get(&mallory, "/api/v1/last-seen?label=cup").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let (_, all) = app.get_json(&mallory, "/api/v1/last-seen").await;
    assert!(all["items"].as_array().unwrap().is_empty());
    let (_, detections) = app
        .get_json(
            &mallory,
            &format!("/api/v1/detections?device={alice_device_id}"),
        )
        .await;
    assert!(detections["items"].as_array().unwrap().is_empty());
}
