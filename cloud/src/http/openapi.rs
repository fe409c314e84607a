//! The API's own description: an OpenAPI 3.1 document built from the
//! handlers' `#[utoipa::path]` annotations, served at
//! `GET /api/v1/openapi.json`, and a page that renders it at `GET /api/v1/docs`.
//!
//! Every route is registered through `utoipa_axum::routes!`, which adds the
//! handler to the axum router and its annotation to the document in one step,
//! so a route cannot be served without being described, nor described without
//! being served. `cloud/tests/api/openapi/` checks the document against the
//! live server.
//!
//! The answers many operations share (a refused token, a body too large or
//! not JSON) are written once here as [`IntoResponses`] types, which the
//! handlers list in `responses(...)` beside their own.

use std::sync::{Arc, LazyLock};

use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use crate::state::AppState;

/// Where the API lives; every documented path starts with it.
pub(super) const PREFIX: &str = "/api/v1";

const DESCRIPTION: &str = "\
Find where your things were last seen: devices send camera frames, the service detects \
objects in them, and users ask where and when each object was last seen.

Bodies are JSON unless stated otherwise. Every error has the same shape, \
`{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` (the `ErrorBody` schema); clients \
branch on `code`. Besides the statuses listed for each operation, any request may get 404 \
`not_found` for an unknown path, 405 `method_not_allowed` for a known path with another \
method, and 500 `internal` (logged, with an opaque message).

Unknown query parameters are a 400, not silently ignored. Another user's device, frame or \
image answers 404, never 403, so ids cannot be probed.";

#[derive(OpenApi)]
#[openapi(
    info(title = "lastseen API", description = DESCRIPTION),
    tags(
        (name = "auth", description = "Accounts and user sessions. User tokens are HS256 JWTs sent as `Authorization: Bearer <token>`."),
        (name = "devices", description = "The user's devices and their tokens. A device token can only send frames for its own device and can read nothing."),
        (name = "frames", description = "Sending frames (device token) and reading stored frames and images (user token)."),
        (name = "sightings", description = "Where and when objects were seen, on the caller's own devices only."),
        (name = "live", description = "New frames of the caller's devices as they arrive, over a WebSocket."),
        (name = "service", description = "Health, and this description of the API."),
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes),
)]
struct ApiDoc;

/// The two bearer token kinds; operations name the one they take.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "user_token",
            bearer(
                "A user access token from `POST /auth/login` (or `POST /auth/password`). \
                 Missing, invalid, expired or logged-out tokens get 401 with \
                 `WWW-Authenticate: Bearer`.",
            ),
        );
        components.add_security_scheme(
            "device_token",
            bearer(
                "A device token from `POST /devices` (or `POST /devices/{id}/rotate`). It can \
                 only send frames, for its own device; rotation and revocation void it.",
            ),
        );
    }
}

// The shared answers below exist only for their annotations: each wraps
// `ErrorBody` so the document references that schema, and nothing reads the
// field at run time (`ApiError` builds the real answer).

/// The 401 of an operation that takes a user token.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "`unauthorized`: missing, invalid or expired user token.",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub(super) struct UserTokenRefused(#[expect(dead_code, reason = "schema only")] ErrorBody);

/// The 401 of an operation that takes a device token.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "`unauthorized`: missing, invalid, expired or rotated device token, or a revoked device.",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub(super) struct DeviceTokenRefused(#[expect(dead_code, reason = "schema only")] ErrorBody);

/// The 413 of an operation with a JSON body (over `max_json_bytes`).
#[derive(IntoResponses)]
#[response(status = 413, description = "`payload_too_large`.")]
pub(super) struct JsonTooLarge(#[expect(dead_code, reason = "schema only")] ErrorBody);

/// The 415 of an operation with a JSON body.
#[derive(IntoResponses)]
#[response(
    status = 415,
    description = "`unsupported_media_type`: send `Content-Type: application/json`."
)]
pub(super) struct NotJson(#[expect(dead_code, reason = "schema only")] ErrorBody);

/// The 503 of an operation that hashes a password (`argon2_max_concurrent`).
#[derive(IntoResponses)]
#[response(
    status = 503,
    description = "`overloaded`: too many password checks at once.",
    headers(("Retry-After" = u32, description = "Seconds to wait before trying again."))
)]
pub(super) struct PasswordChecksBusy(#[expect(dead_code, reason = "schema only")] ErrorBody);

/// The document's root: info, tags, the shared schemas and security schemes.
/// The routers of each area, nested under [`PREFIX`], add the paths.
pub(super) fn root() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}

/// `GET /openapi.json` and `GET /docs`. They need [`Published`] as an
/// extension, added once the whole document is known.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// The finished document, serialised once.
#[derive(Clone)]
pub(super) struct Published(Arc<str>);

impl Published {
    pub(super) fn new(document: &utoipa::openapi::OpenApi) -> Self {
        let json = document
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        Self(json.into())
    }
}

