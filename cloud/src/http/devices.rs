//! `POST /devices`, `GET /devices`, `GET|PATCH|DELETE /devices/{id}`,
//! `POST /devices/{id}/rotate`, `POST /devices/{id}/revoke`.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, DeviceStatus, FrameId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::HttpConfig;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, ApiPath, CurrentUser};
use super::openapi::{JsonTooLarge, NotJson, UserTokenRefused};
use crate::devices::settings::DeviceOverview;
use crate::state::AppState;

pub(super) fn router(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, rename, remove))
        .routes(routes!(rotate))
        .routes(routes!(revoke))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

/// A new device.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewDeviceBody {
    #[schema(examples("Kitchen"))]
    name: String,
    /// What sort of device it is (`camera`, `pi`, `hololens`, ...); defaults to `camera`.
    kind: Option<String>,
}

/// The device's new name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RenameBody {
    name: String,
}

/// One of the user's devices.
#[derive(Serialize, ToSchema)]
struct DeviceView {
    id: DeviceId,
    name: String,
    /// What sort of device it is, e.g. `camera`.
    kind: String,
    created_at: DateTime<Utc>,
    /// When it was revoked; `null` while it may send frames.
    #[schema(required = true)]
    revoked_at: Option<DateTime<Utc>>,
    /// The last status the device reported (`state` is `offline` after its
    /// MQTT connection dropped), or `null` if it never reported one.
    #[schema(required = true)]
    status: Option<DeviceStatus>,
    /// When the cloud received `status`; `null` if it never did.
    #[schema(required = true)]
    last_status_at: Option<DateTime<Utc>>,
    /// The device's newest frame (highest `seq`), e.g. for a thumbnail with
    /// `GET /frames/{id}/image?width=`; `null` before its first frame.
    #[schema(required = true)]
    last_frame_id: Option<FrameId>,
}

/// The device just created, with its token.
#[derive(Serialize, ToSchema)]
struct CreatedDevice {
    id: DeviceId,
    name: String,
    kind: String,
    created_at: DateTime<Utc>,
    /// Always `null` for a new device.
    #[schema(required = true)]
    revoked_at: Option<DateTime<Utc>>,
    /// The device token, for `POST /frames`. It is shown only this once.
    token: String,
}

/// The user's devices.
#[derive(Serialize, ToSchema)]
struct DeviceList {
    items: Vec<DeviceView>,
}

/// A new device token.
#[derive(Serialize, ToSchema)]
struct RotatedToken {
    /// The device token; the old one has stopped working. It is shown only this once.
    token: String,
}

/// Creates a device and its token.
#[utoipa::path(
    post,
    path = "/devices",
    tag = "devices",
    operation_id = "create_device",
    security(("user_token" = [])),
    request_body = NewDeviceBody,
    responses(
        (status = 201, description = "Created. The token is shown only this once.", body = CreatedDevice),
        (status = 400, description = "`bad_request` (malformed JSON or unknown field), `invalid_name` or `invalid_kind`.", body = ErrorBody),
        UserTokenRefused,
        (status = 409, description = "`too_many_devices`.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
    )
)]
async fn create(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<NewDeviceBody>,
) -> Result<(StatusCode, Json<CreatedDevice>), ApiError> {
    let created = state
        .devices
        .create(session.user, &body.name, body.kind.as_deref())
        .await?;
    let device = created.device;
    Ok((
        StatusCode::CREATED,
        Json(CreatedDevice {
            id: device.id,
            name: device.name,
            kind: device.kind,
            created_at: device.created_at,
            revoked_at: device.revoked_at,
            token: created.token,
        }),
    ))
}

/// Lists the user's devices.
#[utoipa::path(
    get,
    path = "/devices",
    tag = "devices",
    operation_id = "list_devices",
    security(("user_token" = [])),
    responses(
        (status = 200, description = "The devices.", body = DeviceList),
        UserTokenRefused,
    )
)]
async fn list(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = state.devices.list(session.user).await?;
    let devices = state.control.overviews(session.user, devices).await?;
    Ok(Json(DeviceList {
        items: devices.into_iter().map(DeviceView::from).collect(),
    }))
}

/// Shows one device.
#[utoipa::path(
    get,
    path = "/devices/{id}",
    tag = "devices",
    operation_id = "get_device",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The device.", body = DeviceView),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = state.devices.get(session.user, parse_id(&id)?).await?;
    Ok(Json(state.control.overview(device).await?.into()))
}

/// Renames a device.
#[utoipa::path(
    patch,
    path = "/devices/{id}",
    tag = "devices",
    operation_id = "rename_device",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    request_body = RenameBody,
    responses(
        (status = 200, description = "The renamed device.", body = DeviceView),
        (status = 400, description = "`bad_request` (bad id, malformed JSON or unknown field) or `invalid_name`.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
    )
)]
async fn rename(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = state
        .devices
        .rename(session.user, parse_id(&id)?, &body.name)
        .await?;
    Ok(Json(state.control.overview(device).await?.into()))
}

/// Issues a new device token; the old one stops working at once.
#[utoipa::path(
    post,
    path = "/devices/{id}/rotate",
    tag = "devices",
    operation_id = "rotate_device_token",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The new token, shown only this once.", body = RotatedToken),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
async fn rotate(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RotatedToken>, ApiError> {
    let rotated = state
        .devices
        .rotate_token(session.user, parse_id(&id)?)
        .await?;
    Ok(Json(RotatedToken {
        token: rotated.token,
    }))
}

/// Revokes a device: it can no longer send, and its history stays.
#[utoipa::path(
    post,
    path = "/devices/{id}/revoke",
    tag = "devices",
    operation_id = "revoke_device",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    responses(
        (status = 200, description = "The device, with `revoked_at` set.", body = DeviceView),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let device = state.devices.revoke(session.user, parse_id(&id)?).await?;
    Ok(Json(state.control.overview(device).await?.into()))
}

/// Deletes a device with its frames, detections and images.
#[utoipa::path(
    delete,
    path = "/devices/{id}",
    tag = "devices",
    operation_id = "delete_device",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
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

impl From<DeviceOverview> for DeviceView {
    fn from(
        DeviceOverview {
            device,
            status,
            last_frame,
        }: DeviceOverview,
    ) -> Self {
        let (status, last_status_at) = match status {
            Some(reported) => (Some(reported.status), Some(reported.received_at)),
            None => (None, None),
        };
        DeviceView {
            id: device.id,
            name: device.name,
            kind: device.kind,
            created_at: device.created_at,
            revoked_at: device.revoked_at,
            status,
            last_status_at,
            last_frame_id: last_frame,
        }
    }
}
