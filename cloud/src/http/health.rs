//! `GET /health`: 200 when the service can take frames.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

/// The detector is loaded before the server accepts requests, so a
/// reachable store is the remaining condition.
async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if let Err(error) = state.store.ping().await {
        tracing::warn!(%error, "health check: store unreachable");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store is unreachable",
        ));
    }
    let (depth, capacity) = state.ingest.queue();
    Ok(Json(
        json!({"status": "ok", "queue": {"depth": depth, "capacity": capacity}}),
    ))
}
