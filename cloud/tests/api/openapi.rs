//! The OpenAPI document at `/api/v1/openapi.json` against the live server:
//! it lists exactly the routes the server has, every operation in it is
//! served and answers with a documented status and a body that fits the
//! documented schema, and the security it names is the one enforced.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, fixture_jpeg, spawn_app};

/// Every route the server has: README's "HTTP API" table, plus the two that
/// serve this description. A route added without documenting it, or
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

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

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

// ---- A small validator: types, required and documented properties, items,
// ---- oneOf/anyOf, minimum, and the `date-time` and `uuid` formats.

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{at}: non-local $ref {reference}"));
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{at}: dangling $ref {reference}");
        return validate(doc, target, value, at, errors);
    }
    for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
        if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
            let matching = alternatives
                .iter()
                .filter(|alternative| {
                    let mut inner = Vec::new();
                    validate(doc, alternative, value, at, &mut inner);
                    inner.is_empty()
                })
                .count();
            if matching == 0 || (exactly_one && matching > 1) {
                errors.push(format!(
                    "{at}: {matching} of the {keyword} alternatives match {value}"
                ));
            }
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: odd type {other}"),
        };
        if !types.iter().any(|t| type_matches(t, value)) {
            errors.push(format!("{at}: expected {types:?}, got {value}"));
            return;
        }
    }
    if let (Some(minimum), Some(number)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && number < minimum
    {
        errors.push(format!("{at}: {number} is below the minimum {minimum}"));
    }
    if let (Some(format), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let ok = match format {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "uuid" => uuid::Uuid::try_parse(text).is_ok(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: {text:?} is not a {format}"));
        }
    }
    if let Some(object) = value.as_object() {
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().expect("required names are strings");
            if !object.contains_key(name) {
                errors.push(format!("{at}: required `{name}` is missing"));
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in object {
                match properties.get(name) {
                    Some(field_schema) => {
                        validate(doc, field_schema, field, &format!("{at}.{name}"), errors)
                    }
                    None => errors.push(format!("{at}: `{name}` is not documented")),
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        let count = items.len() as u64;
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && count < min
        {
            errors.push(format!("{at}: {count} items, fewer than {min}"));
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && count > max
        {
            errors.push(format!("{at}: {count} items, more than {max}"));
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(doc, item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

/// Asserts `value` fits the schema of `op`'s `status` answer in `content_type`.
fn assert_fits(doc: &Value, op: &Value, status: StatusCode, content_type: &str, value: &Value) {
    let response = &op["responses"][status.as_str()];
    assert!(
        response.is_object(),
        "{} answered {status}, which it does not document",
        op["operationId"]
    );
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{} {status}: no {content_type} schema documented",
        op["operationId"]
    );
    let mut errors = Vec::new();
    validate(doc, schema, value, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{} {status}: the answer does not fit the documented schema:\n  {}\nanswer: {value}",
        op["operationId"],
        errors.join("\n  ")
    );
}

enum Body {
    Empty,
    Json(Value),
    Frame { seq: u64, jpeg: Vec<u8> },
}

/// Calls operations as documented and records which ones were called.
struct Caller<'a> {
    app: &'a TestApp,
    doc: Value,
    called: BTreeSet<Route>,
}

impl Caller<'_> {
    /// Calls `method template` at the concrete `path`; the answer must be
    /// `expect`, documented, and fit its documented content. Returns the JSON
    /// body (or `Null`).
    async fn call(
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

/// `(METHOD, /api/v1 path)` of each route in the first column of README's
/// "HTTP API" table, e.g. `` `GET /devices/{id}`, `PATCH /devices/{id}` ``.
fn readme_routes() -> BTreeSet<Route> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md is readable");
    let section = readme
        .split("\n## HTTP API")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README has an HTTP API section");
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

    // README's table lists the same routes.
    assert_eq!(
        readme_routes(),
        served,
        "README's HTTP API table and ROUTES differ"
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

/// Every documented operation, called with its owner's real ids, answers
/// 2xx as documented, and its JSON fits the documented schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let mut api = Caller {
        app: &app,
        doc: doc.clone(),
        called: BTreeSet::new(),
    };
    let ok = StatusCode::OK;
    let created = StatusCode::CREATED;
    let none = StatusCode::NO_CONTENT;
    let credentials = json!({"username": "spec", "password": PASSWORD});

    api.call(
        ("GET", "/api/v1/health"),
        "/api/v1/health",
        None,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        ("GET", "/api/v1/openapi.json"),
        "/api/v1/openapi.json",
        None,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        ("GET", "/api/v1/docs"),
        "/api/v1/docs",
        None,
        Body::Empty,
        ok,
    )
    .await;

    let mode = api
        .call(
            ("GET", "/api/v1/auth/registration"),
            "/api/v1/auth/registration",
            None,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(mode["mode"], "open");
    let registered = api
        .call(
            ("POST", "/api/v1/auth/register"),
            "/api/v1/auth/register",
            None,
            Body::Json(credentials.clone()),
            created,
        )
        .await;
    assert_eq!(registered["username"], "spec");
    let login = ("POST", "/api/v1/auth/login");
    let session = api
        .call(login, login.1, None, Body::Json(credentials.clone()), ok)
        .await;
    let user = session["access_token"].as_str().expect("token").to_owned();
    let user = Some(user.as_str());
    // Open registration: no codes to make (tests/api/registration.rs makes them).
    api.call(
        ("POST", "/api/v1/account/invites"),
        "/api/v1/account/invites",
        user,
        Body::Empty,
        StatusCode::FORBIDDEN,
    )
    .await;

    let device = api
        .call(
            ("POST", "/api/v1/devices"),
            "/api/v1/devices",
            user,
            Body::Json(json!({"name": "Kitchen"})),
            created,
        )
        .await;
    assert!(device["revoked_at"].is_null());
    let device_id = device["id"].as_str().expect("id").to_owned();
    let device_token = device["token"].as_str().expect("token").to_owned();
    let device_path = format!("/api/v1/devices/{device_id}");

    let frames = ("POST", "/api/v1/frames");
    let frame = api
        .call(
            frames,
            frames.1,
            Some(&device_token),
            Body::Frame {
                seq: 1,
                jpeg: fixture_jpeg("coffee.png"),
            },
            created,
        )
        .await;
    assert!(
        !frame["detections"]
            .as_array()
            .expect("detections")
            .is_empty()
    );
    // The resend answers 200 with the same shape.
    api.call(
        frames,
        frames.1,
        Some(&device_token),
        Body::Frame {
            seq: 1,
            jpeg: fixture_jpeg("coffee.png"),
        },
        ok,
    )
    .await;
    // Another frame under that seq is a conflict, and the device learns where to go on.
    api.call(
        frames,
        frames.1,
        Some(&device_token),
        Body::Frame {
            seq: 1,
            jpeg: fixture_jpeg("dog.jpg"),
        },
        StatusCode::CONFLICT,
    )
    .await;
    let seq = api
        .call(
            ("GET", "/api/v1/device/seq"),
            "/api/v1/device/seq",
            Some(&device_token),
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(seq["highest_seq"], 1);
    let frame_id = frame["frame_id"].as_str().expect("frame_id").to_owned();

    let settings = ("GET", "/api/v1/devices/{id}/settings");
    let settings_path = format!("{device_path}/settings");
    let defaults = api
        .call(settings, &settings_path, user, Body::Empty, ok)
        .await;
    api.call(
        ("PUT", "/api/v1/devices/{id}/settings"),
        &settings_path,
        user,
        Body::Json(json!({"heartbeat_secs": 60})),
        ok,
    )
    .await;
    let own = api
        .call(
            ("GET", "/api/v1/device/settings"),
            "/api/v1/device/settings",
            Some(&device_token),
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(own["heartbeat_secs"], 60);
    assert_eq!(own["light"], defaults["light"]);
    api.call(
        ("POST", "/api/v1/device/status"),
        "/api/v1/device/status",
        Some(&device_token),
        Body::Json(json!({"state": "online", "counters": {"captured": 3}, "spool_depth": 0})),
        none,
    )
    .await;

    let devices = ("GET", "/api/v1/devices");
    let list = api.call(devices, devices.1, user, Body::Empty, ok).await;
    assert_eq!(list["items"][0]["id"], device_id.as_str());
    let one = ("GET", "/api/v1/devices/{id}");
    api.call(one, &device_path, user, Body::Empty, ok).await;
    let rename = ("PATCH", "/api/v1/devices/{id}");
    let renamed = api
        .call(
            rename,
            &device_path,
            user,
            Body::Json(json!({"name": "Hall"})),
            ok,
        )
        .await;
    assert_eq!(renamed["name"], "Hall");

    let frame_path = format!("/api/v1/frames/{frame_id}");
    let shown = api
        .call(
            ("GET", "/api/v1/frames/{id}"),
            &frame_path,
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(shown["device_id"], device_id.as_str());
    let image = ("GET", "/api/v1/frames/{id}/image");
    api.call(image, &format!("{frame_path}/image"), user, Body::Empty, ok)
        .await;
    api.call(
        image,
        &format!("{frame_path}/image?boxes=true"),
        user,
        Body::Empty,
        ok,
    )
    .await;
    api.call(
        image,
        &format!("{frame_path}/image?boxes=true&width=160"),
        user,
        Body::Empty,
        ok,
    )
    .await;
    // The WebSocket itself is exercised in live.rs; a plain GET is told to upgrade.
    api.call(
        ("GET", "/api/v1/live"),
        "/api/v1/live",
        None,
        Body::Empty,
        StatusCode::UPGRADE_REQUIRED,
    )
    .await;

    let device_frames = ("GET", "/api/v1/devices/{id}/frames");
    let listed = api
        .call(
            device_frames,
            &format!("{device_path}/frames?after_seq=0&limit=10"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(listed["next_after_seq"].is_null());

    // `/last-seen` answers either alternative of its `oneOf`.
    let last_seen = ("GET", "/api/v1/last-seen");
    let cup = api
        .call(
            last_seen,
            "/api/v1/last-seen?label=cup",
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert_eq!(cup["frame_id"], frame_id.as_str());
    let all = api
        .call(last_seen, last_seen.1, user, Body::Empty, ok)
        .await;
    assert!(all["items"].as_array().expect("items").len() >= 2);

    // A page with a cursor, and one where `next_cursor` is null.
    let detections = ("GET", "/api/v1/detections");
    let page = api
        .call(
            detections,
            "/api/v1/detections?limit=1",
            user,
            Body::Empty,
            ok,
        )
        .await;
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = api
        .call(
            detections,
            &format!("/api/v1/detections?label=cup&device={device_id}&since=2026-01-01T00:00:00Z&until=2027-01-01T00:00:00Z&limit=50&cursor={cursor}"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(rest["next_cursor"].is_null());

    // Retention: the defaults, the user's own, and back.
    let retention = "/api/v1/account/retention";
    let defaults = api
        .call(("GET", retention), retention, user, Body::Empty, ok)
        .await;
    assert_eq!(defaults["source"], "default");
    let own = api
        .call(
            ("PUT", retention),
            retention,
            user,
            Body::Json(json!({"max_age_days": 30, "max_bytes": 1_000_000_000})),
            ok,
        )
        .await;
    assert_eq!(own["source"], "user");
    let reset = api
        .call(("DELETE", retention), retention, user, Body::Empty, ok)
        .await;
    assert_eq!(reset["source"], "default");

    // Then the operations that end things, each with a token of its own.
    let rotated = api
        .call(
            ("POST", "/api/v1/devices/{id}/rotate"),
            &format!("{device_path}/rotate"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(rotated["token"].is_string());
    let revoked = api
        .call(
            ("POST", "/api/v1/devices/{id}/revoke"),
            &format!("{device_path}/revoke"),
            user,
            Body::Empty,
            ok,
        )
        .await;
    assert!(revoked["revoked_at"].is_string());
    api.call(
        ("DELETE", "/api/v1/devices/{id}"),
        &device_path,
        user,
        Body::Empty,
        none,
    )
    .await;

    api.call(
        ("POST", "/api/v1/auth/logout"),
        "/api/v1/auth/logout",
        user,
        Body::Empty,
        none,
    )
    .await;
    let fresh = |session: &Value| session["access_token"].as_str().expect("token").to_owned();
    let session = api
        .call(login, login.1, None, Body::Json(credentials.clone()), ok)
        .await;
    api.call(
        ("POST", "/api/v1/auth/logout-all"),
        "/api/v1/auth/logout-all",
        Some(&fresh(&session)),
        Body::Empty,
        none,
    )
    .await;
    let session = api
        .call(login, login.1, None, Body::Json(credentials), ok)
        .await;
    let new_password = "another long password";
    let changed = api
        .call(
            ("POST", "/api/v1/auth/password"),
            "/api/v1/auth/password",
            Some(&fresh(&session)),
            Body::Json(json!({"old_password": PASSWORD, "new_password": new_password})),
            ok,
        )
        .await;
    api.call(
        ("DELETE", "/api/v1/account"),
        "/api/v1/account",
        Some(&fresh(&changed)),
        Body::Json(json!({"password": new_password})),
        none,
    )
    .await;

    let documented = operations(&doc);
    let missed: Vec<_> = documented.difference(&api.called).collect();
    assert!(
        missed.is_empty(),
        "documented operations this test does not call yet: {missed:?}"
    );
}

/// Each secured operation refuses a missing token and the other kind of
/// token with the documented 401 and error body, and the router's own
/// answers for unknown routes stay distinct from the handlers'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_operations_refuse_other_tokens_with_the_documented_401() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let user = app.user("alice").await;
    let (device_id, device_token) = app.device(&user, "Kitchen").await;

    for (method, path) in operations(&doc) {
        let op = operation(&doc, (&method, &path));
        let schemes = security_of(op);
        if schemes.is_empty() {
            continue;
        }
        let concrete = path.replace("{id}", &device_id);
        let wrong_kind = if schemes.iter().any(|s| s == "user_token") {
            &device_token
        } else {
            &user
        };
        for token in [None, Some(wrong_kind)] {
            let mut request = app.client.request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                app.url(&concrete),
            );
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("request");
            let status = response.status();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: Value = response.json().await.expect("error JSON");
            assert_fits(&doc, op, status, "application/json", &body);
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }

    // An unknown path and a wrong method are the router's, not a handler's.
    let unknown = app.get(&user, "/api/v1/devices/x/y/z").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let wrong = app
        .client
        .put(app.url("/api/v1/devices"))
        .bearer_auth(&user)
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// A few handler errors: each status is documented for its operation and
/// the body is the documented error shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_are_documented_with_the_error_shape() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let user = app.user("alice").await;
    let (_, device_token) = app.device(&user, "Kitchen").await;
    let random = "0196f1c4-7a10-7c3e-9d5a-2b1e8f0a4c11";

    let cases: Vec<((&str, &str), reqwest::Response, StatusCode, &str)> = vec![
        (
            ("POST", "/api/v1/auth/register"),
            app.register("alice", PASSWORD).await,
            StatusCode::CONFLICT,
            "username_taken",
        ),
        (
            ("POST", "/api/v1/auth/login"),
            app.login("alice", "not the password at all").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        ),
        (
            ("GET", "/api/v1/devices/{id}"),
            app.get(&user, &format!("/api/v1/devices/{random}")).await,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            ("GET", "/api/v1/frames/{id}"),
            app.get(&user, "/api/v1/frames/not-a-uuid").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            ("GET", "/api/v1/last-seen"),
            app.get(&user, "/api/v1/last-seen?label=unicorn").await,
            StatusCode::NOT_FOUND,
            "never_seen",
        ),
        (
            ("GET", "/api/v1/detections"),
            app.get(&user, "/api/v1/detections?colour=red").await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            ("POST", "/api/v1/frames"),
            app.client
                .post(app.url("/api/v1/frames"))
                .bearer_auth(&device_token)
                .header("content-type", "image/png")
                .header("x-frame-seq", "1")
                .header("x-captured-at", "2026-11-23T10:00:00Z")
                .body(vec![0x89, b'P', b'N', b'G'])
                .send()
                .await
                .expect("request"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            ("POST", "/api/v1/auth/password"),
            app.client
                .post(app.url("/api/v1/auth/password"))
                .bearer_auth(&user)
                .json(&json!({"old_password": "wrong password here", "new_password": "whatever else it is"}))
                .send()
                .await
                .expect("request"),
            StatusCode::FORBIDDEN,
            "wrong_password",
        ),
    ];
    for (route, response, status, code) in cases {
        assert_eq!(response.status(), status, "{route:?}");
        let body: Value = response.json().await.expect("error JSON");
        assert_fits(
            &doc,
            operation(&doc, route),
            status,
            "application/json",
            &body,
        );
        assert_eq!(body["error"]["code"], code, "{route:?}");
        let description = doc["paths"][route.1][route.0.to_lowercase()]["responses"]
            [status.as_str()]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(
            description.contains(&format!("`{code}`")),
            "{route:?} {status}: `{code}` is not named in {description:?}"
        );
    }
}

/// The docs page is one self-contained HTML file under a strict policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_is_self_contained() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .expect("docs request");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let csp = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let page = response.text().await.expect("HTML");
    assert!(page.contains("fetch(\"openapi.json\""));
    for outside in ["http://", "https://", "src=", "<link", "@import"] {
        assert!(
            !page.contains(outside),
            "the page loads something: {outside}"
        );
    }
}
