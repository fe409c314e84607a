//! The web page: served at `/` with its assets, and driven in Debian's
//! Chromium by `web-tests/e2e.mjs` (playwright-core) against the real server.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::{fixture_jpeg, spawn_app};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/")).send().await.expect("GET /");
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().expect("ASCII");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("style-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.expect("HTML");
    assert!(html.contains(r#"<script type="module" src="/assets/app.js">"#));

    let script = app
        .client
        .get(app.url("/assets/app.js"))
        .send()
        .await
        .expect("GET app.js");
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(script.headers()["cache-control"], "no-cache");
    let etag = script.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/assets/app.js"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET app.js again");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let style = app
        .client
        .get(app.url("/assets/app.css"))
        .send()
        .await
        .expect("GET app.css");
    assert_eq!(style.headers()["content-type"], "text/css; charset=utf-8");

    let missing = app
        .client
        .get(app.url("/assets/nope.js"))
        .send()
        .await
        .expect("GET nope.js");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = missing.json().await.expect("error JSON");
    assert_eq!(body["error"]["code"], "not_found");
}

/// What the browser test needs, or a message saying how to get it.
fn browser_prerequisites(root: &Path) -> Result<(), String> {
    let hint = "run `scripts/setup --tests` (scripts/test does)";
    let chromium =
        std::env::var("LASTSEEN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(format!("no Chromium at {chromium}: {hint}"));
    }
    if !root.join("web-tests/node_modules/playwright-core").is_dir() {
        return Err(format!(
            "web-tests/node_modules/playwright-core is missing: {hint}"
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err(format!(
            "`node` is not on PATH: install Node.js, then {hint}"
        )),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_in_chromium_end_to_end() {
    let root = repo_root();
    if let Err(missing) = browser_prerequisites(&root) {
        panic!("the browser test cannot run: {missing}");
    }
    let app = spawn_app().await;
    let fixtures = tempfile::tempdir().expect("temp dir");
    for name in ["coffee.png", "astronaut.png", "chelsea.png", "dog.jpg"] {
        let jpeg_name = format!("{}.jpg", name.split('.').next().unwrap_or(name));
        std::fs::write(fixtures.path().join(jpeg_name), fixture_jpeg(name)).expect("fixture");
    }
    let screenshots = root.join("target/web-screenshots");
    let mut command = Command::new("node");
    command
        .arg(root.join("web-tests/e2e.mjs"))
        .arg(app.url(""))
        .arg(fixtures.path())
        .arg(&screenshots)
        .current_dir(root.join("web-tests"));
    // The server runs on this test's runtime; node runs beside it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the node task")
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "web-tests/e2e.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for page in ["home", "sightings", "frame", "live", "cameras", "account"] {
        for size in ["desktop", "phone"] {
            let shot = screenshots.join(format!("{size}-{page}.png"));
            assert!(shot.is_file(), "no screenshot {}", shot.display());
        }
    }
}
