//! Remote control: `GET|PUT /devices/{id}/settings` (user token), and for
//! agents on HTTPS `GET /device/settings` and `POST /device/status` (device token).

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use lastseen_shared::{DeviceId, DeviceStatus, GateSettings};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::HttpConfig;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, CurrentDevice, CurrentUser};
use super::openapi::{DeviceTokenRefused, JsonTooLarge, NotJson, UserTokenRefused};
use crate::state::AppState;

pub(super) fn router(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(settings, put_settings))
        .routes(routes!(own_settings))
        .routes(routes!(report_status))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

/// Shows a device's gate settings (the defaults until they are set).
#[utoipa::path(
    get,
    path = "/devices/{id}/settings",
    tag = "devices",
    operation_id = "get_device_settings",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The settings the device applies.", body = GateSettings),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
async fn settings(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<GateSettings>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(state.control.settings(session.user, id).await?))
}

/// Replaces a device's gate settings.
///
/// Fields left out take their defaults. With MQTT on, the settings are also
/// published, retained, on the device's config topic; HTTPS agents read them
/// with `GET /device/settings`.
#[utoipa::path(
    put,
    path = "/devices/{id}/settings",
    tag = "devices",
    operation_id = "put_device_settings",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    request_body = GateSettings,
    responses(
        (status = 200, description = "The stored settings.", body = GateSettings),
        (status = 400, description = "`bad_request` (bad id, malformed JSON or unknown field) or `invalid_settings` (a value out of range).", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GateSettings>,
) -> Result<Json<GateSettings>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(
        state.control.put_settings(session.user, id, body).await?,
    ))
}

/// The calling device's gate settings (device token), for agents on HTTPS.
#[utoipa::path(
    get,
    path = "/device/settings",
    tag = "devices",
    operation_id = "get_own_settings",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The settings to apply (the defaults until the owner sets them).", body = GateSettings),
        DeviceTokenRefused,
    )
)]
async fn own_settings(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
) -> Result<Json<GateSettings>, ApiError> {
    Ok(Json(state.control.current_settings(device.id).await?))
}

/// Reports the calling device's status (device token), for agents on HTTPS.
///
/// The owner sees the last one in the device's `status`.
#[utoipa::path(
    post,
    path = "/device/status",
    tag = "devices",
    operation_id = "report_status",
    security(("device_token" = [])),
    request_body = DeviceStatus,
    responses(
        (status = 204, description = "Recorded."),
        (status = 400, description = "`bad_request`: malformed JSON.", body = ErrorBody),
        DeviceTokenRefused,
        JsonTooLarge,
        NotJson,
    )
)]
async fn report_status(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
    ApiJson(status): ApiJson<DeviceStatus>,
) -> Result<StatusCode, ApiError> {
    state.control.report_status(device.id, status).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(text: &str) -> Result<DeviceId, ApiError> {
    DeviceId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}
