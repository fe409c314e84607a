//! `GET /last-seen`, `GET /detections`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, Label};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{ApiQuery, CurrentUser};
use super::frames::image_url;
use crate::auth::Session;
use crate::query::DetectionFilter;
use crate::store::{DetectionRow, Sighting};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/last-seen", get(last_seen))
        .route("/detections", get(detections))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LastSeenParams {
    label: Option<String>,
}

async fn last_seen(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiQuery(params): ApiQuery<LastSeenParams>,
) -> Result<Json<Value>, ApiError> {
    match params.label {
        Some(label) => {
            let sighting = state
                .sightings
                .last_seen(owner, &parse_label(&label)?)
                .await?;
            Ok(Json(sighting_json(&sighting)))
        }
        None => {
            let all = state.sightings.last_seen_all(owner).await?;
            Ok(Json(
                json!({"items": all.iter().map(sighting_json).collect::<Vec<_>>()}),
            ))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectionParams {
    label: Option<String>,
    device: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn detections(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiQuery(params): ApiQuery<DetectionParams>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "items": page.items.iter().map(detection_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

fn parse_label(text: &str) -> Result<Label, ApiError> {
    Label::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::bad_request(format!("{name} must be an RFC 3339 timestamp")))
}

fn sighting_json(s: &Sighting) -> Value {
    json!({
        "label": s.label,
        "device_id": s.device,
        "device_name": s.device_name,
        "captured_at": s.captured_at,
        "frame_id": s.frame,
        "score": s.score,
        "box": s.bbox,
        "image_url": image_url(s.frame),
    })
}

fn detection_json(row: &DetectionRow) -> Value {
    json!({
        "id": row.id,
        "frame_id": row.frame,
        "device_id": row.device,
        "device_name": row.device_name,
        "captured_at": row.captured_at,
        "label": row.detection.label,
        "score": row.detection.score,
        "box": row.detection.bbox,
        "image_url": image_url(row.frame),
    })
}
