//! The routes: the document lists exactly the routes the server has, and
//! the route table of `docs/api.md` lists the same.

use std::collections::BTreeSet;

use super::{Route, fetch_document, operation, operations, security_of};
use crate::helpers::spawn_app;

/// Every route the server has: the route table of `docs/api.md`, plus the two
/// that serve this description. A route added without documenting it, or
/// documented without existing, breaks the equality below.
const ROUTES: [(&str, &str); 33] = [
    ("POST", "/api/v1/auth/register"),
    ("GET", "/api/v1/auth/registration"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/logout-all"),
    ("POST", "/api/v1/auth/password"),
    ("DELETE", "/api/v1/account"),
    ("GET", "/api/v1/account/retention"),
    ("PUT", "/api/v1/account/retention"),
    ("DELETE", "/api/v1/account/retention"),
    ("POST", "/api/v1/account/invites"),
    ("POST", "/api/v1/devices"),
    ("GET", "/api/v1/devices"),
    ("GET", "/api/v1/devices/{id}"),
    ("PATCH", "/api/v1/devices/{id}"),
    ("POST", "/api/v1/devices/{id}/rotate"),
    ("POST", "/api/v1/devices/{id}/revoke"),
    ("DELETE", "/api/v1/devices/{id}"),
    ("GET", "/api/v1/devices/{id}/frames"),
    ("GET", "/api/v1/devices/{id}/settings"),
    ("PUT", "/api/v1/devices/{id}/settings"),
    ("GET", "/api/v1/device/settings"),
    ("POST", "/api/v1/device/status"),
    ("GET", "/api/v1/device/seq"),
    ("POST", "/api/v1/frames"),
    ("GET", "/api/v1/last-seen"),
    ("GET", "/api/v1/detections"),
    ("GET", "/api/v1/frames/{id}"),
    ("GET", "/api/v1/frames/{id}/image"),
    ("GET", "/api/v1/live"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
];

/// `(METHOD, /api/v1 path)` of each route in the first column of the table
/// under "## Routes" in `docs/api.md`, e.g.
/// `` `GET /devices/{id}`, `PATCH /devices/{id}` ``.
fn documented_routes() -> BTreeSet<Route> {
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md is readable");
    let section = api
        .split("\n## Routes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/api.md has a Routes section");
    let mut routes = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = line.split('|').nth(1).unwrap_or_default();
        for span in first_cell.split('`').skip(1).step_by(2) {
            let Some((method, path)) = span.split_once(' ') else {
                continue;
            };
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method) && path.starts_with('/')
            {
                let path = path.split(['?', '[']).next().unwrap_or_default();
                routes.insert((method.to_owned(), format!("/api/v1{path}")));
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_and_lists_exactly_the_servers_routes() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "OpenAPI {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let documented = operations(&doc);
    let served: BTreeSet<Route> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "ROUTES has a duplicate");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "routes missing from the document: {undocumented:?}; documented but not in ROUTES: {unserved:?}"
    );

    // The route table of docs/api.md lists the same routes.
    assert_eq!(
        documented_routes(),
        served,
        "the route table of docs/api.md and ROUTES differ"
    );

    // Both token kinds are declared, and every operation names only those.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for name in ["user_token", "device_token"] {
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    for (method, path) in &documented {
        for scheme in security_of(operation(&doc, (method, path))) {
            assert!(schemes.contains_key(&scheme), "{method} {path}: {scheme}");
        }
    }
}
