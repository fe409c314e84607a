//! `POST /devices`, `GET /devices`.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, CurrentUser};
use super::{AppState, HttpLimits};
use crate::store::DeviceRecord;

pub(super) fn router(limits: &HttpLimits) -> Router<AppState> {
    Router::new()
        .route("/devices", post(create).get(list))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDeviceBody {
    name: String,
}

async fn create(
    State(state): State<AppState>,
    CurrentUser(owner): CurrentUser,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = state.devices.create(owner, &body.name).await?;
    let mut view = device_json(&created.device);
    view["token"] = Value::String(created.token);
    Ok((StatusCode::CREATED, Json(view)))
}

async fn list(
    State(state): State<AppState>,
    CurrentUser(owner): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    let devices = state.devices.list(owner).await?;
    Ok(Json(
        json!({"items": devices.iter().map(device_json).collect::<Vec<_>>()}),
    ))
}

fn device_json(device: &DeviceRecord) -> Value {
    json!({"id": device.id, "name": device.name, "created_at": device.created_at})
}
