//! `GET /metrics`: Prometheus text, outside the versioned API.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;

use super::AppState;
use crate::metrics::Gauges;

pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (queue_depth, queue_capacity) = state.ingest.queue();
    let text = state.metrics.render(&Gauges {
        queue_depth,
        queue_capacity,
        detection_seconds: state.ingest.detection_latency(),
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
}
