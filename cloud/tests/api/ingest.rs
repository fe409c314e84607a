use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    assert_matches_expected, error_code, expected_detections, fixture_jpeg, metric, spawn_app,
    spawn_app_with,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_image_posted_over_http_is_detected_as_expected() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    let expected = expected_detections();
    for (seq, (name, want)) in expected.as_object().unwrap().iter().enumerate() {
        let response = app
            .post_frame(
                &device,
                seq as u64,
                "2026-11-23T10:00:00Z",
                fixture_jpeg(name),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["seq"], seq as u64);
        assert!(body["frame_id"].is_string());
        assert_matches_expected(name, &body["detections"], want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_frame_is_answered_again_and_stored_once() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;

    let first = app
        .post_frame(
            &device,
            7,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // A resend, as after a lost ack: the same (device, seq), time and image
    // (the same instant written with another offset is the same time).
    for captured_at in ["2026-11-23T10:00:00Z", "2026-11-23T11:00:00.000+01:00"] {
        let again = app
            .post_frame(&device, 7, captured_at, fixture_jpeg("coffee.png"))
            .await;
        assert_eq!(again.status(), StatusCode::OK);
        let again: Value = again.json().await.unwrap();
        assert_eq!(again["frame_id"], first["frame_id"]);
        assert_eq!(again["detections"], first["detections"]);
    }

    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.blob_count(), 1);
}

/// A reflashed device, a restored backup or an emptied spool sends new
/// frames under seqs the cloud stored already: not resends, so refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_frame_under_a_stored_seq_is_a_conflict_and_stores_nothing() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (id, device) = app.device(&user, "Desk").await;
    let first = app
        .post_frame(
            &device,
            7,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let stored_image = app
        .get(
            &user,
            &format!(
                "/api/v1/frames/{}/image",
                first["frame_id"].as_str().unwrap()
            ),
        )
        .await
        .bytes()
        .await
        .unwrap();

    // Another image, at the same time or a later one; the same image later.
    for (captured_at, image) in [
        ("2026-11-23T10:00:00Z", "dog.jpg"),
        ("2026-11-23T12:00:00Z", "dog.jpg"),
        ("2026-11-23T10:00:00.001Z", "coffee.png"),
    ] {
        let refused = app
            .post_frame(&device, 7, captured_at, fixture_jpeg(image))
            .await;
        assert_eq!(
            error_code(refused, StatusCode::CONFLICT).await,
            "seq_conflict",
            "{captured_at} {image}"
        );
    }

    // Nothing of the refused frames was stored, and the first image is intact.
    let (_, frames) = app
        .get_json(&user, &format!("/api/v1/devices/{id}/frames"))
        .await;
    let items = frames["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{frames}");
    assert_eq!(items[0]["captured_at"], "2026-11-23T10:00:00Z");
    let (_, dogs) = app.get_json(&user, "/api/v1/detections?label=dog").await;
    assert!(dogs["items"].as_array().unwrap().is_empty());
    assert_eq!(app.blob_count(), 1);
    let image = app
        .get(
            &user,
            &format!(
                "/api/v1/frames/{}/image",
                first["frame_id"].as_str().unwrap()
            ),
        )
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(image, stored_image);
    assert_eq!(
        metric(
            &app,
            "lastseen_frames_rejected_total{transport=\"http\",reason=\"seq_conflict\"}"
        )
        .await,
        3
    );

    // The device learns where to continue, and its next seq is stored.
    let (status, seq) = app.get_json(&device, "/api/v1/device/seq").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seq, json!({"highest_seq": 7}));
    let next = app
        .post_frame(&device, 8, "2026-11-23T12:00:00Z", fixture_jpeg("dog.jpg"))
        .await;
    assert_eq!(next.status(), StatusCode::CREATED);
}

/// Two different frames racing under one seq: one is stored, the other is a
/// conflict, and the stored frame's image is its own (never overwritten).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_frames_under_one_seq_store_one_with_its_own_image() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (id, device) = app.device(&user, "Desk").await;
    let images = ["coffee.png", "dog.jpg", "coffee.png", "dog.jpg"];
    let posts = images.iter().enumerate().map(|(i, image)| {
        let captured_at = format!("2026-11-23T10:00:0{i}Z");
        let app = &app;
        let device = &device;
        async move {
            app.post_frame(device, 3, &captured_at, fixture_jpeg(image))
                .await
        }
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(posts)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        3,
        "{statuses:?}"
    );
    let winner = statuses
        .iter()
        .position(|s| *s == StatusCode::CREATED)
        .unwrap();
    let (_, frames) = app
        .get_json(&user, &format!("/api/v1/devices/{id}/frames"))
        .await;
    let frame_id = frames["items"][0]["id"].as_str().unwrap().to_owned();
    let image = app
        .get(&user, &format!("/api/v1/frames/{frame_id}/image"))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(image.as_ref(), fixture_jpeg(images[winner]).as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devices_highest_seq_needs_its_token_and_is_null_before_its_first_frame() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    let (status, seq) = app.get_json(&device, "/api/v1/device/seq").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seq, json!({"highest_seq": null}));
    for seq in [5, 2] {
        let response = app
            .post_frame(
                &device,
                seq,
                "2026-11-23T10:00:00Z",
                fixture_jpeg("dog.jpg"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (_, seq) = app.get_json(&device, "/api/v1/device/seq").await;
    assert_eq!(seq, json!({"highest_seq": 5}));
    // Another device's frames do not count; a user token is not a device's.
    let (_, other) = app.device(&user, "Hall").await;
    let (_, seq) = app.get_json(&other, "/api/v1/device/seq").await;
    assert_eq!(seq, json!({"highest_seq": null}));
    let refused = app.get(&user, "/api/v1/device/seq").await;
    assert_eq!(
        error_code(refused, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_of_one_frame_store_it_once() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    let posts = (0..4).map(|_| {
        app.post_frame(
            &device,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
    });
    let responses = futures::future::join_all(posts).await;
    let mut frame_ids = Vec::new();
    for response in responses {
        assert!(
            matches!(response.status(), StatusCode::CREATED | StatusCode::OK),
            "{}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        frame_ids.push(body["frame_id"].as_str().unwrap().to_owned());
    }
    frame_ids.dedup();
    assert_eq!(
        frame_ids.len(),
        1,
        "every answer names the one stored frame"
    );
    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_outage_answers_503_and_the_resent_frame_is_stored_once() {
    let app = spawn_app_with(|config| config.http.retry_after_secs = 3).await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    // Break the blob store under the running server: its directory becomes a file.
    let blobs = app.data_dir().join("blobs");
    std::fs::remove_dir_all(&blobs).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();

    let refused = app
        .post_frame(
            &device,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(refused.headers()["retry-after"], "3");
    assert_eq!(
        error_code(refused, StatusCode::SERVICE_UNAVAILABLE).await,
        "storage_unavailable"
    );
    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert!(
        cups["items"].as_array().unwrap().is_empty(),
        "no row without its image"
    );

    std::fs::remove_file(&blobs).unwrap();
    std::fs::create_dir(&blobs).unwrap();
    let resent = app
        .post_frame(
            &device,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(resent.status(), StatusCode::CREATED);
    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 1);
    assert_eq!(app.blob_count(), 1);
}
