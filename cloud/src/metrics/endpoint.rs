//! `GET /metrics`: Prometheus text for scrapers, outside the versioned API
//! and its OpenAPI document (which describe the REST API only).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use super::Gauges;
use crate::http::AppState;

/// The metrics route, merged beside `http::router` by `run`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (queue_depth, queue_capacity) = state.ingest.queue();
    let text = state.metrics.render(&Gauges {
        queue_depth,
        queue_capacity,
        detection_seconds: state.ingest.detection_latency(),
        password_hashing: state.accounts.hashing_load(),
        renders: state.sightings.render_load(),
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
}
