//! Abuse limits and the headers every response carries.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_cannot_register_more_devices_than_allowed() {
    let app = spawn_app_with(|config| config.devices.max_devices_per_user = 2).await;
    let user = app.user("alice").await;
    app.device(&user, "one").await;
    app.device(&user, "two").await;
    let third = app
        .client
        .post(app.url("/api/v1/devices"))
        .bearer_auth(&user)
        .json(&json!({"name": "three"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(third, StatusCode::CONFLICT).await,
        "too_many_devices"
    );
    let other = app.user("bob").await;
    app.device(&other, "bob's first").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let user = app.user("alice").await;
    for response in [
        app.get(&user, "/api/v1/devices").await,
        app.get(&user, "/api/v1/nope").await,
        app.client
            .get(app.url("/api/v1/devices"))
            .send()
            .await
            .unwrap(),
        app.client
            .get(app.url("/api/v1/health"))
            .send()
            .await
            .unwrap(),
    ] {
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "CORS is off by default"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_configured_origins() {
    let app = spawn_app_with(|config| {
        config.http.cors_allowed_origins = vec!["https://app.example".to_owned()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/last-seen"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
