//! Calls operations as the document describes them, checking each answer.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::schema_check::assert_fits;
use super::{Route, operation, security_of};
use crate::helpers::TestApp;

pub(super) enum Body {
    Empty,
    Json(Value),
    Frame { seq: u64, jpeg: Vec<u8> },
}

/// Calls operations as documented and records which ones were called.
pub(super) struct Caller<'a> {
    pub(super) app: &'a TestApp,
    pub(super) doc: Value,
    pub(super) called: BTreeSet<Route>,
}

impl Caller<'_> {
    /// Calls `method template` at the concrete `path`; the answer must be
    /// `expect`, documented, and fit its documented content. Returns the JSON
    /// body (or `Null`).
    pub(super) async fn call(
        &mut self,
        (method, template): (&str, &str),
        path: &str,
        token: Option<&str>,
        body: Body,
        expect: StatusCode,
    ) -> Value {
        assert!(same_route(template, path), "{path} is not {template}");
        let op = operation(&self.doc, (method, template)).clone();
        assert_eq!(
            security_of(&op).is_empty(),
            token.is_none(),
            "{method} {template}: the token sent disagrees with the documented security"
        );
        let mut request = self.app.client.request(
            Method::from_bytes(method.as_bytes()).expect("method"),
            self.app.url(path),
        );
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::Empty => request,
            Body::Json(value) => request.json(&value),
            Body::Frame { seq, jpeg } => request
                .header("content-type", "image/jpeg")
                .header("x-frame-seq", seq.to_string())
                .header("x-captured-at", "2026-11-23T10:00:00Z")
                .body(jpeg),
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned());
        let bytes = response.bytes().await.expect("body");
        assert_eq!(
            status,
            expect,
            "{method} {path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        // A served route: never the router's own 404 or 405.
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED);
        self.called.insert((method.to_owned(), template.to_owned()));

        let documented = &op["responses"][status.as_str()];
        assert!(
            documented.is_object(),
            "{method} {template} answered {status}, which it does not document"
        );
        let Some(content_type) = content_type.filter(|_| !bytes.is_empty()) else {
            assert!(
                documented.get("content").is_none(),
                "{method} {template} {status}: documents a body but sent none"
            );
            return Value::Null;
        };
        assert!(
            documented["content"].get(&content_type).is_some(),
            "{method} {template} {status}: answered {content_type}, documented {}",
            documented["content"]
        );
        match content_type.as_str() {
            "application/json" => {
                let value: Value = serde_json::from_slice(&bytes).expect("JSON body");
                assert_fits(&self.doc, &op, status, &content_type, &value);
                value
            }
            "image/jpeg" => {
                assert!(bytes.starts_with(&[0xFF, 0xD8]), "not a JPEG");
                Value::Null
            }
            _ => Value::Null,
        }
    }
}

/// `path` is `template` with each `{param}` segment filled in.
fn same_route(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}
