//! The one place where domain errors become HTTP responses.
//!
//! Every error has the shape `{"error": {"code": "...", "message": "..."}}`.
//! 4xx messages tell the client what to fix; 5xx are logged with their source
//! chain and answered with an opaque message, so no SQL, path or stack trace
//! ever reaches a client.

use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::devices::DeviceError;
use crate::devices::settings::ControlError;
use crate::ingest::{IngestError, IngestErrorKind, MetaError};
use crate::query::QueryError;
use crate::retention::RetentionError;

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"error": {"code": "not_found", "message": "not found"}})))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable `code` and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, snake_case; clients branch on this, e.g. `not_found`, `wrong_password`.
    pub code: &'static str,
    /// Human-readable; 4xx messages say what to fix, 5xx are opaque.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing, invalid or expired token",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// Logs the real cause; the client learns only that it was our fault.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        log_failure(error);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code clients branch on.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Used by the retry hint of the ingest path when the queue is full.
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    pub fn retry_after_secs(&self) -> Option<u32> {
        self.retry_after_secs
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        });
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        use crate::auth::PolicyError;
        match &error {
            AuthError::Policy(PolicyError::Username) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_username",
                error.to_string(),
            ),
            AuthError::Policy(PolicyError::PasswordLength) => {
                ApiError::new(StatusCode::BAD_REQUEST, "weak_password", error.to_string())
            }
            AuthError::Policy(PolicyError::CommonPassword) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "common_password",
                error.to_string(),
            ),
            AuthError::UsernameTaken => {
                ApiError::new(StatusCode::CONFLICT, "username_taken", error.to_string())
            }
            AuthError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                error.to_string(),
            ),
            // The token is fine; the password typed to confirm was not.
            AuthError::WrongPassword => {
                ApiError::new(StatusCode::FORBIDDEN, "wrong_password", error.to_string())
            }
            AuthError::Throttled { retry_after_secs } => {
                let secs = u32::try_from(*retry_after_secs).unwrap_or(u32::MAX);
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    error.to_string(),
                )
                .with_retry_after(secs)
            }
            AuthError::Busy { retry_after_secs } => {
                let secs = u32::try_from(*retry_after_secs).unwrap_or(u32::MAX);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    error.to_string(),
                )
                .with_retry_after(secs)
            }
            AuthError::InvalidToken => ApiError::unauthorized(),
            AuthError::RegistrationClosed => ApiError::new(
                StatusCode::FORBIDDEN,
                "registration_closed",
                error.to_string(),
            ),
            AuthError::InviteInvalid => {
                ApiError::new(StatusCode::FORBIDDEN, "invite_invalid", error.to_string())
            }
            AuthError::InvitesDisabled => {
                ApiError::new(StatusCode::FORBIDDEN, "invites_disabled", error.to_string())
            }
            AuthError::TooManyInvites(_) => {
                ApiError::new(StatusCode::CONFLICT, "too_many_invites", error.to_string())
            }
            AuthError::Store(_) | AuthError::Hash(_) | AuthError::Sign(_) | AuthError::Task(_) => {
                ApiError::internal(&error)
            }
        }
    }
}

impl From<DeviceError> for ApiError {
    fn from(error: DeviceError) -> Self {
        match &error {
            DeviceError::InvalidName => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_name", error.to_string())
            }
            DeviceError::InvalidKind => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_kind", error.to_string())
            }
            DeviceError::TooMany(_) => {
                ApiError::new(StatusCode::CONFLICT, "too_many_devices", error.to_string())
            }
            DeviceError::NotFound => ApiError::not_found(),
            DeviceError::Store(_) | DeviceError::Sign(_) => ApiError::internal(&error),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        match &error {
            ControlError::NotFound => ApiError::not_found(),
            ControlError::InvalidSettings(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_settings",
                error.to_string(),
            ),
            ControlError::Store(_) => ApiError::internal(&error),
        }
    }
}

impl From<MetaError> for ApiError {
    fn from(error: MetaError) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_frame_metadata",
            error.to_string(),
        )
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let kind = error.kind();
        let status = match kind {
            IngestErrorKind::NotJpeg => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestErrorKind::ImageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            IngestErrorKind::UnprocessableImage => StatusCode::UNPROCESSABLE_ENTITY,
            // Not a resend: the device must continue above its highest seq.
            IngestErrorKind::SeqConflict => StatusCode::CONFLICT,
            // 507: a 5xx, so no client deletes the frame; it is not stored.
            IngestErrorKind::QuotaExceeded => StatusCode::INSUFFICIENT_STORAGE,
            // A budget refusal is the same answer as a full queue (the device
            // keeps the frame and sends it again), with the wait its bucket
            // needs. The frame is not stored: a 503 makes the device keep it
            // and send it again, where a 500 would read as "this frame is bad".
            IngestErrorKind::Overloaded
            | IngestErrorKind::OverDeviceBudget { .. }
            | IngestErrorKind::OverOwnerBudget { .. }
            | IngestErrorKind::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            IngestErrorKind::DetectorFailed => return ApiError::internal(&error),
        };
        let message = match kind {
            // The Retry-After value is filled in by the handler, which knows the config.
            IngestErrorKind::Overloaded => "the service is busy; retry later".to_owned(),
            IngestErrorKind::StorageUnavailable => {
                log_failure(&error);
                "storage is unavailable; retry later".to_owned()
            }
            _ => error.to_string(),
        };
        let answer = ApiError::new(status, kind.code(), message);
        match kind.retry_after_secs() {
            Some(secs) => answer.with_retry_after(secs),
            None => answer,
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match &error {
            QueryError::NotFound => ApiError::not_found(),
            QueryError::NeverSeen => {
                ApiError::new(StatusCode::NOT_FOUND, "never_seen", error.to_string())
            }
            QueryError::Cursor(_)
            | QueryError::Limit(_)
            | QueryError::EmptyRange
            | QueryError::Width(_) => ApiError::bad_request(error.to_string()),
            QueryError::Busy(busy) => {
                let secs = u32::try_from(busy.retry_after_secs).unwrap_or(u32::MAX);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    error.to_string(),
                )
                .with_retry_after(secs)
            }
            QueryError::Store(_)
            | QueryError::Blob(_)
            | QueryError::Image(_)
            | QueryError::Task(_) => ApiError::internal(&error),
        }
    }
}

impl From<RetentionError> for ApiError {
    fn from(error: RetentionError) -> Self {
        match &error {
            RetentionError::InvalidLimits(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_retention",
                error.to_string(),
            ),
            // The token was valid, but its user has just been deleted.
            RetentionError::NotFound => ApiError::unauthorized(),
            RetentionError::Store(_) | RetentionError::Blob(_) => ApiError::internal(&error),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::unsupported_media_type("send JSON with Content-Type: application/json")
            }
            _ => ApiError::bad_request(format!("invalid JSON body: {}", rejection.body_text())),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => too_large(),
            _ => ApiError::bad_request("the request body could not be read"),
        }
    }
}

impl From<crate::live::LiveError> for ApiError {
    fn from(error: crate::live::LiveError) -> Self {
        use crate::live::LiveError;
        match error {
            LiveError::TooManySockets => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sockets",
                error.to_string(),
            ),
            LiveError::TooManyPending => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                error.to_string(),
            ),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request(format!(
            "invalid query parameters: {}",
            rejection.body_text()
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request(format!("invalid path parameter: {}", rejection.body_text()))
    }
}

/// Logs an error with its whole source chain.
fn log_failure(error: &(dyn std::error::Error + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "request failed");
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than allowed",
    )
}
