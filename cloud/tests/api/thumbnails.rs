//! `GET /frames/{id}/image?width=`: thumbnails, bounded by `max_thumbnail_width`.

use reqwest::StatusCode;

use crate::helpers::{error_code, fixture_jpeg, metric, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thumbnail_is_the_frame_shrunk_to_the_width_asked() {
    let app = spawn_app_with(|config| config.query.max_thumbnail_width = 400).await;
    let user = app.user("thumbs").await;
    let (_, camera) = app.device(&user, "Kitchen").await;
    let stored = app
        .post_frame(
            &camera,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let frame: serde_json::Value = stored.json().await.expect("JSON");
    let image = format!(
        "/api/v1/frames/{}/image",
        frame["frame_id"].as_str().expect("id")
    );

    let original = app.get(&user, &image).await.bytes().await.expect("bytes");
    let original = image::load_from_memory(&original).expect("JPEG");
    let (width, height) = (original.width(), original.height());
    assert!(width > 160, "the fixture is {width} wide");

    for query in ["?width=160", "?width=160&boxes=true"] {
        let response = app.get(&user, &format!("{image}{query}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{query}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .expect("ASCII")
                .contains("max-age"),
            "{query}"
        );
        let thumb = image::load_from_memory(&response.bytes().await.expect("bytes"))
            .expect("a JPEG thumbnail");
        assert_eq!(thumb.width(), 160, "{query}");
        let expected_height = height * 160 / width;
        assert!(
            thumb.height().abs_diff(expected_height) <= 1,
            "{query}: {}",
            thumb.height()
        );
    }

    // The widest allowed is served too (never wider than the frame itself).
    let wide = app.get(&user, &format!("{image}?width=400")).await;
    let wide = image::load_from_memory(&wide.bytes().await.expect("bytes")).expect("JPEG");
    assert_eq!(wide.width(), width.min(400));

    for bad in ["0", "401", "-1", "wide"] {
        let response = app.get(&user, &format!("{image}?width={bad}")).await;
        assert_eq!(
            error_code(response, StatusCode::BAD_REQUEST).await,
            "bad_request",
            "width={bad}"
        );
    }
}

/// Stores one frame and returns its image path.
async fn stored_image(app: &crate::helpers::TestApp, user: &str) -> String {
    let (_, camera) = app.device(user, "Hall").await;
    let stored = app
        .post_frame(&camera, 1, "2026-11-23T10:00:00Z", fixture_jpeg("dog.jpg"))
        .await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let frame: serde_json::Value = stored.json().await.expect("JSON");
    format!(
        "/api/v1/frames/{}/image?boxes=true",
        frame["frame_id"].as_str().expect("id")
    )
}

/// Many parallel box renders of one frame (each decodes the whole frame):
/// never more than `render_max_concurrent` at once; past the wait, 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_renders_stay_within_their_bound() {
    let app = spawn_app_with(|config| {
        config.query.render_max_concurrent = 2;
        config.query.render_wait_ms = 120_000;
        config.query.thumbnail_cache_bytes = 0;
    })
    .await;
    let user = app.user("renders").await;
    let image = stored_image(&app, &user).await;
    let statuses =
        futures::future::join_all((0..60).map(|_| async { app.get(&user, &image).await.status() }))
            .await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    let peak = crate::helpers::metric(&app, "lastseen_renders_in_flight_peak").await;
    assert!((1..=2).contains(&peak), "peak {peak}");
    assert_eq!(
        crate::helpers::metric(&app, "lastseen_renders_in_flight").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_past_the_wait_get_503_with_retry_after() {
    let app = spawn_app_with(|config| {
        config.query.render_max_concurrent = 1;
        config.query.render_wait_ms = 0;
        // Every request renders (none is answered from the cache).
        config.query.thumbnail_cache_bytes = 0;
    })
    .await;
    let user = app.user("renders").await;
    let image = stored_image(&app, &user).await;
    let responses =
        futures::future::join_all((0..40).map(|_| async { app.get(&user, &image).await })).await;
    let mut busy = 0;
    for response in responses {
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(
                error_code(response, StatusCode::SERVICE_UNAVAILABLE).await,
                "overloaded"
            );
            busy += 1;
        } else {
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    assert!(
        busy > 0,
        "40 renders at once with one slot and no wait all got one"
    );
}

/// A copy asked again comes from the thumbnail cache (counted as a hit);
/// the frame is still looked up on every request, so once its device is
/// deleted (and the frame with it) the cached copy is not served: 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_thumbnail_is_a_cache_hit_and_a_deleted_frame_is_not_served() {
    let app = spawn_app().await;
    let user = app.user("cached").await;
    let (device, camera) = app.device(&user, "Porch").await;
    let stored = app
        .post_frame(&camera, 1, "2026-11-23T10:00:00Z", fixture_jpeg("dog.jpg"))
        .await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let frame: serde_json::Value = stored.json().await.expect("JSON");
    let image = format!(
        "/api/v1/frames/{}/image",
        frame["frame_id"].as_str().expect("id")
    );
    let hits = "lastseen_thumbnail_cache_hits_total";
    let misses = "lastseen_thumbnail_cache_misses_total";

    let mut copies = Vec::new();
    for query in ["?width=160", "?width=160&boxes=true", "?boxes=true"] {
        let first = app.get(&user, &format!("{image}{query}")).await;
        assert_eq!(first.status(), StatusCode::OK, "{query}");
        copies.push(first.bytes().await.expect("bytes"));
    }
    assert_eq!(metric(&app, misses).await, 3);
    assert_eq!(metric(&app, hits).await, 0);
    for (query, copy) in ["?width=160", "?width=160&boxes=true", "?boxes=true"]
        .iter()
        .zip(&copies)
    {
        let again = app.get(&user, &format!("{image}{query}")).await;
        assert_eq!(again.status(), StatusCode::OK, "{query}");
        assert_eq!(&again.bytes().await.expect("bytes"), copy, "{query}");
    }
    assert_eq!(metric(&app, hits).await, 3);
    assert_eq!(metric(&app, misses).await, 3);
    assert!(metric(&app, "lastseen_thumbnail_cache_bytes").await > 0);

    // Another user never gets the cached copy.
    let other = app.user("stranger").await;
    let response = app.get(&other, &format!("{image}?width=160")).await;
    assert_eq!(
        error_code(response, StatusCode::NOT_FOUND).await,
        "not_found"
    );

    let deleted = app
        .client
        .delete(app.url(&format!("/api/v1/devices/{device}")))
        .bearer_auth(&user)
        .send()
        .await
        .expect("delete device");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    for query in ["?width=160", "?width=160&boxes=true", "?boxes=true", ""] {
        let response = app.get(&user, &format!("{image}{query}")).await;
        assert_eq!(
            error_code(response, StatusCode::NOT_FOUND).await,
            "not_found",
            "{query}"
        );
    }
    assert_eq!(metric(&app, hits).await, 3);
}

/// With the cache off (`thumbnail_cache_bytes = 0`) every copy is made again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_thumbnail_cache_every_copy_is_made_again() {
    let app = spawn_app_with(|config| config.query.thumbnail_cache_bytes = 0).await;
    let user = app.user("uncached").await;
    let image = stored_image(&app, &user).await;
    for _ in 0..3 {
        assert_eq!(app.get(&user, &image).await.status(), StatusCode::OK);
    }
    assert_eq!(metric(&app, "lastseen_thumbnail_cache_hits_total").await, 0);
    assert_eq!(
        metric(&app, "lastseen_thumbnail_cache_misses_total").await,
        3
    );
}
