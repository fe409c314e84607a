//! `GET`, `PUT` and `DELETE /account/retention`: how long the account's
//! frames are kept.

use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::HttpConfig;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, CurrentUser};
use super::openapi::{JsonTooLarge, NotJson, UserTokenRefused};
use crate::retention::{LimitsSource, UserRetention};
use crate::state::AppState;
use crate::store::RetentionLimits;

pub(super) fn router(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_retention, set_retention, reset_retention))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

/// Where the limits come from.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Source {
    /// The server's configured defaults.
    Default,
    /// Set by the user with `PUT /account/retention`.
    User,
}

/// The retention that applies to the account's frames. The oldest frames
/// (rows and images) are deleted first, by a background task.
#[derive(Serialize, ToSchema)]
struct RetentionAnswer {
    /// Frames captured more than this many days ago are deleted; null keeps them.
    max_age_days: Option<u32>,
    /// The oldest frames are deleted while the account's images take more
    /// than this many bytes; null is no limit.
    max_bytes: Option<u64>,
    source: Source,
    /// Bytes the account's images take now.
    stored_bytes: u64,
}

/// The account's own limits. A missing or null field is "no limit" in that
/// dimension; each applies only where it is stricter than the server's.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetentionChange {
    /// At least 1.
    #[serde(default)]
    #[schema(minimum = 1, examples(30))]
    max_age_days: Option<u32>,
    /// At least 1, at most 2^63-1.
    #[serde(default)]
    #[schema(minimum = 1, examples(10_000_000_000u64))]
    max_bytes: Option<u64>,
}

fn answer(retention: UserRetention) -> Json<RetentionAnswer> {
    Json(RetentionAnswer {
        max_age_days: retention.limits.max_age_days,
        max_bytes: retention.limits.max_bytes,
        source: match retention.source {
            LimitsSource::Default => Source::Default,
            LimitsSource::User => Source::User,
        },
        stored_bytes: retention.stored_bytes,
    })
}

/// The retention that applies to the account now.
#[utoipa::path(
    get,
    path = "/account/retention",
    tag = "auth",
    operation_id = "get_retention",
    security(("user_token" = [])),
    responses(
        (status = 200, description = "The limits in force.", body = RetentionAnswer),
        UserTokenRefused,
    )
)]
async fn get_retention(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<Json<RetentionAnswer>, ApiError> {
    Ok(answer(state.retention.of_user(session.user).await?))
}

/// Sets the account's own retention; the server's limits stay upper bounds.
///
/// Takes effect at the next run of the maintenance task.
#[utoipa::path(
    put,
    path = "/account/retention",
    tag = "auth",
    operation_id = "set_retention",
    security(("user_token" = [])),
    request_body = RetentionChange,
    responses(
        (status = 200, description = "The limits in force from now on.", body = RetentionAnswer),
        (status = 400, description = "`bad_request` (malformed JSON or unknown field) or `invalid_retention` (a limit of 0 or too large).", body = ErrorBody),
        UserTokenRefused,
        JsonTooLarge,
        NotJson,
    )
)]
async fn set_retention(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<RetentionChange>,
) -> Result<Json<RetentionAnswer>, ApiError> {
    let limits = RetentionLimits {
        max_age_days: body.max_age_days,
        max_bytes: body.max_bytes,
    };
    Ok(answer(
        state
            .retention
            .set_for_user(session.user, Some(limits))
            .await?,
    ))
}

/// Goes back to the server's default retention.
#[utoipa::path(
    delete,
    path = "/account/retention",
    tag = "auth",
    operation_id = "reset_retention",
    security(("user_token" = [])),
    responses(
        (status = 200, description = "The defaults, in force from now on.", body = RetentionAnswer),
        UserTokenRefused,
    )
)]
async fn reset_retention(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<Json<RetentionAnswer>, ApiError> {
    Ok(answer(
        state.retention.set_for_user(session.user, None).await?,
    ))
}
