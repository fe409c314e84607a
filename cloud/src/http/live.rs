//! `GET /live`: a WebSocket carrying each new frame of the caller's devices.
//!
//! Browsers cannot set `Authorization` on a WebSocket, so the first message
//! from the client authenticates: `{"type":"auth","token":"<user token>"}`,
//! within `live_auth_timeout_secs`. The server then sends
//! `{"type":"ready"}`, one `{"type":"frame",...}` per new frame, and
//! `{"type":"missed","count":n}` when the client fell behind. A refused or
//! ended session gets `{"type":"error","code","message"}` and close code
//! [`CLOSE_UNAUTHORIZED`]. Pings go out every `live_ping_interval_secs`, and
//! the session is checked again each time, so logging out closes the socket.
//! Bounds: `live_max_pending` sockets waiting for their `auth` message (one
//! more handshake gets 503), `live_max_sockets_per_user` open sockets per user
//! (one more is closed with [`CLOSE_TOO_MANY`]), and a message the browser
//! does not take within `live_send_timeout_secs` closes its socket.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::HttpLimits;
use super::error::{ApiError, ErrorBody};
use crate::live::{Handshake, LiveEvent, LiveFrame};
use crate::state::AppState;

/// Close code for a missing, invalid, expired or logged-out token (private range).
pub(crate) const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a first message that is not an `auth` message.
pub(crate) const CLOSE_BAD_REQUEST: u16 = 4400;
/// Close code for a user who already has `live_max_sockets_per_user` open.
pub(crate) const CLOSE_TOO_MANY: u16 = 4429;
/// The client only ever sends its `auth` message: a token is a few hundred bytes.
const MAX_CLIENT_MESSAGE_BYTES: usize = 16 * 1024;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(live))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Auth { token: String },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ServerMessage<'a> {
    Ready,
    Frame(&'a LiveFrame),
    Missed {
        count: u64,
    },
    Error {
        code: &'static str,
        message: &'a str,
    },
}

/// Streams new frames of the caller's devices (WebSocket).
///
/// Connect with a WebSocket handshake, then send
/// `{"type":"auth","token":"<user token>"}` as the first message. The server
/// answers `{"type":"ready"}`, then sends
/// `{"type":"frame","frame_id","device_id","device_name","captured_at","detections"}`
/// for every frame stored from then on (resends are not repeated), and
/// `{"type":"missed","count"}` when the client was too slow and frames were
/// skipped. A bad, expired or logged-out token gets
/// `{"type":"error","code":"unauthorized","message"}` and close code 4401;
/// a first message that is not `auth` gets close code 4400, and a user who
/// already has `live_max_sockets_per_user` sockets open gets
/// `{"type":"error","code":"too_many_sockets"}` and close code 4429.
#[utoipa::path(
    get,
    path = "/live",
    tag = "live",
    operation_id = "live",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol; the messages are described above."),
        (status = 426, description = "`upgrade_required`: the request was not a WebSocket handshake.", body = ErrorBody),
        (status = 503, description = "`overloaded`: too many live sockets are waiting to authenticate; try again after `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    )
)]
async fn live(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<HttpLimits>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            "upgrade_required",
            format!("GET /live is a WebSocket: connect with a WebSocket handshake ({rejection})"),
        )
    })?;
    let handshake = state
        .live
        .try_handshake()
        .map_err(|error| ApiError::from(error).with_retry_after(limits.config.retry_after_secs))?;
    Ok(upgrade
        .max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| session(state, socket, handshake)))
}

