//! `POST /frames` (device ingest), `GET /frames/{id}`, `GET /frames/{id}/image`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use lastseen_shared::{Detection, DeviceId, FrameId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiPath, ApiQuery, CurrentDevice, CurrentUser};
use super::{HttpConfig, HttpLimits};
use crate::auth::Session;
use crate::ingest::{FrameMeta, IngestOutcome, meta};
use crate::metrics::{FrameOutcome, Transport};
use crate::query::ImageOptions;
use crate::state::AppState;
use crate::store::StoredFrame;

const SEQ_HEADER: &str = "x-frame-seq";
const CAPTURED_AT_HEADER: &str = "x-captured-at";

pub(super) fn router(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest).layer(DefaultBodyLimit::max(limits.max_frame_bytes)))
        .routes(routes!(frame))
        .routes(routes!(image))
        .routes(routes!(highest_seq))
}

/// A whole JPEG image, as the raw body (not JSON).
// Only named in the API description: the handlers take and give the bytes.
#[derive(ToSchema)]
#[schema(value_type = String, content_media_type = "image/jpeg")]
#[allow(dead_code, reason = "a schema only; never constructed")]
struct Jpeg(Vec<u8>);

/// What was stored for a frame (or, for a resend, what had been stored).
#[derive(Serialize, ToSchema)]
struct FrameAccepted {
    frame_id: FrameId,
    /// The device's sequence number, as sent in `X-Frame-Seq`.
    seq: u64,
    /// `X-Captured-At`, in UTC.
    captured_at: DateTime<Utc>,
    /// In score order, highest first.
    detections: Vec<Detection>,
    /// `captured_at` was further than `clock_skew_flag_secs` from the time
    /// the cloud received the frame: the device clock is probably wrong (or
    /// the frame waited that long in its spool). Retention goes by
    /// `received_at`, so such a frame is kept as long as any other.
    clock_skewed: bool,
}

/// Where the calling device's seqs stand in the cloud.
#[derive(Serialize, ToSchema)]
struct SeqState {
    /// The highest seq stored for the device; `null` before its first frame.
    /// The device's next frames must have higher seqs.
    highest_seq: Option<u64>,
}

/// One stored frame with its detections.
#[derive(Serialize, ToSchema)]
struct FrameView {
    id: FrameId,
    device_id: DeviceId,
    device_name: String,
    seq: u64,
    captured_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    /// Image width in pixels.
    width: u32,
    /// Image height in pixels.
    height: u32,
    /// Size of the stored JPEG.
    bytes: u64,
    /// `GET` this for the JPEG (path under the same host).
    #[schema(examples("/api/v1/frames/0196f1c4-7a10-7c3e-9d5a-2b1e8f0a4c11/image"))]
    image_url: String,
    /// In score order, highest first.
    detections: Vec<Detection>,
    /// `captured_at` was further than `clock_skew_flag_secs` from
    /// `received_at`: the device clock is probably wrong (or the frame waited
    /// that long in its spool). Retention goes by `received_at`.
    clock_skewed: bool,
}

