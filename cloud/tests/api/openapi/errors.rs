//! Refusals: the documented 401 for the wrong token, the documented error
//! shape for handler errors, and the self-contained docs page.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::schema_check::assert_fits;
use super::{fetch_document, operation, operations, security_of};
use crate::helpers::{PASSWORD, spawn_app};

/// Each secured operation refuses a missing token and the other kind of
/// token with the documented 401 and error body, and the router's own
/// answers for unknown routes stay distinct from the handlers'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_operations_refuse_other_tokens_with_the_documented_401() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let user = app.user("alice").await;
    let (device_id, device_token) = app.device(&user, "Kitchen").await;

    for (method, path) in operations(&doc) {
        let op = operation(&doc, (&method, &path));
        let schemes = security_of(op);
        if schemes.is_empty() {
            continue;
        }
        let concrete = path.replace("{id}", &device_id);
        let wrong_kind = if schemes.iter().any(|s| s == "user_token") {
            &device_token
        } else {
            &user
        };
        for token in [None, Some(wrong_kind)] {
            let mut request = app.client.request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                app.url(&concrete),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.expect("error JSON");
            assert_fits(&doc, op, status, "application/json", &body);
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    // An unknown path and a wrong method are the router's, not a handler's.
    let unknown = app.get(&user, "/api/v1/devices/x/y/z").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let wrong = app
        .client
        .put(app.url("/api/v1/devices"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// A few handler errors: each status is documented for its operation and
/// the body is the documented error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_are_documented_with_the_error_shape() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let user = app.user("alice").await;
    let (_, device_token) = app.device(&user, "Kitchen").await;
    let random = "0196f1c4-7a10-7c3e-9d5a-2b1e8f0a4c11";

    let cases: Vec<((&str, &str), reqwest::Response, StatusCode, &str)> = vec![
        (
            ("POST", "/api/v1/auth/register"),
            app.register("alice", PASSWORD).await,
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            ("POST", "/api/v1/auth/login"),
            app.login("alice", "not the password at all").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        ),
        (
            ("GET", "/api/v1/devices/{id}"),
            app.get(&user, &format!("/api/v1/devices/{random}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            ("GET", "/api/v1/frames/{id}"),
            app.get(&user, "/api/v1/frames/not-a-uuid").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            ("GET", "/api/v1/last-seen"),
            app.get(&user, "/api/v1/last-seen?label=unicorn").await,
            StatusCode::NOT_FOUND,
            "never_seen",
        ),
        (
            ("GET", "/api/v1/detections"),
            app.get(&user, "/api/v1/detections?colour=red").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            ("POST", "/api/v1/frames"),
            app.client
                .post(app.url("/api/v1/frames"))
                .bearer_auth(&device_token)
                .header("content-type", "image/png")
                .header("x-frame-seq", "1")
                .header("x-captured-at", "2026-11-23T10:00:00Z")
                .body(vec![0x89, b'P', b'N', b'G'])
                .send()
                .await
                .expect("request"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            ("POST", "/api/v1/auth/password"),
            app.client
                .post(app.url("/api/v1/auth/password"))
                .bearer_auth(&user)
                .json(&json!({"old_password": "wrong password here", "new_password": "whatever else it is"}))
                .send()
                .await
                .expect("request"),
            StatusCode::FORBIDDEN,
            "wrong_password",
        ),
    ];
    for (route, response, status, code) in cases {
        assert_eq!(response.status(), status, "{route:?}");
        let body: Value = response.json().await.expect("error JSON");
        assert_fits(
            &doc,
            operation(&doc, route),
            status,
            "application/json",
            &body,
        );
        assert_eq!(body["error"]["code"], code, "{route:?}");
        let description = doc["paths"][route.1][route.0.to_lowercase()]["responses"]
            [status.as_str()]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.contains(&format!("`{code}`")),
            "{route:?} {status}: `{code}` is not named in {description:?}"
        );
    }
}

/// The docs page is one self-contained HTML file under a strict policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_self_contained() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .expect("docs request");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = response.text().await.expect("HTML");
    assert!(page.contains("fetch(\"openapi.json\""));
    for outside in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(
            !page.contains(outside),
            "the page loads something: {outside}"
        );
    }
}
