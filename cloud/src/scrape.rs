//! `GET /metrics`: Prometheus text for scrapers, outside the versioned API
//! and its OpenAPI document (which describe the REST API only), so outside
//! `http/` too, like the web page (`web/`). The counters are in `metrics/`.
//!
//! By default it is public on the API port, as the counters hold no user
//! data. `metrics_bind` moves it to an address of its own (`run` then leaves
//! it off the API port), and `metrics_token` makes it ask for
//! `Authorization: Bearer <metrics_token>` (401 without it).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lastseen_shared::{Problems, Secret};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;
use crate::metrics::Gauges;
use crate::state::AppState;

/// Where `/metrics` is served, and whether it asks for a token.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// When set, `/metrics` is served only on this address, not on `bind`.
    #[serde(rename = "metrics_bind")]
    pub bind: Option<SocketAddr>,
    /// When set, `/metrics` requires `Authorization: Bearer <metrics_token>`.
    #[serde(rename = "metrics_token")]
    pub token: Option<Secret>,
}

impl MetricsConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.token.as_ref().is_none_or(|t| t.expose().len() >= 16),
            "metrics_token must be at least 16 bytes",
        );
    }
}

/// The metrics route, merged beside `http::router` by `run` or served alone
/// on `metrics_bind`.
pub fn router(state: AppState, token: Option<Secret>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(Scrape { state, token })
}

#[derive(Clone)]
struct Scrape {
    state: AppState,
    token: Option<Secret>,
}

/// Whether `headers` carry `Authorization: Bearer <expected>`; the digests
/// are compared in full, so the time taken says nothing of the token.
fn authorized(headers: &HeaderMap, expected: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim());
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.expose().as_bytes());
    given
        .iter()
        .zip(expected.iter())
        .fold(0_u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}

async fn metrics(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    if let Some(token) = &scrape.token
        && !authorized(&headers, token)
    {
        return ApiError::unauthorized().into_response();
    }
    let state = scrape.state;
    let (queue_depth, queue_capacity) = state.ingest.queue();
    let text = state.metrics.render(&Gauges {
        queue_depth,
        queue_capacity,
        detection_seconds: state.ingest.detection_latency(),
        password_hashing: state.accounts.hashing_load(),
        renders: state.sightings.render_load(),
        thumbnail_cache: state.sightings.copy_cache_stats(),
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