/// Sends one camera frame (device token).
///
/// The body is the whole JPEG. A 2xx means the frame is persisted, so the
/// device may delete its copy. The same frame (same `X-Captured-At`, same
/// image) sent again with the same `X-Frame-Seq` gets 200 with the stored
/// result and is never detected or stored twice. Another frame under a
/// stored `X-Frame-Seq` gets 409 `seq_conflict` and is not stored: the
/// device sends it again under a seq above `GET /device/seq`.
#[utoipa::path(
    post,
    path = "/frames",
    tag = "frames",
    operation_id = "send_frame",
    security(("device_token" = [])),
    params(
        ("X-Frame-Seq" = u64, Header, description = "The device's sequence number: a decimal integer from 0 to 2^63−1 that increases with every frame and is kept across restarts.", maximum = 9_223_372_036_854_775_807_u64, example = 42),
        ("X-Captured-At" = DateTime<Utc>, Header, description = "When the frame was taken: RFC 3339 with any offset, stored as UTC; up to 24 hours into the future is accepted.", example = "2026-11-23T10:00:00Z"),
    ),
    request_body(description = "The frame as a whole JPEG (`Content-Type: image/jpeg`).", content = inline(Jpeg), content_type = "image/jpeg"),
    responses(
        (status = 201, description = "Stored now, with its detections.", body = FrameAccepted),
        (status = 200, description = "A resend of a stored `(device, seq)`: the stored result, unchanged.", body = FrameAccepted),
        (status = 400, description = "`invalid_frame_metadata` (bad `X-Frame-Seq` or `X-Captured-At`) or `bad_request` (a header missing or not ASCII).", body = ErrorBody),
        super::openapi::DeviceTokenRefused,
        (status = 409, description = "`seq_conflict`: the device stored another frame (another `X-Captured-At` or image) under this `X-Frame-Seq`; nothing is stored. Keep the frame and send it again under a seq above `GET /device/seq`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large` (body over the limit) or `image_too_large` (too many pixels).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `Content-Type: image/jpeg`, or the body is not a JPEG.", body = ErrorBody),
        (status = 422, description = "`unprocessable_image`: a truncated or corrupt JPEG.", body = ErrorBody),
        (status = 503, description = "`overloaded`: the detection queue is full, or this device or its account sends more image pixels per second than its share (`admit_*` settings); keep the frame and send it again after `Retry-After`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before sending again."))),
        (status = 507, description = "`quota_exceeded`: the account's images would go past `user_quota_bytes`; nothing is stored, keep the frame and send it again later.", body = ErrorBody),
    )
)]
// The token and the headers are checked before the body is read: a refused
// request costs no body buffer, and with `Expect: 100-continue` the
// device never gets the 100 and never sends the body. The listener then
// closes the connection after the answer; what the device still sends is
// read and dropped (not kept), so it reads the 401 instead of a broken pipe
// (`serve::Drain`).
async fn ingest(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<HttpLimits>>,
    device: Result<CurrentDevice, ApiError>,
    headers: HeaderMap,
    body: Request,
) -> Result<(StatusCode, Json<FrameAccepted>), ApiError> {
    let (CurrentDevice(device), frame_meta, body) =
        match receive(&state, device, &headers, body).await {
            Ok(frame) => frame,
            Err(error) => {
                // Refused before ingest (token, headers, body): counted here;
                // `ingest_counted` counts the rest.
                let outcome = if error.status().is_client_error() {
                    FrameOutcome::Rejected(error.code())
                } else {
                    FrameOutcome::Dropped(error.code())
                };
                state.metrics.frame(Transport::Http, outcome);
                return Err(error);
            }
        };
    let outcome = state
        .ingest
        .ingest_counted(&state.metrics, Transport::Http, &device, frame_meta, body)
        .await
        .map_err(|error| {
            // Every 503 here means "keep the frame and send it again later".
            let error = ApiError::from(error);
            if error.status() == StatusCode::SERVICE_UNAVAILABLE
                && error.retry_after_secs().is_none()
            {
                error.with_retry_after(limits.config.retry_after_secs)
            } else {
                error
            }
        })?;
    let (status, stored) = match outcome {
        IngestOutcome::Stored(stored) => (StatusCode::CREATED, stored),
        IngestOutcome::Resent(stored) => (StatusCode::OK, stored),
    };
    Ok((
        status,
        Json(FrameAccepted {
            frame_id: stored.frame.id,
            seq: stored.frame.seq,
            captured_at: stored.frame.captured_at,
            detections: stored.detections,
            clock_skewed: stored.frame.clock_skewed,
        }),
    ))
}

/// The device, the frame's headers and its body, checked in that order.
async fn receive(
    state: &AppState,
    device: Result<CurrentDevice, ApiError>,
    headers: &HeaderMap,
    body: Request,
) -> Result<(CurrentDevice, FrameMeta, Bytes), ApiError> {
    let device = device?;
    require_jpeg_content_type(headers)?;
    let frame_meta = FrameMeta {
        seq: meta::parse_seq(header_text(headers, SEQ_HEADER)?)?,
        captured_at: meta::parse_captured_at(
            header_text(headers, CAPTURED_AT_HEADER)?,
            Utc::now(),
        )?,
    };
    // Within `max_frame_bytes` (the route's DefaultBodyLimit).
    let body = Bytes::from_request(body, state).await?;
    Ok((device, frame_meta, body))
}

