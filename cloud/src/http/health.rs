//! `GET /health`: 200 when the service can take frames.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// The service can take frames.
#[derive(Serialize, ToSchema)]
struct HealthAnswer {
    /// Always `ok`.
    #[schema(value_type = String, examples("ok"))]
    status: &'static str,
    queue: QueueState,
}

/// The detection queue.
#[derive(Serialize, ToSchema)]
struct QueueState {
    /// Frames waiting for detection now.
    depth: usize,
    /// Frames it holds before `POST /frames` answers 503.
    capacity: usize,
}

/// Says whether the service can take frames.
///
/// The detector is loaded before the server accepts requests, so a
/// reachable store is the remaining condition.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    operation_id = "health",
    responses(
        (status = 200, description = "Ready for frames.", body = HealthAnswer),
        (status = 503, description = "`unavailable`: the store is unreachable.", body = ErrorBody),
    )
)]
async fn health(State(state): State<AppState>) -> Result<Json<HealthAnswer>, ApiError> {
    if let Err(error) = state.store.ping().await {
        tracing::warn!(%error, "health check: store unreachable");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store is unreachable",
        ));
    }
    let (depth, capacity) = state.ingest.queue();
    Ok(Json(HealthAnswer {
        status: "ok",
        queue: QueueState { depth, capacity },
    }))
}
