//! The REST API under `/api/v1`: one `router()` per area, merged here.
//! Handlers parse, call the domain, and map the result; nothing else.

mod accounts;
pub mod client_ip;
mod config;
mod control;
mod device_frames;
mod devices;
pub mod error;
mod extract;
mod frames;
mod health;
mod live;
mod openapi;
mod registration;
mod retention;
mod sightings;

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

pub use config::{HttpConfig, HttpLimits};

use crate::state::AppState;
use error::ApiError;

pub fn router(state: AppState, config: &HttpConfig) -> Router {
    let cors = cors_layer(&config.cors_allowed_origins);
    let (api, document) = api(config).split_for_parts();
    api.layer(Extension(openapi::Published::new(&document)))
        .layer(Extension(Arc::new(config.limits())))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("referrer-policy", "no-referrer"))
        .layer(security_header("cache-control", "no-store"))
        .layer(cors)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error").into_response()
        }))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path())
        }))
}

/// Every route under `/api/v1`, with the OpenAPI document built from the
/// same `routes!` lists that register them.
fn api(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .merge(accounts::router(limits))
        .merge(devices::router(limits))
        .merge(device_frames::router())
        .merge(control::router(limits))
        .merge(frames::router(limits))
        .merge(sightings::router())
        .merge(retention::router(limits))
        .merge(registration::router())
        .merge(health::router())
        .merge(live::router())
        .merge(openapi::router());
    openapi::root().nest(openapi::PREFIX, api)
}

/// Off (no CORS headers at all) unless origins are configured.
fn cors_layer(origins: &[String]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::try_from(o.as_str()).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed(method: Method) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed here"),
    )
    .into_response()
}
