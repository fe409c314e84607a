//! Every documented operation is served and answers as documented.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::caller::{Body, Caller};
use super::{fetch_document, operations};
use crate::helpers::{PASSWORD, fixture_jpeg, spawn_app};

/// Every documented operation, called with its owner's real ids, answers
/// 2xx as documented, and its JSON fits the documented schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let mut api = Caller {
        app: &app,
        doc: doc.clone(),
        called: BTreeSet::new(),
    };
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let none = StatusCode::NO_CONTENT;
    let credentials = json!({"username": "spec", "password": PASSWORD});

    api.call(
        ("GET", "/api/v1/health"),
        "/api/v1/health",
        None,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        ("GET", "/api/v1/openapi.json"),
        "/api/v1/openapi.json",
        None,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        ("GET", "/api/v1/docs"),
        "/api/v1/docs",
        None,
        Body::Empty,
        ok,
    )
    .await;

    let mode = api
        .call(
            ("GET", "/api/v1/auth/registration"),
            "/api/v1/auth/registration",
            None,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(mode["mode"], "open");
    let registered = api
        .call(
            ("POST", "/api/v1/auth/register"),
            "/api/v1/auth/register",
            None,
            Body::Json(credentials.clone()),
            created,
        )
        .await;
    assert_eq!(registered["username"], "spec");
    let login = ("POST", "/api/v1/auth/login");
    let session = api
        .call(login, login.1, None, Body::Json(credentials.clone()), ok)
        .await;
    let user = session["access_token"].as_str().expect("token").to_owned();
    let user = Some(user.as_str());
    // Open registration: no codes to make (tests/api/registration.rs makes them).
    api.call(
        ("POST", "/api/v1/account/invites"),
        "/api/v1/account/invites",
        user,
        Body::Empty,
        StatusCode::FORBIDDEN,
    )
    .await;

    let device = api
        .call(
            ("POST", "/api/v1/devices"),
            "/api/v1/devices",
            user,
            Body::Json(json!({"name": "Kitchen"})),
            created,
        )
        .await;
    assert!(device["revoked_at"].is_null());
    let device_id = device["id"].as_str().expect("id").to_owned();
    let device_token = device["token"].as_str().expect("token").to_owned();
    let device_path = format!("/api/v1/devices/{device_id}");

    let frames = ("POST", "/api/v1/frames");
    let frame = api
        .call(
            frames,
            frames.1,
            Some(&device_token),
            Body::Frame {
                seq: 1,
                jpeg: fixture_jpeg("coffee.png"),
            },
            created,
        )
        .await;
    assert!(
        !frame["detections"]
            .as_array()
            .expect("detections")
            .is_empty()
    );
    // The resend answers 200 with the same shape.
    api.call(
        frames,
        frames.1,
        Some(&device_token),
        Body::Frame {
            seq: 1,
            jpeg: fixture_jpeg("coffee.png"),
        },
        ok,
    )
    .await;
    // Another frame under that seq is a conflict, and the device learns where to go on.
    api.call(
        frames,
        frames.1,
        Some(&device_token),
        Body::Frame {
            seq: 1,
            jpeg: fixture_jpeg("dog.jpg"),
        },
        StatusCode::CONFLICT,
    )
    .await;
    let seq = api
        .call(
            ("GET", "/api/v1/device/seq"),
            "/api/v1/device/seq",
            Some(&device_token),
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(seq["highest_seq"], 1);
    let frame_id = frame["frame_id"].as_str().expect("frame_id").to_owned();

    let settings = ("GET", "/api/v1/devices/{id}/settings");
    let settings_path = format!("{device_path}/settings");
    let defaults = api
        .call(settings, &settings_path, user, Body::Empty, ok)
        .await;
    api.call(
        ("PUT", "/api/v1/devices/{id}/settings"),
        &settings_path,
        user,
        Body::Json(json!({"heartbeat_secs": 60})),
        ok,
    )
    .await;
    let own = api
        .call(
            ("GET", "/api/v1/device/settings"),
            "/api/v1/device/settings",
            Some(&device_token),
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(own["heartbeat_secs"], 60);
    assert_eq!(own["light"], defaults["light"]);
    api.call(
        ("POST", "/api/v1/device/status"),
        "/api/v1/device/status",
        Some(&device_token),
        Body::Json(json!({"state": "online", "counters": {"captured": 3}, "spool_depth": 0})),
        none,
    )
    .await;

    let devices = ("GET", "/api/v1/devices");
    let list = api.call(devices, devices.1, user, Body::Empty, ok).await;
    assert_eq!(list["items"][0]["id"], device_id.as_str());
    let one = ("GET", "/api/v1/devices/{id}");
    api.call(one, &device_path, user, Body::Empty, ok).await;
    let rename = ("PATCH", "/api/v1/devices/{id}");
    let renamed = api
        .call(
            rename,
            &device_path,
            user,
            Body::Json(json!({"name": "Hall"})),
            ok,
        )
        .await;
    assert_eq!(renamed["name"], "Hall");

    let frame_path = format!("/api/v1/frames/{frame_id}");
    let shown = api
        .call(
            ("GET", "/api/v1/frames/{id}"),
            &frame_path,
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(shown["device_id"], device_id.as_str());
    let image = ("GET", "/api/v1/frames/{id}/image");
    api.call(image, &format!("{frame_path}/image"), user, Body::Empty, ok)
        .await;
    api.call(
        image,
        &format!("{frame_path}/image?boxes=true"),
        user,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        image,
        &format!("{frame_path}/image?boxes=true&width=160"),
        user,
        Body::Empty,
        ok,
    )
    .await;
    // The WebSocket itself is exercised in live.rs; a plain GET is told to upgrade.
    api.call(
        ("GET", "/api/v1/live"),
        "/api/v1/live",
        None,
        Body::Empty,
        StatusCode::UPGRADE_REQUIRED,
    )
    .await;

    let device_frames = ("GET", "/api/v1/devices/{id}/frames");
    let listed = api
        .call(
            device_frames,
            &format!("{device_path}/frames?after_seq=0&limit=10"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(listed["next_after_seq"].is_null());

    // `/last-seen` answers either alternative of its `oneOf`.
    let last_seen = ("GET", "/api/v1/last-seen");
    let cup = api
        .call(
            last_seen,
            "/api/v1/last-seen?label=cup",
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(cup["frame_id"], frame_id.as_str());
    let all = api
        .call(last_seen, last_seen.1, user, Body::Empty, ok)
        .await;
    assert!(all["items"].as_array().expect("items").len() >= 2);

    // A page with a cursor, and one where `next_cursor` is null.
    let detections = ("GET", "/api/v1/detections");
    let page = api
        .call(
            detections,
            "/api/v1/detections?limit=1",
            user,
            Body::Empty,
            ok,
        )
        .await;
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = api
        .call(
            detections,
            &format!("/api/v1/detections?label=cup&device={device_id}&since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z&limit=50&cursor={cursor}"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(rest["next_cursor"].is_null());

    // Retention: the defaults, the user's own, and back.
    let retention = "/api/v1/account/retention";
    let defaults = api
        .call(("GET", retention), retention, user, Body::Empty, ok)
        .await;
    assert_eq!(defaults["source"], "default");
    let own = api
        .call(
            ("PUT", retention),
            retention,
            user,
            Body::Json(json!({"max_age_days": 30, "max_bytes": 1_000_000_000})),
            ok,
        )
        .await;
    assert_eq!(own["source"], "user");
    let reset = api
        .call(("DELETE", retention), retention, user, Body::Empty, ok)
        .await;
    assert_eq!(reset["source"], "default");

    // Then the operations that end things, each with a token of its own.
    let rotated = api
        .call(
            ("POST", "/api/v1/devices/{id}/rotate"),
            &format!("{device_path}/rotate"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(rotated["token"].is_string());
    let revoked = api
        .call(
            ("POST", "/api/v1/devices/{id}/revoke"),
            &format!("{device_path}/revoke"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(revoked["revoked_at"].is_string());
    api.call(
        ("DELETE", "/api/v1/devices/{id}"),
        &device_path,
        user,
        Body::Empty,
        none,
    )
    .await;

    api.call(
        ("POST", "/api/v1/auth/logout"),
        "/api/v1/auth/logout",
        user,
        Body::Empty,
        none,
    )
    .await;
    let fresh = |session: &Value| session["access_token"].as_str().expect("token").to_owned();
    let session = api
        .call(login, login.1, None, Body::Json(credentials.clone()), ok)
        .await;
    api.call(
        ("POST", "/api/v1/auth/logout-all"),
        "/api/v1/auth/logout-all",
        Some(&fresh(&session)),
        Body::Empty,
        none,
    )
    .await;
    let session = api
        .call(login, login.1, None, Body::Json(credentials), ok)
        .await;
    let new_password = "another long password";
    let changed = api
        .call(
            ("POST", "/api/v1/auth/password"),
            "/api/v1/auth/password",
            Some(&fresh(&session)),
            Body::Json(json!({"old_password": PASSWORD, "new_password": new_password})),
            ok,
        )
        .await;
    api.call(
        ("DELETE", "/api/v1/account"),
        "/api/v1/account",
        Some(&fresh(&changed)),
        Body::Json(json!({"password": new_password})),
        none,
    )
    .await;

    let documented = operations(&doc);
    let missed: Vec<_> = documented.difference(&api.called).collect();
    assert!(
        missed.is_empty(),
        "documented operations this test does not call yet: {missed:?}"
    );
}
