//! `GET /devices/{id}/frames`: a device's stored frames in `seq` order, so a
//! client (the load tool's ledger) can check that every frame it was told
//! was stored is there exactly once.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, FrameId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, CurrentUser};
use super::openapi::UserTokenRefused;
use crate::state::AppState;
use crate::store::FrameRecord;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeviceFramesParams {
    /// Only frames with a larger `seq` (the `next_after_seq` of the previous page).
    after_seq: Option<u64>,
    /// Page size, from 1 to the configured `max_page_size`; 50 by default.
    #[param(minimum = 1, example = 500)]
    limit: Option<u32>,
}

/// One stored frame, as its device numbered it.
#[derive(Serialize, ToSchema)]
struct DeviceFrameView {
    id: FrameId,
    seq: u64,
    captured_at: DateTime<Utc>,
    /// When the cloud stored it.
    received_at: DateTime<Utc>,
    /// `captured_at` was further than `clock_skew_flag_secs` from
    /// `received_at` (a wrong device clock, or a long wait in the spool).
    clock_skewed: bool,
}

/// A page of a device's frames, lowest `seq` first.
#[derive(Serialize, ToSchema)]
struct DeviceFramesPage {
    items: Vec<DeviceFrameView>,
    /// Pass back as `after_seq` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_after_seq: Option<u64>,
}

/// Lists a device's stored frames in `seq` order.
#[utoipa::path(
    get,
    path = "/devices/{id}/frames",
    tag = "devices",
    operation_id = "list_device_frames",
    security(("user_token" = [])),
    params(("id" = DeviceId, Path, description = "The device id."), DeviceFramesParams),
    responses(
        (status = 200, description = "The frames, lowest `seq` first.", body = DeviceFramesPage),
        (status = 400, description = "`bad_request`: the id is not a UUID, a bad `after_seq` or `limit`, or an unknown query parameter.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`not_found`: no such device among the user's.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<DeviceFramesParams>,
) -> Result<Json<DeviceFramesPage>, ApiError> {
    let device = DeviceId::parse(&id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let page = state
        .sightings
        .device_frames(session.user, device, params.after_seq, params.limit)
        .await?;
    Ok(Json(DeviceFramesPage {
        items: page.items.into_iter().map(DeviceFrameView::from).collect(),
        next_after_seq: page.next_after_seq,
    }))
}

impl From<FrameRecord> for DeviceFrameView {
    fn from(frame: FrameRecord) -> Self {
        Self {
            id: frame.id,
            seq: frame.seq,
            captured_at: frame.captured_at,
            received_at: frame.received_at,
            clock_skewed: frame.clock_skewed,
        }
    }
}
