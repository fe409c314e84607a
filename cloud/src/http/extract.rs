//! Extractors whose rejections use the API's error shape, and the bearer
//! token extractors for users and devices.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::auth::Session;
use crate::state::AppState;
use crate::store::DeviceRecord;

/// `axum::Json` with JSON-shaped rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(super) struct ApiJson<T>(pub T);

/// `axum::extract::Query` with JSON-shaped rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(super) struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with JSON-shaped rejections.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub(super) struct ApiPath<T>(pub T);

/// The user session behind `Authorization: Bearer <user token>`.
pub(super) struct CurrentUser(pub Session);

/// The device behind `Authorization: Bearer <device token>`.
pub(super) struct CurrentDevice(pub DeviceRecord);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Ok(CurrentUser(state.accounts.authenticate_user(token).await?))
    }
}

impl FromRequestParts<AppState> for CurrentDevice {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Ok(CurrentDevice(
            state.accounts.authenticate_device(token).await?,
        ))
    }
}

/// Tokens are ASCII and a few hundred bytes; anything far larger is refused
/// before any parsing.
const MAX_TOKEN_BYTES: usize = 4096;

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(ApiError::unauthorized)?;
    let value = value.to_str().map_err(|_| ApiError::unauthorized())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::unauthorized());
    }
    Ok(token)
}
