use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, error_code, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_and_create_a_device() {
    let app = spawn_app().await;
    let response = app.register("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = app.login("alice", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let login: Value = response.json().await.unwrap();
    assert_eq!(login["token_type"], "bearer");
    assert!(login["expires_in"].as_u64().unwrap() > 0);
    let token = login["access_token"].as_str().unwrap();

    let (id, device_token) = app.device(token, "Kitchen").await;
    assert!(!device_token.is_empty());
    let (status, devices) = app.get_json(token, "/api/v1/devices").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(devices["items"].as_array().unwrap().len(), 1);
    assert_eq!(devices["items"][0]["id"], id.as_str());
    assert_eq!(devices["items"][0]["name"], "Kitchen");
    assert!(
        devices["items"][0].get("token").is_none(),
        "the token is shown once only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_username_is_a_conflict() {
    let app = spawn_app().await;
    app.register("bob", PASSWORD).await;
    assert_eq!(
        error_code(app.register("bob", PASSWORD).await, StatusCode::CONFLICT).await,
        "username_taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_and_unknown_users_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("carol", PASSWORD).await;
    let wrong = error_code(
        app.login("carol", "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = error_code(
        app.login("nobody", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong, unknown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_and_bad_usernames_are_refused() {
    let app = spawn_app().await;
    error_code(app.register("dave", "short").await, StatusCode::BAD_REQUEST).await;
    error_code(
        app.register("Robert'); DROP TABLE users;--", PASSWORD)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    error_code(app.login("dave", PASSWORD).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_routes_need_a_user_token() {
    let app = spawn_app().await;
    let user = app.user("erin").await;
    let (_, device_token) = app.device(&user, "Hall").await;
    let response = app
        .client
        .post(app.url("/api/v1/devices"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    error_code(response, StatusCode::UNAUTHORIZED).await;
    // A device token can send frames but read nothing.
    error_code(
        app.get(&device_token, "/api/v1/devices").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    error_code(
        app.get(&device_token, "/api/v1/last-seen").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
