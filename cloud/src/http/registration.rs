//! `GET /auth/registration` (who may register) and `POST /account/invites`
//! (a user's invite code for someone else).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::CurrentUser;
use super::openapi::UserTokenRefused;
use crate::auth::RegistrationMode;
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(registration))
        .routes(routes!(create_invite))
}

/// How accounts are made here.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Anyone may register.
    Open,
    /// `POST /auth/register` needs an `invite` code.
    Invite,
    /// Nobody may register; the operator creates accounts.
    Closed,
}

#[derive(Serialize, ToSchema)]
struct RegistrationAnswer {
    mode: Mode,
}

/// An invite code, shown only this once.
#[derive(Serialize, ToSchema)]
struct InviteAnswer {
    /// Pass it as `invite` to `POST /auth/register`; it admits one account.
    #[schema(examples("3f9c0a1e5b7d4c2a8e6f0b1d3c5a7e9f"))]
    code: String,
    /// The code admits nobody from this instant on.
    expires_at: DateTime<Utc>,
}

/// Whether registration is open, needs an invite code, or is closed.
///
/// The sign-up page asks this first: it shows an invite field, or no
/// sign-up at all.
#[utoipa::path(
    get,
    path = "/auth/registration",
    tag = "auth",
    operation_id = "registration_mode",
    responses(
        (status = 200, description = "The registration mode (`registration` in the configuration).", body = RegistrationAnswer),
    )
)]
async fn registration(State(state): State<AppState>) -> Json<RegistrationAnswer> {
    let mode = match state.accounts.registration_mode() {
        RegistrationMode::Open => Mode::Open,
        RegistrationMode::Invite => Mode::Invite,
        RegistrationMode::Closed => Mode::Closed,
    };
    Json(RegistrationAnswer { mode })
}

/// Makes an invite code for someone else to register with.
///
/// Only in invite mode. The code is single-use and expires after
/// `invite_ttl_days`; a user holds at most `max_invites_per_user` codes that
/// are neither used nor expired.
#[utoipa::path(
    post,
    path = "/account/invites",
    tag = "auth",
    operation_id = "create_invite",
    security(("user_token" = [])),
    responses(
        (status = 201, description = "Made; hand the code over. It is not shown again.", body = InviteAnswer),
        UserTokenRefused,
        (status = 403, description = "`invites_disabled`: registration is not in invite mode, or users may not make codes (`max_invites_per_user` = 0).", body = ErrorBody),
        (status = 409, description = "`too_many_invites`: the user holds `max_invites_per_user` unused codes already.", body = ErrorBody),
    )
)]
async fn create_invite(
    State(state): State<AppState>,
    CurrentUser(session): CurrentUser,
) -> Result<(StatusCode, Json<InviteAnswer>), ApiError> {
    let invite = state.accounts.invite_for(session.user).await?;
    Ok((
        StatusCode::CREATED,
        Json(InviteAnswer {
            code: invite.code,
            expires_at: invite.expires_at,
        }),
    ))
}
