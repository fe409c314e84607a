//! Two users and hostile input against every endpoint: another user's ids
//! answer 404, bad tokens 401, bad bodies and parameters 4xx, and afterwards
//! nothing has changed.

use chrono::Utc;
use lastseen_cloud::auth::TokenKeys;
use lastseen_shared::token::{Claims, TokenKind};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TEST_JWT_SECRET, TestApp, error_code, fixture_jpeg, spawn_app};

/// Every user endpoint that takes an id, with a body where it needs one.
fn id_endpoints(device: &str, frame: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/api/v1/devices/{device}"), None),
        (
            Method::PATCH,
            format!("/api/v1/devices/{device}"),
            Some(json!({"name": "stolen"})),
        ),
        (
            Method::POST,
            format!("/api/v1/devices/{device}/rotate"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/devices/{device}/revoke"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/devices/{device}"), None),
        (Method::GET, format!("/api/v1/frames/{frame}"), None),
        (Method::GET, format!("/api/v1/frames/{frame}/image"), None),
        (
            Method::GET,
            format!("/api/v1/frames/{frame}/image?boxes=true"),
            None,
        ),
    ]
}

/// Every endpoint that needs a user token.
fn user_endpoints(device: &str, frame: &str) -> Vec<(Method, String, Option<Value>)> {
    let mut all = id_endpoints(device, frame);
    all.extend([
        (Method::GET, "/api/v1/devices".to_owned(), None),
        (
            Method::POST,
            "/api/v1/devices".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/api/v1/last-seen".to_owned(), None),
        (Method::GET, "/api/v1/last-seen?label=cup".to_owned(), None),
        (Method::GET, "/api/v1/detections".to_owned(), None),
        (Method::POST, "/api/v1/auth/logout".to_owned(), None),
        (Method::POST, "/api/v1/auth/logout-all".to_owned(), None),
        (
            Method::POST,
            "/api/v1/auth/password".to_owned(),
            Some(json!({"old_password": "x", "new_password": "y"})),
        ),
        (
            Method::DELETE,
            "/api/v1/account".to_owned(),
            Some(json!({"password": "x"})),
        ),
    ]);
    all
}

async fn send(
    app: &TestApp,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// What a user can see, to compare before and after an attack.
async fn snapshot(app: &TestApp, token: &str) -> Value {
    let (_, devices) = app.get_json(token, "/api/v1/devices").await;
    let (_, detections) = app.get_json(token, "/api/v1/detections").await;
    let (_, last_seen) = app.get_json(token, "/api/v1/last-seen").await;
    json!({"devices": devices, "detections": detections, "last_seen": last_seen, "blobs": app.blob_count()})
}

struct World {
    app: TestApp,
    alice: String,
    mallory: String,
    device: String,
    device_token: String,
    frame: String,
}

async fn world() -> World {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let mallory = app.user("mallory").await;
    app.device(&mallory, "Mallory's").await;
    let (device, device_token) = app.device(&alice, "Kitchen").await;
    let posted: Value = app
        .post_frame(
            &device_token,
            1,
            "2026-11-23T09:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await
        .json()
        .await
        .unwrap();
    let frame = posted["frame_id"].as_str().unwrap().to_owned();
    World {
        app,
        alice,
        mallory,
        device,
        device_token,
        frame,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_ids_are_not_found_on_every_endpoint() {
    let w = world().await;
    let before = snapshot(&w.app, &w.alice).await;
    for (method, path, body) in id_endpoints(&w.device, &w.frame) {
        let response = send(&w.app, &method, &path, Some(&w.mallory), body.as_ref()).await;
        assert_eq!(
            error_code(response, StatusCode::NOT_FOUND).await,
            "not_found",
            "{method} {path}"
        );
    }
    assert_eq!(snapshot(&w.app, &w.alice).await, before);
    let (_, mallory_sees) = w.app.get_json(&w.mallory, "/api/v1/detections").await;
    assert!(mallory_sees["items"].as_array().unwrap().is_empty());
    assert_eq!(
        w.app
            .post_frame(
                &w.device_token,
                2,
                "2026-11-23T09:01:00Z",
                fixture_jpeg("dog.jpg")
            )
            .await
            .status(),
        StatusCode::CREATED,
        "alice's device still works"
    );
}

fn forged_tokens(alice_id: Uuid) -> Vec<(&'static str, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        sub: alice_id,
        kind: TokenKind::User,
        iat: now - 7200,
        exp,
        jti: Uuid::now_v7(),
        mk: None,
    };
    let right_key = jsonwebtoken::EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes());
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims(now - 3600),
        &right_key,
    )
    .unwrap();
    let (wrong_key, _) = TokenKeys::from_secret(b"another-key-that-is-long-enough-000000")
        .issue(TokenKind::User, alice_id, 600, Utc::now())
        .unwrap();
    let alg_none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims(now + 600)).unwrap())
    );
    vec![
        ("garbage", "garbage".to_owned()),
        ("empty segments", "..".to_owned()),
        ("expired", expired),
        ("wrong key", wrong_key),
        ("alg none", alg_none),
        ("huge", "a".repeat(20_000)),
        ("sql", "' OR 1=1 --".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_forged_tokens_are_401_on_every_endpoint() {
    let w = world().await;
    let alice_id = {
        let (_, devices) = w
            .app
            .get_json(&w.alice, &format!("/api/v1/devices/{}", w.device))
            .await;
        assert_eq!(devices["id"], w.device.as_str());
        // The user id is the subject of alice's token.
        let claims_part = w.alice.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims_part)
                .unwrap(),
        )
        .unwrap();
        Uuid::parse_str(claims["sub"].as_str().unwrap()).unwrap()
    };
    let before = snapshot(&w.app, &w.alice).await;
    let forged = forged_tokens(alice_id);
    for (method, path, body) in user_endpoints(&w.device, &w.frame) {
        let response = send(&w.app, &method, &path, None, body.as_ref()).await;
        error_code(response, StatusCode::UNAUTHORIZED).await;
        for (name, token) in &forged {
            let response = send(&w.app, &method, &path, Some(token), body.as_ref()).await;
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{name}: {method} {path}"
            );
        }
        // A device token reads nothing.
        let response = send(&w.app, &method, &path, Some(&w.device_token), body.as_ref()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "device token: {method} {path}"
        );
    }
    assert_eq!(snapshot(&w.app, &w.alice).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_and_bodies_are_4xx_and_change_nothing() {
    let w = world().await;
    let before = snapshot(&w.app, &w.alice).await;
    let hostile = [
        "' OR 1=1 --",
        "../../etc/passwd",
        "%00",
        "<script>alert(1)</script>",
        "😀",
        "a%2Fb",
    ];
    for text in hostile {
        let encoded: String = url_encode(text);
        for path in [
            format!("/api/v1/devices/{encoded}"),
            format!("/api/v1/frames/{encoded}"),
            format!("/api/v1/frames/{encoded}/image"),
            format!("/api/v1/last-seen?label={encoded}"),
            format!("/api/v1/detections?label={encoded}"),
            format!("/api/v1/detections?device={encoded}"),
            format!("/api/v1/detections?since={encoded}"),
            format!("/api/v1/detections?cursor={encoded}"),
            format!("/api/v1/detections?limit={encoded}"),
        ] {
            let status = w.app.get(&w.alice, &path).await.status();
            assert!(
                status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
                "{path}: {status}"
            );
        }
        let renamed = send(
            &w.app,
            &Method::PATCH,
            &format!("/api/v1/devices/{}", w.device),
            Some(&w.alice),
            Some(&json!({"name": text})),
        )
        .await;
        assert!(renamed.status() == StatusCode::OK || renamed.status() == StatusCode::BAD_REQUEST);
        let rename_back = send(
            &w.app,
            &Method::PATCH,
            &format!("/api/v1/devices/{}", w.device),
            Some(&w.alice),
            Some(&json!({"name": "Kitchen"})),
        )
        .await;
        assert_eq!(rename_back.status(), StatusCode::OK);
        let register = w.app.register(text, "a good long password").await;
        assert_eq!(
            error_code(register, StatusCode::BAD_REQUEST).await,
            "invalid_username"
        );
    }
    for (body, status) in [
        ("{", StatusCode::BAD_REQUEST),
        ("[]", StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"name": 5}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"name": "x", "admin": true}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let response = w
            .app
            .client
            .post(w.app.url("/api/v1/devices"))
            .bearer_auth(&w.alice)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let got = response.status();
        assert!(
            got == status || got == StatusCode::BAD_REQUEST,
            "{body}: {got}"
        );
        error_code(response, got).await;
    }
    let huge = json!({"name": "x".repeat(200_000)});
    let response = send(
        &w.app,
        &Method::POST,
        "/api/v1/devices",
        Some(&w.alice),
        Some(&huge),
    )
    .await;
    assert_eq!(
        error_code(response, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
    assert_eq!(snapshot(&w.app, &w.alice).await, before);
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