async fn session(state: AppState, socket: WebSocket, handshake: Handshake) {
    let timeout = state.live.config().send_timeout();
    let mut socket = Socket { socket, timeout };
    let first = tokio::time::timeout(
        state.live.config().auth_timeout(),
        first_text(&mut socket.socket),
    )
    .await;
    let token = match first {
        Ok(Some(text)) => match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Auth { token }) => token,
            Err(_) => {
                let message = r#"the first message must be {"type":"auth","token":"..."}"#;
                refuse(socket, CLOSE_BAD_REQUEST, "bad_request", message).await;
                return;
            }
        },
        Ok(None) => return,
        Err(_) => {
            let message = "no auth message in time";
            refuse(socket, CLOSE_UNAUTHORIZED, "unauthorized", message).await;
            return;
        }
    };
    let user = match state.accounts.authenticate_user(&token).await {
        Ok(session) => session.user,
        Err(_) => {
            let message = "missing, invalid or expired token";
            refuse(socket, CLOSE_UNAUTHORIZED, "unauthorized", message).await;
            return;
        }
    };
    drop(handshake);
    let mut subscription = match state.live.try_subscribe(user) {
        Ok(subscription) => subscription,
        Err(error) => {
            let error = ApiError::from(error);
            refuse(socket, CLOSE_TOO_MANY, error.code(), error.message()).await;
            return;
        }
    };
    if socket.send(&ServerMessage::Ready).await.is_err() {
        return;
    }
    let period = state.live.config().ping_interval();
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            event = subscription.next() => {
                let sent = match event {
                    LiveEvent::Frame(frame) => socket.send(&ServerMessage::Frame(&frame)).await,
                    LiveEvent::Missed(count) => {
                        let total = state.live.missed();
                        tracing::warn!(%user, count, total, "a live client fell behind and missed frames");
                        socket.send(&ServerMessage::Missed { count }).await
                    }
                };
                if sent.is_err() {
                    return;
                }
            }
            incoming = socket.socket.recv() => match incoming {
                // Pongs and anything else the client says are ignored; axum answers pings.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = keepalive.tick() => {
                if state.accounts.authenticate_user(&token).await.is_err() {
                    let message = "the session has ended; sign in again";
                    refuse(socket, CLOSE_UNAUTHORIZED, "unauthorized", message).await;
                    return;
                }
                if socket.message(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The first text message, skipping control frames; `None` when the client left.
async fn first_text(socket: &mut WebSocket) -> Option<Utf8Bytes> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => return Some(text),
            Ok(Message::Binary(_)) => return Some(Utf8Bytes::default()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
        }
    }
}

/// The socket, where every send must complete within `live_send_timeout_secs`:
/// a browser that stops reading cannot hold the session (and its buffers)
/// forever. An error means the session is over; dropping the socket closes it.
struct Socket {
    socket: WebSocket,
    timeout: std::time::Duration,
}

impl Socket {
    async fn send(&mut self, message: &ServerMessage<'_>) -> Result<(), axum::Error> {
        let text = serde_json::to_string(message).map_err(axum::Error::new)?;
        self.message(Message::Text(text.into())).await
    }

    async fn message(&mut self, message: Message) -> Result<(), axum::Error> {
        tokio::time::timeout(self.timeout, self.socket.send(message))
            .await
            .map_err(axum::Error::new)?
    }
}

/// Tells the client why, then closes with `code`.
async fn refuse(mut socket: Socket, code: u16, error: &'static str, message: &str) {
    let _ = socket
        .send(&ServerMessage::Error {
            code: error,
            message,
        })
        .await;
    let _ = socket
        .message(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(error),
        })))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_auth_message_with_a_token_is_accepted() {
        let auth = serde_json::from_str::<ClientMessage>(r#"{"type":"auth","token":"abc"}"#);
        assert!(matches!(auth, Ok(ClientMessage::Auth { token }) if token == "abc"));
        for bad in [
            r#"{"type":"auth"}"#,
            r#"{"type":"subscribe","token":"abc"}"#,
            r#"{"token":"abc"}"#,
            "abc",
            "",
        ] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_messages_carry_their_type() {
        let missed = serde_json::to_value(ServerMessage::Missed { count: 3 }).expect("json");
        assert_eq!(missed, serde_json::json!({"type": "missed", "count": 3}));
        let ready = serde_json::to_value(ServerMessage::Ready).expect("json");
        assert_eq!(ready, serde_json::json!({"type": "ready"}));
    }
}
