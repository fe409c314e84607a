//! The OpenAPI document at `/api/v1/openapi.json` against the live server:
//! it lists exactly the routes the server has (`routes`), every operation in
//! it is served and answers with a documented status and a body that fits the
//! documented schema (`operations`, checked by `schema_check`), and the
//! security and errors it names are the ones enforced (`errors`).

mod caller;
mod errors;
mod operations;
mod routes;
mod schema_check;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// `(METHOD, path)` of one route.
type Route = (String, String);

async fn fetch_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi.json request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("openapi.json is JSON")
}

/// `(METHOD, path)` of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<Route> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

fn operation<'d>(doc: &'d Value, (method, path): (&str, &str)) -> &'d Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    op
}

/// The security schemes an operation names (empty: no auth).
fn security_of(op: &Value) -> Vec<String> {
    op["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().cloned())
        .collect()
}