/// The calling device's highest stored seq (device token).
///
/// An agent asks at start and after a `seq_conflict`, and numbers its next
/// frames above it: a reflashed device, a restored backup or an emptied
/// spool then never sends new frames under seqs the cloud already stored.
#[utoipa::path(
    get,
    path = "/device/seq",
    tag = "frames",
    operation_id = "get_own_seq",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The device's highest stored seq.", body = SeqState),
        super::openapi::DeviceTokenRefused,
        (status = 503, description = "`storage_unavailable`: ask again later.", body = ErrorBody),
    )
)]
async fn highest_seq(
    State(state): State<AppState>,
    CurrentDevice(device): CurrentDevice,
) -> Result<Json<SeqState>, ApiError> {
    let highest_seq = state.ingest.highest_seq(device.id).await?;
    Ok(Json(SeqState { highest_seq }))
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

/// Shows one frame with its detections.
#[utoipa::path(
    get,
    path = "/frames/{id}",
    tag = "frames",
    operation_id = "get_frame",
    security(("user_token" = [])),
    params(("id" = FrameId, Path, description = "The frame id.")),
    responses(
        (status = 200, description = "The frame.", body = FrameView),
        (status = 400, description = "`bad_request`: the id is not a UUID.", body = ErrorBody),
        super::openapi::UserTokenRefused,
        (status = 404, description = "`not_found`: no such frame on the user's devices.", body = ErrorBody),
    )
)]
async fn frame(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<FrameView>, ApiError> {
    let frame = state.sightings.frame(owner, parse_frame_id(&id)?).await?;
    Ok(Json(frame_view(frame)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ImageParams {
    /// `true` for a copy with the boxes and labels drawn on it.
    #[serde(default)]
    #[param(default = false)]
    boxes: bool,
    /// Shrink to this many pixels wide, keeping the aspect ratio (a
    /// thumbnail; never enlarged). From 1 to `max_thumbnail_width`.
    #[param(minimum = 1, example = 320)]
    width: Option<u32>,
}

/// Downloads a frame's JPEG.
#[utoipa::path(
    get,
    path = "/frames/{id}/image",
    tag = "frames",
    operation_id = "get_frame_image",
    security(("user_token" = [])),
    params(("id" = FrameId, Path, description = "The frame id."), ImageParams),
    responses(
        (status = 200, description = "The JPEG as sent, or with `boxes=true` a copy with the detections drawn on it, and with `width` shrunk to that width.", body = inline(Jpeg), content_type = "image/jpeg"),
        (status = 400, description = "`bad_request`: the id is not a UUID, `width` is 0 or above `max_thumbnail_width`, or a bad or unknown query parameter.", body = ErrorBody),
        super::openapi::UserTokenRefused,
        (status = 404, description = "`not_found`: no such frame on the user's devices.", body = ErrorBody),
        (status = 503, description = "`overloaded`: more drawn or shrunk copies asked at once than `render_max_concurrent`, for longer than `render_wait_ms`.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
    )
)]
async fn image(
    State(state): State<AppState>,
    CurrentUser(Session { user: owner, .. }): CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ImageParams>,
) -> Result<Response, ApiError> {
    let jpeg = state
        .sightings
        .image(
            owner,
            parse_frame_id(&id)?,
            ImageOptions {
                boxes: params.boxes,
                width: params.width,
            },
        )
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

fn frame_view(stored: StoredFrame) -> FrameView {
    let frame = stored.frame;
    FrameView {
        id: frame.id,
        device_id: frame.device,
        device_name: frame.device_name,
        seq: frame.seq,
        captured_at: frame.captured_at,
        received_at: frame.received_at,
        width: frame.width,
        height: frame.height,
        bytes: frame.bytes,
        image_url: image_url(frame.id),
        detections: stored.detections,
        clock_skewed: frame.clock_skewed,
    }
}
