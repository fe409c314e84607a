use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    assert_matches_expected, error_code, expected_detections, fixture_jpeg, spawn_app,
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
    // A resend, as after a lost ack: same (device, seq), even with other bytes.
    let again = app
        .post_frame(&device, 7, "2026-11-23T10:00:00Z", fixture_jpeg("dog.jpg"))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["frame_id"], first["frame_id"]);
    assert_eq!(again["detections"], first["detections"]);

    let (_, cups) = app.get_json(&user, "/api/v1/detections?label=cup").await;
    assert_eq!(cups["items"].as_array().unwrap().len(), 1);
    let (_, dogs) = app.get_json(&user, "/api/v1/detections?label=dog").await;
    assert!(dogs["items"].as_array().unwrap().is_empty());
    assert_eq!(app.blob_count(), 1);
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
    let app = spawn_app_with(|config| config.retry_after_secs = 3).await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    // Break the blob store under the running server: its directory becomes a file.
    let blobs = app.data_dir.path().join("blobs");
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