/// This document: the whole API in OpenAPI 3.1.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "openapi",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API.", body = Object, content_type = "application/json"),
    )
)]
async fn openapi_json(Extension(Published(json)): Extension<Published>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json.to_string(),
    )
        .into_response()
}

/// A page that renders this document for people.
///
/// Self-contained: its script and style are inline and allowed by hash in its
/// `Content-Security-Policy`; it loads nothing but `openapi.json`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "service",
    operation_id = "docs",
    responses(
        (status = 200, description = "An HTML page listing every operation, grouped by tag.", content(("text/html"))),
    )
)]
async fn docs() -> Response {
    let page = &*DOCS_PAGE;
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CONTENT_SECURITY_POLICY, page.csp.clone()),
        ],
        page.html,
    )
        .into_response()
}

const DOCS_HTML: &str = include_str!("docs.html");

struct DocsPage {
    html: &'static str,
    csp: HeaderValue,
}

static DOCS_PAGE: LazyLock<DocsPage> = LazyLock::new(|| DocsPage {
    html: DOCS_HTML,
    csp: HeaderValue::try_from(docs_csp(DOCS_HTML)).expect("the CSP is a valid header value"),
});

/// A policy that runs exactly the page's one inline script and style (by
/// their SHA-256) and lets it fetch only from this origin.
fn docs_csp(html: &str) -> String {
    let script = inline_element(html, "script");
    let style = inline_element(html, "style");
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(script),
        sha256_source(style),
    )
}

/// The text between `<tag>` and `</tag>`, exactly as the browser hashes it.
fn inline_element<'h>(html: &'h str, tag: &str) -> &'h str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("docs.html has a <{tag}>"))
        + open.len();
    let end = start
        + html[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("docs.html closes its <{tag}>"));
    &html[start..end]
}

fn sha256_source(text: &str) -> String {
    format!("sha256-{}", BASE64.encode(Sha256::digest(text.as_bytes())))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn document() -> serde_json::Value {
        let config = crate::http::HttpConfig::default();
        let (_, document) = crate::http::api(&config).split_for_parts();
        serde_json::to_value(document).expect("serialises")
    }

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    #[test]
    fn every_operation_is_tagged_summarised_and_uniquely_named() {
        let doc = document();
        let declared: HashSet<&str> = doc["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        let mut ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            assert!(path.starts_with(PREFIX), "{path}");
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let tags = op["tags"].as_array().expect("tags");
                assert_eq!(tags.len(), 1, "{method} {path}");
                assert!(declared.contains(tags[0].as_str().unwrap_or_default()));
                assert!(op["summary"].is_string(), "{method} {path} has no summary");
                let id = op["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            }
        }
    }

    #[test]
    fn every_error_answer_has_the_error_schema_and_secured_ones_document_401() {
        let doc = document();
        let error_ref = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in METHODS {
                let Some(op) = item.get(method) else { continue };
                let responses = op["responses"].as_object().expect("responses");
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert_eq!(
                            response["content"]["application/json"]["schema"], error_ref,
                            "{method} {path} {status}"
                        );
                    }
                }
                if op.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}: no 401");
                }
                if op["requestBody"]["content"]
                    .get("application/json")
                    .is_some()
                {
                    for status in ["400", "413", "415"] {
                        assert!(
                            responses.contains_key(status),
                            "{method} {path}: JSON body but no {status}"
                        );
                    }
                }
            }
        }
    }

    /// Routes enter the router only through `routes!`, which documents them:
    /// no plain axum routing anywhere in the HTTP layer.
    #[test]
    fn no_route_bypasses_the_document() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
        let sources: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("src/http is readable")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|e| e == "rs"))
            .map(|path| {
                let text = std::fs::read_to_string(&path).expect("readable");
                (path.display().to_string(), text)
            })
            .collect();
        assert!(sources.len() >= 7, "found only {} modules", sources.len());
        // Spelled at run time so this file does not match itself.
        let needles = [
            format!(".{}(", "route"),
            format!(".{}(", "route_service"),
            format!(".{}(", "nest_service"),
            format!("axum::{}", "routing"),
        ];
        for (file, text) in sources {
            for needle in &needles {
                assert!(
                    !text.contains(needle.as_str()),
                    "{file} uses `{needle}`: register routes with `routes!` so they are documented"
                );
            }
        }
    }

    #[test]
    fn the_docs_policy_hashes_the_inline_script_and_style() {
        let csp = docs_csp(DOCS_HTML);
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        // One of each, so the policy covers everything the page runs.
        assert_eq!(DOCS_HTML.matches("<script").count(), 1);
        assert_eq!(DOCS_HTML.matches("<style").count(), 1);
        assert!(!DOCS_HTML.contains("http://") && !DOCS_HTML.contains("https://"));
    }

    #[test]
    fn sha256_source_matches_a_known_digest() {
        // `printf abc | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            sha256_source("abc"),
            "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }
}
