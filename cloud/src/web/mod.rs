//! The web page: `GET /` and `GET /assets/{name}`, built into the binary.
//!
//! Plain HTML, CSS and ES modules with no build step, embedded with
//! `include_str!`, so neither Node nor npm is needed to build or run the
//! cloud. The page talks to the REST API under `/api/v1` and to the live
//! WebSocket like any other client. Outside the versioned API and its
//! OpenAPI document, like `/metrics`.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

/// Only the page's own files run or style it; images come from the API as
/// `blob:` URLs (they need the `Authorization` header), and the only
/// connections are to this origin (REST and the live WebSocket).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// File names never change between versions, so browsers revalidate every
/// time and get 304 while the `ETag` (the content's hash) is the same.
const CACHE_CONTROL: &str = "no-cache";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!($name),
        }
    };
}

const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

const ASSETS: [Asset; 9] = [
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("ui.js", "text/javascript; charset=utf-8"),
    asset!("live.js", "text/javascript; charset=utf-8"),
    asset!("home.js", "text/javascript; charset=utf-8"),
    asset!("sightings.js", "text/javascript; charset=utf-8"),
    asset!("cameras.js", "text/javascript; charset=utf-8"),
    asset!("account.js", "text/javascript; charset=utf-8"),
];

/// `"<sha256 prefix>"` of each asset, computed once.
static ETAGS: LazyLock<Vec<(&'static str, HeaderValue)>> = LazyLock::new(|| {
    std::iter::once(&INDEX)
        .chain(ASSETS.iter())
        .map(|asset| {
            let digest = Sha256::digest(asset.body.as_bytes());
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            let etag = HeaderValue::try_from(format!("\"{hex}\"")).expect("hex is a header value");
            (asset.name, etag)
        })
        .collect()
});

/// The page's routes, merged beside `http::router` by `run`.
pub fn router() -> Router {
    Router::new()
        .route("/", axum::routing::get(index))
        .route("/assets/{name}", axum::routing::get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => serve(asset, &headers),
        None => ApiError::not_found().into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = ETAGS
        .iter()
        .find(|(name, _)| *name == asset.name)
        .map(|(_, etag)| etag.clone())
        .unwrap_or_else(|| HeaderValue::from_static("\"\""));
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        ),
        (header::ETAG, etag.clone()),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tags| tags.as_bytes() == etag.as_bytes());
    if unchanged {
        (StatusCode::NOT_MODIFIED, headers).into_response()
    } else {
        (headers, asset.body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_the_page_imports_is_served() {
        let served: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for asset in std::iter::once(&INDEX).chain(ASSETS.iter()) {
            for quote in ['"', '\''] {
                for (at, _) in asset.body.match_indices(&format!("{quote}./")) {
                    let rest = &asset.body[at + 3..];
                    let name = &rest[..rest.find(quote).unwrap_or(0)];
                    assert!(served.contains(&name), "{} imports {name}", asset.name);
                }
            }
        }
        assert!(INDEX.body.contains("src=\"/assets/app.js\""));
        assert!(INDEX.body.contains("href=\"/assets/app.css\""));
    }

    #[test]
    fn the_page_has_no_inline_script_style_or_handler() {
        for asset in std::iter::once(&INDEX).chain(ASSETS.iter()) {
            let body = asset.body;
            assert!(!body.contains("<script>"), "{}: inline script", asset.name);
            assert!(!body.contains("<style"), "{}: inline style", asset.name);
            assert!(
                !body.contains(" onclick="),
                "{}: inline handler",
                asset.name
            );
            assert!(!body.contains("innerHTML"), "{}: innerHTML", asset.name);
            assert!(!body.contains("http://") && !body.contains("https://"));
        }
    }
}
