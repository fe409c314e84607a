//! `POST /auth/register`, `POST /auth/login`.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiJson;
use super::{AppState, HttpLimits};

pub(super) fn router(limits: &HttpLimits) -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
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
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<Value>, ApiError> {
    let token = state.accounts.login(&body.username, &body.password).await?;
    Ok(Json(json!({
        "access_token": token.token,
        "token_type": "bearer",
        "expires_in": token.expires_in_secs,
    })))
}
