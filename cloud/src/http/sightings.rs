//! `GET /last-seen`, `GET /detections`.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use lastseen_shared::{BBox, DeviceId, FrameId, Label};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiQuery, CurrentUser};
use super::frames::image_url;
use super::openapi::UserTokenRefused;
use crate::auth::Session;
use crate::query::DetectionFilter;
use crate::state::AppState;
use crate::store::{DetectionRow, Sighting};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(last_seen))
        .routes(routes!(detections))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct LastSeenParams {
    /// One label, e.g. `cup`. Without it the answer lists every label.
    #[param(value_type = Option<Label>)]
    label: Option<String>,
}

/// The newest sighting of one label on one of the user's devices.
#[derive(Serialize, ToSchema)]
struct SightingView {
    label: Label,
    device_id: DeviceId,
    device_name: String,
    captured_at: DateTime<Utc>,
    frame_id: FrameId,
    score: f32,
    #[serde(rename = "box")]
    bbox: BBox,
    /// `GET` this for the frame's JPEG (path under the same host).
    image_url: String,
}

/// The newest sighting of every label, newest first.
#[derive(Serialize, ToSchema)]
struct SightingList {
    items: Vec<SightingView>,
}

/// With `label`: that label's newest sighting. Without: one per label.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum LastSeenAnswer {
    One(SightingView),
    All(SightingList),
}

/// Where and when each object was last seen ("where is my cup?").
///
/// With `label`, the answer is that label's newest sighting (a
/// `SightingView`); without it, `{"items": [...]}` with one sighting per label,
/// newest first (a `SightingList`). `last_seen` only moves forward in
/// `captured_at`: a frame that arrives late never hides a newer sighting.
#[utoipa::path(
    get,
    path = "/last-seen",
    tag = "sightings",
    operation_id = "last_seen",
    security(("user_token" = [])),
    params(LastSeenParams),
    responses(
        (status = 200, description = "A `SightingView` with `label`, a `SightingList` without.", body = LastSeenAnswer),
        (status = 400, description = "`bad_request`: an invalid label or an unknown query parameter.", body = ErrorBody),
        UserTokenRefused,
        (status = 404, description = "`never_seen`: the label was never seen on the user's devices.", body = ErrorBody),
    )
)]
async fn last_seen(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiQuery(params): ApiQuery<LastSeenParams>,
) -> Result<Json<LastSeenAnswer>, ApiError> {
    match params.label {
        Some(label) => {
            let sighting = state
                .sightings
                .last_seen(owner, &parse_label(&label)?)
                .await?;
            Ok(Json(LastSeenAnswer::One(sighting.into())))
        }
        None => {
            let all = state.sightings.last_seen_all(owner).await?;
            Ok(Json(LastSeenAnswer::All(SightingList {
                items: all.into_iter().map(SightingView::from).collect(),
            })))
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DetectionParams {
    /// Only this label, e.g. `cup`.
    #[param(value_type = Option<Label>)]
    label: Option<String>,
    /// Only this device (its id).
    #[param(value_type = Option<DeviceId>)]
    device: Option<String>,
    /// Inclusive lower bound on `captured_at`, RFC 3339.
    #[param(value_type = Option<DateTime<Utc>>)]
    since: Option<String>,
    /// Exclusive upper bound on `captured_at`, RFC 3339.
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Page size, from 1 to the configured `max_page_size`; 50 by default.
    #[param(minimum = 1, example = 50)]
    limit: Option<u32>,
}

/// One detection on one of the user's frames.
#[derive(Serialize, ToSchema)]
struct DetectionView {
    /// The detection's own id, for ordering.
    id: i64,
    frame_id: FrameId,
    device_id: DeviceId,
    device_name: String,
    captured_at: DateTime<Utc>,
    label: Label,
    score: f32,
    #[serde(rename = "box")]
    bbox: BBox,
    /// `GET` this for the frame's JPEG (path under the same host).
    image_url: String,
}

/// One page of detections, newest first.
#[derive(Serialize, ToSchema)]
struct DetectionPage {
    items: Vec<DetectionView>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Lists detections, newest first, one page at a time.
///
/// Ordered by `captured_at` and then `id`. Pass `next_cursor` back as
/// `cursor` to get the next page; it is `null` on the last page.
#[utoipa::path(
    get,
    path = "/detections",
    tag = "sightings",
    operation_id = "list_detections",
    security(("user_token" = [])),
    params(DetectionParams),
    responses(
        (status = 200, description = "One page.", body = DetectionPage),
        (status = 400, description = "`bad_request`: a bad label, device id, timestamp, cursor or limit, an empty range, or an unknown query parameter.", body = ErrorBody),
        UserTokenRefused,
    )
)]
async fn detections(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiQuery(params): ApiQuery<DetectionParams>,
) -> Result<Json<DetectionPage>, ApiError> {
    let filter = DetectionFilter {
        label: params.label.as_deref().map(parse_label).transpose()?,
        device: params
            .device
            .as_deref()
            .map(|d| DeviceId::parse(d).map_err(|e| ApiError::bad_request(e.to_string())))
            .transpose()?,
        since: params
            .since
            .as_deref()
            .map(|t| parse_time("since", t))
            .transpose()?,
        until: params
            .until
            .as_deref()
            .map(|t| parse_time("until", t))
            .transpose()?,
        cursor: params.cursor,
        limit: params.limit,
    };
    let page = state.sightings.detections(owner, filter).await?;
    Ok(Json(DetectionPage {
        items: page.items.into_iter().map(DetectionView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn parse_label(text: &str) -> Result<Label, ApiError> {
    Label::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::bad_request(format!("{name} must be an RFC 3339 timestamp")))
}

impl From<Sighting> for SightingView {
    fn from(s: Sighting) -> Self {
        SightingView {
            label: s.label,
            device_id: s.device,
            device_name: s.device_name,
            captured_at: s.captured_at,
            frame_id: s.frame,
            score: s.score,
            bbox: s.bbox,
            image_url: image_url(s.frame),
        }
    }
}

impl From<DetectionRow> for DetectionView {
    fn from(row: DetectionRow) -> Self {
        DetectionView {
            id: row.id,
            frame_id: row.frame,
            device_id: row.device,
            device_name: row.device_name,
            captured_at: row.captured_at,
            label: row.detection.label,
            score: row.detection.score,
            bbox: row.detection.bbox,
            image_url: image_url(row.frame),
        }
    }
}
