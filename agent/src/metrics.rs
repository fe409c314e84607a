//! The local `/metrics` endpoint (Prometheus text format).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Shutdown;
use crate::counters::{Counters, prometheus_text};
use crate::spool::SharedSpool;

#[derive(Clone)]
struct Sources {
    counters: Arc<Counters>,
    spool: Arc<SharedSpool>,
}

async fn metrics(State(sources): State<Sources>) -> impl IntoResponse {
    let gauge = sources.spool.gauge();
    let text = prometheus_text(
        &sources.counters,
        gauge.frames.load(Ordering::Relaxed),
        gauge.bytes.load(Ordering::Relaxed),
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

pub(crate) async fn serve(
    listener: TcpListener,
    counters: Arc<Counters>,
    spool: Arc<SharedSpool>,
    mut shutdown: Shutdown,
) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(Sources { counters, spool });
    let outcome = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(error) = outcome {
        tracing::error!(%error, "the metrics server failed");
    }
}
