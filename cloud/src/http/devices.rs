//! `POST /devices`, `GET /devices`, `GET|PATCH|DELETE /devices/{id}`,
//! `POST /devices/{id}/rotate`, `POST /devices/{id}/revoke`.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use lastseen_shared::DeviceId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::{AppState, HttpLimits};
use crate::store::DeviceRecord;

pub(super) fn router(limits: &HttpLimits) -> Router<AppState> {
    Router::new()
        .route("/devices", post(create).get(list))
        .route("/devices/{id}", get(show).patch(rename).delete(remove))
        .route("/devices/{id}/rotate", post(rotate))
        .route("/devices/{id}/revoke", post(revoke))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDeviceBody {
    name: String,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = state
        .devices
        .create(session.user, &body.name, body.kind.as_deref())
        .await?;
    let mut view = device_json(&created.device);
    view["token"] = Value::String(created.token);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let devices = state.devices.list(session.user).await?;
    Ok(Json(
        json!({"items": devices.iter().map(device_json).collect::<Vec<_>>()}),
    ))
}

async fn show(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(device_json(
        &state.devices.get(session.user, parse_id(&id)?).await?,
    )))
}

async fn rename(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(device_json(
        &state
            .devices
            .rename(session.user, parse_id(&id)?, &body.name)
            .await?,
    )))
}

/// The old token stops working; the new one is shown this once.
async fn rotate(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let rotated = state
        .devices
        .rotate_token(session.user, parse_id(&id)?)
        .await?;
    Ok(Json(json!({"token": rotated.token})))
}

async fn revoke(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(device_json(
        &state.devices.revoke(session.user, parse_id(&id)?).await?,
    )))
}

async fn remove(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.devices.delete(session.user, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(text: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn device_json(device: &DeviceRecord) -> Value {
    json!({
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "created_at": device.created_at,
        "revoked_at": device.revoked_at,
    })
}
