//! `POST /frames` (device ingest), `GET /frames/{id}`, `GET /frames/{id}/image`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use lastseen_shared::FrameId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, CurrentDevice, CurrentUser};
use super::{AppState, HttpLimits};
use crate::auth::Session;
use crate::ingest::{FrameMeta, IngestOutcome, meta};
use crate::store::StoredFrame;

const SEQ_HEADER: &str = "x-frame-seq";
const CAPTURED_AT_HEADER: &str = "x-captured-at";

pub(super) fn router(limits: &HttpLimits) -> Router<AppState> {
    Router::new()
        .route(
            "/frames",
            post(ingest).layer(DefaultBodyLimit::max(limits.max_frame_bytes)),
        )
        .route("/frames/{id}", get(frame))
        .route("/frames/{id}/image", get(image))
}

/// The body is read (up to the limit) before any answer: answering while the
/// device is still uploading makes the kernel reset the connection, and the
/// device would see a broken pipe instead of the 401 or 415 that explains it.
async fn ingest(
    State(state): State<AppState>,
    device: Result<CurrentDevice, ApiError>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let CurrentDevice(device) = device?;
    require_jpeg_content_type(&headers)?;
    let frame_meta = FrameMeta {
        seq: meta::parse_seq(header_text(&headers, SEQ_HEADER)?)?,
        captured_at: meta::parse_captured_at(
            header_text(&headers, CAPTURED_AT_HEADER)?,
            Utc::now(),
        )?,
    };
    let body = body?;
    let outcome = state
        .ingest
        .ingest(&device, frame_meta, body)
        .await
        .map_err(|error| {
            // Every 503 here means "keep the frame and send it again later".
            let error = ApiError::from(error);
            if error.status() == StatusCode::SERVICE_UNAVAILABLE {
                error.with_retry_after(state.limits.retry_after_secs)
            } else {
                error
            }
        })?;
    let status = match outcome {
        IngestOutcome::Stored(_) => StatusCode::CREATED,
        IngestOutcome::Resent(_) => StatusCode::OK,
    };
    let frame = &outcome.frame().frame;
    Ok((
        status,
        Json(json!({
            "frame_id": frame.id,
            "seq": frame.seq,
            "captured_at": frame.captured_at,
            "detections": outcome.frame().detections,
        })),
    ))
}

fn require_jpeg_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("image/jpeg") {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(
            "send the frame as Content-Type: image/jpeg",
        ))
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| ApiError::bad_request(format!("the {name} header is required")))?
        .to_str()
        .map_err(|_| ApiError::bad_request(format!("the {name} header must be ASCII")))
}

fn parse_frame_id(text: &str) -> Result<FrameId, ApiError> {
    FrameId::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn frame(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let frame = state.sightings.frame(owner, parse_frame_id(&id)?).await?;
    Ok(Json(frame_json(&frame)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageParams {
    #[serde(default)]
    boxes: bool,
}

async fn image(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ImageParams>,
) -> Result<Response, ApiError> {
    let jpeg = state
        .sightings
        .image(owner, parse_frame_id(&id)?, params.boxes)
        .await?;
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        ),
    ];
    Ok((headers, jpeg).into_response())
}

pub(super) fn image_url(id: FrameId) -> String {
    format!("/api/v1/frames/{id}/image")
}

fn frame_json(stored: &StoredFrame) -> Value {
    let frame = &stored.frame;
    json!({
        "id": frame.id,
        "device_id": frame.device,
        "device_name": frame.device_name,
        "seq": frame.seq,
        "captured_at": frame.captured_at,
        "received_at": frame.received_at,
        "width": frame.width,
        "height": frame.height,
        "bytes": frame.bytes,
        "image_url": image_url(frame.id),
        "detections": stored.detections,
    })
}
