//! `GET /api/v1/live`: a real WebSocket client against the real server.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, error_code, fixture_jpeg, spawn_app, spawn_app_with};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Long enough for a frame through the detector on a busy machine.
const WAIT: Duration = Duration::from_secs(60);

async fn connect(app: &TestApp) -> Socket {
    let url = format!("ws://{}/api/v1/live", app.addr);
    let (socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    socket
}

/// The next text message as JSON, skipping pings.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a valid message");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

/// Authenticates and waits for `ready`.
async fn live_session(app: &TestApp, token: &str) -> Socket {
    let mut socket = connect(app).await;
    let auth = json!({"type": "auth", "token": token}).to_string();
    socket.send(Message::text(auth)).await.expect("send auth");
    assert_eq!(next_json(&mut socket).await, json!({"type": "ready"}));
    socket
}

/// The error message, then a close frame with `code`.
async fn assert_refused(socket: &mut Socket, code: u16, error: &str) {
    let message = next_json(socket).await;
    assert_eq!(message["type"], "error", "{message}");
    assert_eq!(message["code"], error, "{message}");
    loop {
        match tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::from(code));
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame with {code}, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_frame_reaches_its_owner_live_and_no_one_else() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let (alice_device, alice_camera) = app.device(&alice, "Kitchen").await;
    let (_, bob_camera) = app.device(&bob, "Garage").await;
    let mut alice_live = live_session(&app, &alice).await;
    let mut bob_live = live_session(&app, &bob).await;

    let stored = app
        .post_frame(
            &alice_camera,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(stored.status(), StatusCode::CREATED);
    let stored: Value = stored.json().await.expect("frame JSON");

    let event = next_json(&mut alice_live).await;
    assert_eq!(event["type"], "frame");
    assert_eq!(event["frame_id"], stored["frame_id"]);
    assert_eq!(event["device_id"], alice_device.as_str());
    assert_eq!(event["device_name"], "Kitchen");
    assert_eq!(event["captured_at"], "2026-11-23T10:00:00Z");
    assert_eq!(event["detections"], stored["detections"]);
    assert!(
        event["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .any(|d| d["label"] == "cup")
    );

    // A resend is not a new frame; Bob's own frame is the first he hears of.
    let resent = app
        .post_frame(
            &alice_camera,
            1,
            "2026-11-23T10:00:00Z",
            fixture_jpeg("coffee.png"),
        )
        .await;
    assert_eq!(resent.status(), StatusCode::OK);
    let bobs = app
        .post_frame(
            &bob_camera,
            1,
            "2026-11-23T10:01:00Z",
            fixture_jpeg("dog.jpg"),
        )
        .await;
    assert_eq!(bobs.status(), StatusCode::CREATED);
    let event = next_json(&mut bob_live).await;
    assert_eq!(event["device_name"], "Garage");
    let alices_next = app
        .post_frame(
            &alice_camera,
            2,
            "2026-11-23T10:02:00Z",
            fixture_jpeg("chelsea.png"),
        )
        .await;
    assert_eq!(alices_next.status(), StatusCode::CREATED);
    let event = next_json(&mut alice_live).await;
    assert_eq!(event["device_name"], "Kitchen", "alice got {event}");
    assert_eq!(
        event["captured_at"], "2026-11-23T10:02:00Z",
        "the resend was sent again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_or_message_is_refused_and_closed() {
    let app = spawn_app().await;
    let user = app.user("carol").await;
    let (_, camera) = app.device(&user, "Porch").await;

    let mut socket = connect(&app).await;
    let auth = json!({"type": "auth", "token": "not-a-token"}).to_string();
    socket.send(Message::text(auth)).await.expect("send");
    assert_refused(&mut socket, 4401, "unauthorized").await;

    // A device token is not a user token.
    let mut socket = connect(&app).await;
    let auth = json!({"type": "auth", "token": camera}).to_string();
    socket.send(Message::text(auth)).await.expect("send");
    assert_refused(&mut socket, 4401, "unauthorized").await;

    let mut socket = connect(&app).await;
    socket.send(Message::text("hello")).await.expect("send");
    assert_refused(&mut socket, 4400, "bad_request").await;

    // A logged-out token is refused.
    let logout = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let mut socket = connect(&app).await;
    let auth = json!({"type": "auth", "token": user}).to_string();
    socket.send(Message::text(auth)).await.expect("send");
    assert_refused(&mut socket, 4401, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_and_logging_out_close_the_socket() {
    let app = spawn_app_with(|config| {
        config.live.auth_timeout_secs = 1;
        config.live.ping_interval_secs = 1;
    })
    .await;
    let user = app.user("dave").await;

    // No auth message within the timeout.
    let mut silent = connect(&app).await;
    assert_refused(&mut silent, 4401, "unauthorized").await;

    // Logging out everywhere ends the session at the next check.
    let mut socket = live_session(&app, &user).await;
    let out = app
        .client
        .post(app.url("/api/v1/auth/logout-all"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("logout-all");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_refused(&mut socket, 4401, "unauthorized").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_get_is_told_to_upgrade() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/live"))
        .send()
        .await
        .expect("GET /live");
    assert_eq!(
        error_code(response, StatusCode::UPGRADE_REQUIRED).await,
        "upgrade_required"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_has_at_most_live_max_sockets_per_user_open() {
    let app = spawn_app_with(|config| config.live.max_sockets_per_user = 2).await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let first = live_session(&app, &alice).await;
    let _second = live_session(&app, &alice).await;

    let mut third = connect(&app).await;
    let auth = json!({"type": "auth", "token": alice}).to_string();
    third.send(Message::text(auth)).await.expect("send auth");
    assert_refused(&mut third, 4429, "too_many_sockets").await;

    // Another user is not affected.
    let _bob = live_session(&app, &bob).await;

    // Once one of Alice's sockets is gone, she may open another.
    drop(first);
    let reopened = async {
        loop {
            let mut socket = connect(&app).await;
            let auth = json!({"type": "auth", "token": alice}).to_string();
            socket.send(Message::text(auth)).await.expect("send auth");
            if next_json(&mut socket).await == json!({"type": "ready"}) {
                return socket;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, reopened)
        .await
        .expect("room for a new socket after one closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_waiting_to_authenticate_are_capped_at_live_max_pending() {
    let app = spawn_app_with(|config| {
        config.live.max_pending = 2;
        config.live.auth_timeout_secs = 600;
    })
    .await;
    let user = app.user("erin").await;
    let mut waiting = [connect(&app).await, connect(&app).await];

    let url = format!("ws://{}/api/v1/live", app.addr);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("expected 503, got {other:?}"),
    }

    // One authenticates: its place is free again.
    let auth = json!({"type": "auth", "token": user}).to_string();
    waiting[0]
        .send(Message::text(auth))
        .await
        .expect("send auth");
    assert_eq!(next_json(&mut waiting[0]).await, json!({"type": "ready"}));
    let _third = connect(&app).await;
}
