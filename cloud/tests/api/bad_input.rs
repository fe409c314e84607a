//! Each kind of bad input gets its documented 4xx in the JSON error shape,
//! and changes nothing.

use crate::helpers::{TestApp, error_code, fixture_jpeg, spawn_app, spawn_app_with, trace_frame};
use reqwest::StatusCode;

const AT: &str = "2026-11-23T10:00:00Z";

async fn assert_nothing_stored(app: &TestApp, user: &str) {
    let (_, detections) = app.get_json(user, "/api/v1/detections").await;
    assert!(
        detections["items"].as_array().unwrap().is_empty(),
        "{detections}"
    );
    assert_eq!(app.blob_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_are_not_whole_jpegs_are_refused() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;

    let png = std::fs::read(lastseen_cloud::testkit::image_path("coffee.png")).unwrap();
    assert_eq!(
        error_code(
            app.post_frame(&device, 1, AT, png).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        )
        .await,
        "unsupported_media_type"
    );
    let text = b"hello, I am not an image".to_vec();
    error_code(
        app.post_frame(&device, 2, AT, text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;
    error_code(
        app.post_frame(&device, 3, AT, Vec::new()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    )
    .await;

    let jpeg = fixture_jpeg("dog.jpg");
    let truncated = jpeg[..jpeg.len() / 2].to_vec();
    assert_eq!(
        error_code(
            app.post_frame(&device, 4, AT, truncated).await,
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        "unprocessable_image"
    );
    let mut corrupt = jpeg[..600].to_vec();
    corrupt.extend(std::iter::repeat_n(0x55u8, 4000));
    corrupt.extend_from_slice(&[0xFF, 0xD9]);
    error_code(
        app.post_frame(&device, 5, AT, corrupt).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let wrong_type = app
        .client
        .post(app.url("/api/v1/frames"))
        .bearer_auth(&device)
        .header("content-type", "application/octet-stream")
        .header("x-frame-seq", "6")
        .header("x-captured-at", AT)
        .body(fixture_jpeg("dog.jpg"))
        .send()
        .await
        .unwrap();
    error_code(wrong_type, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert_nothing_stored(&app, &user).await;

    // The same seqs still work afterwards: nothing was reserved by the failures.
    assert_eq!(
        app.post_frame(&device, 4, AT, fixture_jpeg("dog.jpg"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_with(|config| config.http.max_frame_bytes = 20_000).await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    let big = trace_frame(0);
    assert!(big.len() > 20_000);
    assert_eq!(
        error_code(
            app.post_frame(&device, 1, AT, big).await,
            StatusCode::PAYLOAD_TOO_LARGE
        )
        .await,
        "payload_too_large"
    );
    assert_nothing_stored(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_need_a_valid_device_token() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let other = spawn_app().await;
    let foreign_user = other.user("alice").await;
    let (_, foreign_device) = other.device(&foreign_user, "Elsewhere").await;

    let no_token = app
        .client
        .post(app.url("/api/v1/frames"))
        .header("content-type", "image/jpeg")
        .header("x-frame-seq", "1")
        .header("x-captured-at", AT)
        .body(fixture_jpeg("dog.jpg"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(no_token, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    for token in [
        "garbage",
        "a.b.c",
        &user,
        &foreign_device,
        &"x".repeat(10_000),
    ] {
        let response = app.post_frame(token, 1, AT, fixture_jpeg("dog.jpg")).await;
        error_code(response, StatusCode::UNAUTHORIZED).await;
    }
    assert_nothing_stored(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frame_metadata_is_400() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Desk").await;
    for (seq, at) in [
        ("-1", AT),
        ("abc", AT),
        ("99999999999999999999", AT),
        ("1", "yesterday"),
        ("1", "2999-01-01T00:00:00Z"),
        ("1 OR 1=1", AT),
    ] {
        let response = app
            .client
            .post(app.url("/api/v1/frames"))
            .bearer_auth(&device)
            .header("content-type", "image/jpeg")
            .header("x-frame-seq", seq)
            .header("x-captured-at", at)
            .body(fixture_jpeg("dog.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "invalid_frame_metadata",
            "{seq} {at}"
        );
    }
    let missing = app
        .client
        .post(app.url("/api/v1/frames"))
        .bearer_auth(&device)
        .header("content-type", "image/jpeg")
        .body(fixture_jpeg("dog.jpg"))
        .send()
        .await
        .unwrap();
    error_code(missing, StatusCode::BAD_REQUEST).await;
    assert_nothing_stored(&app, &user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_query_parameters_are_400() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    for path in [
        "/api/v1/last-seen?label=Cup!",
        "/api/v1/last-seen?label=",
        "/api/v1/last-seen?label=cup'%20OR%201=1--",
        "/api/v1/last-seen?lable=cup",
        "/api/v1/detections?limit=0",
        "/api/v1/detections?limit=100000",
        "/api/v1/detections?limit=-3",
        "/api/v1/detections?limit=abc",
        "/api/v1/detections?cursor=not-a-cursor",
        "/api/v1/detections?device=../../etc/passwd",
        "/api/v1/detections?since=yesterday",
        "/api/v1/detections?since=2026-11-23T10:00:00Z&until=2026-11-23T09:00:00Z",
        "/api/v1/frames/not-a-uuid",
        "/api/v1/frames/not-a-uuid/image",
        "/api/v1/frames/0193a0c4-0000-7000-8000-000000000000/image?boxes=maybe",
    ] {
        let code = error_code(app.get(&user, path).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(code, "bad_request", "{path}");
    }
    let (status, _) = app
        .get_json(&user, "/api/v1/frames/0193a0c4-0000-7000-8000-000000000000")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    assert_eq!(
        error_code(app.get(&user, "/api/v1/nope").await, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let response = app
        .client
        .delete(app.url("/api/v1/last-seen"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(response, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    error_code(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .body("username=a")
        .send()
        .await
        .unwrap();
    error_code(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_and_loses_nothing() {
    let app = spawn_app_with(|config| {
        config.detect.queue_depth = 1;
        config.http.retry_after_secs = 2;
    })
    .await;
    let user = app.user("alice").await;
    let (_, device) = app.device(&user, "Busy").await;
    let frames = 12u64;
    let posts = (0..frames).map(|seq| app.post_frame(&device, seq, AT, trace_frame(seq as usize)));
    let responses = futures::future::join_all(posts).await;

    let mut stored = 0;
    let mut refused = Vec::new();
    for (seq, response) in responses.into_iter().enumerate() {
        match response.status() {
            StatusCode::CREATED => stored += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(response.headers()["retry-after"], "2");
                assert_eq!(
                    error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
                    "overloaded"
                );
                refused.push(seq as u64);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        !refused.is_empty(),
        "12 concurrent frames into a queue of 1 must overflow"
    );
    assert!(stored >= 1);
    // The device retries what was refused, as its spool would; all arrive once.
    for seq in refused {
        let mut status = StatusCode::SERVICE_UNAVAILABLE;
        while status == StatusCode::SERVICE_UNAVAILABLE {
            status = app
                .post_frame(&device, seq, AT, trace_frame(seq as usize))
                .await
                .status();
        }
        assert_eq!(status, StatusCode::CREATED);
    }
    assert_eq!(app.blob_count(), frames as usize);
    let (_, body) = app.get_json(&user, "/api/v1/health").await;
    assert_eq!(body["queue"]["capacity"], 1);
}
