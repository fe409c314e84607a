//! `POST /auth/register`, `/auth/login`, `/auth/logout`, `/auth/logout-all`,
//! `/auth/password`, and `DELETE /account`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, CurrentUser};
use super::{AppState, HttpLimits};
use crate::auth::AccessToken;

pub(super) fn router(limits: &HttpLimits) -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password", post(change_password))
        .route("/account", delete(delete_account))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = state
        .accounts
        .register(&body.username, &body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "username": body.username})),
    ))
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    let client = client_address(&state.limits, &headers, peer);
    let token = state
        .accounts
        .login(&body.username, &body.password, &client)
        .await?;
    Ok(Json(token_json(&token)))
}

async fn logout(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_all(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout_everywhere(session.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// Other sessions end; the answer carries a fresh token for this one.
async fn change_password(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<Value>, ApiError> {
    let token = state
        .accounts
        .change_password(session.user, &body.old_password, &body.new_password)
        .await?;
    Ok(Json(token_json(&token)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountDeletion {
    password: String,
}

async fn delete_account(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<AccountDeletion>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .delete_account(session.user, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn token_json(token: &AccessToken) -> Value {
    json!({"access_token": token.token, "token_type": "bearer", "expires_in": token.expires_in_secs})
}

/// The TCP peer, unless a trusted proxy's header is configured and present.
fn client_address(limits: &HttpLimits, headers: &HeaderMap, peer: SocketAddr) -> String {
    limits
        .client_ip_header
        .as_deref()
        .and_then(|name| headers.get(name))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(|value| value.trim().chars().take(64).collect())
        .unwrap_or_else(|| peer.ip().to_string())
}
