//! `POST /auth/register`, `/auth/login`, `/auth/logout`, `/auth/logout-all`,
//! `/auth/password`, and `DELETE /account`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use lastseen_shared::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, CurrentUser};
use super::openapi::{JsonTooLarge, NotJson, PasswordChecksBusy, UserTokenRefused};
use super::{HttpConfig, HttpLimits};
use crate::auth::AccessToken;
use crate::state::AppState;

pub(super) fn router(limits: &HttpConfig) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(change_password))
        .routes(routes!(delete_account))
        .layer(DefaultBodyLimit::max(limits.max_json_bytes))
}

/// A username and password, to log in.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Credentials {
    /// 3–32 characters: lowercase letters, digits, `.`, `_` and `-`.
    #[schema(examples("alice"))]
    username: String,
    /// At least 10 characters, and not one of the 1,000 most common passwords.
    #[schema(examples("a long password"))]
    password: String,
}

/// A new account's username and password, and in invite mode a code.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    /// 3–32 characters: lowercase letters, digits, `.`, `_` and `-`.
    #[schema(examples("alice"))]
    username: String,
    /// At least 10 characters, and not one of the 1,000 most common passwords.
    #[schema(examples("a long password"))]
    password: String,
    /// Required when `GET /auth/registration` says `invite`: a single-use
    /// code from the operator or from a user (`POST /account/invites`).
    /// Ignored in open mode.
    #[serde(default)]
    #[schema(examples("3f9c0a1e5b7d4c2a8e6f0b1d3c5a7e9f"))]
    invite: Option<String>,
}

/// The account just created.
#[derive(Serialize, ToSchema)]
struct Registered {
    id: UserId,
    username: String,
}

/// A user access token, to send as `Authorization: Bearer <access_token>`.
#[derive(Serialize, ToSchema)]
struct TokenAnswer {
    access_token: String,
    /// Always `bearer`.
    #[schema(value_type = String, examples("bearer"))]
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
}

/// Creates an account, if `registration` allows.
///
/// `GET /auth/registration` tells whether it is open, needs an invite code,
/// or is closed.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    operation_id = "register",
    request_body = NewAccount,
    responses(
        (status = 201, description = "Created; log in next.", body = Registered),
        (status = 403, description = "`registration_closed`: the operator creates accounts; or `invite_invalid`: in invite mode, the `invite` code is missing, unknown, expired or used (one answer for all four).", body = ErrorBody),
        (status = 400, description = "`bad_request` (malformed JSON or unknown field), `invalid_username`, `weak_password` or `common_password`.", body = ErrorBody),
        (status = 409, description = "`username_taken`.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
        (status = 429, description = "`too_many_attempts`: too many registrations from this client address.", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
        PasswordChecksBusy,
    )
)]
async fn register(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<HttpLimits>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewAccount>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let client = client_address(&limits, &headers, peer);
    let id = state
        .accounts
        .register(
            &body.username,
            &body.password,
            body.invite.as_deref(),
            &client,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id,
            username: body.username,
        }),
    ))
}

/// Exchanges a username and password for a user access token.
///
/// Repeated failures for one username or from one client address are
/// throttled with 429 and `Retry-After`.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in.", body = TokenAnswer),
        (status = 400, description = "`bad_request`: malformed JSON or unknown field.", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`: unknown username or wrong password.", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        JsonTooLarge,
        NotJson,
        (status = 429, description = "`too_many_attempts`: too many failed logins for this username and client, from this client, or for this username (backoff).", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))),
        PasswordChecksBusy,
    )
)]
async fn login(
    State(state): State<AppState>,
    Extension(limits): Extension<Arc<HttpLimits>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let client = client_address(&limits, &headers, peer);
    let token = state
        .accounts
        .login(&body.username, &body.password, &client)
        .await?;
    Ok(Json(token_answer(token)))
}

/// Ends this session: the token used for this request stops working at once.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    operation_id = "logout",
    security(("user_token" = [])),
    responses(
        (status = 204, description = "Logged out."),
        UserTokenRefused,
    )
)]
async fn logout(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session: all user tokens issued until now stop working.
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    tag = "auth",
    operation_id = "logout_all",
    security(("user_token" = [])),
    responses(
        (status = 204, description = "Every session ended."),
        UserTokenRefused,
    )
)]
async fn logout_all(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.logout_everywhere(session.user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The current password, to confirm, and the new one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    /// Same rules as at registration.
    new_password: String,
}

/// Changes the password.
///
/// Other sessions end; the answer carries a fresh token for this one.
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "auth",
    operation_id = "change_password",
    security(("user_token" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; use the fresh token from now on.", body = TokenAnswer),
        (status = 400, description = "`bad_request` (malformed JSON or unknown field), `weak_password` or `common_password`.", body = ErrorBody),
        UserTokenRefused,
        (status = 403, description = "`wrong_password`: the old password is wrong.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Json<TokenAnswer>, ApiError> {
    let token = state
        .accounts
        .change_password(session.user, &body.old_password, &body.new_password)
        .await?;
    Ok(Json(token_answer(token)))
}

/// The account's password, to confirm the deletion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AccountDeletion {
    password: String,
}

/// Deletes the account.
///
/// Removes the user's devices, frames, detections and images, and nothing of
/// anyone else's.
#[utoipa::path(
    delete,
    path = "/account",
    tag = "auth",
    operation_id = "delete_account",
    security(("user_token" = [])),
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "`bad_request`: malformed JSON or unknown field.", body = ErrorBody),
        UserTokenRefused,
        (status = 403, description = "`wrong_password`: the confirming password is wrong.", body = ErrorBody),
        JsonTooLarge,
        NotJson,
    )
)]
async fn delete_account(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
    ApiJson(body): ApiJson<AccountDeletion>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .delete_account(session.user, &body.password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn token_answer(token: AccessToken) -> TokenAnswer {
    TokenAnswer {
        access_token: token.token,
        token_type: "bearer",
        expires_in: token.expires_in_secs,
    }
}

fn client_address(limits: &HttpLimits, headers: &HeaderMap, peer: SocketAddr) -> String {
    super::client_ip::client_key(
        limits.config.client_ip_header.as_deref(),
        &limits.trusted_proxies,
        headers,
        peer,
    )
}
