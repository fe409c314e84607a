//! `spawn_app()`: the real server on a random port with a fresh data dir,
//! and a client that talks to it as a device or a user would.

use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lastseen_cloud::config::{Config, MqttMode, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub(crate) const PASSWORD: &str = "correct horse battery staple";
pub(crate) const TEST_JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";

pub(crate) fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

pub(crate) fn model_path() -> PathBuf {
    shared_dir().join("models/yolox_nano.onnx")
}

pub(crate) fn fixture_path(name: &str) -> PathBuf {
    shared_dir().join("fixtures/images").join(name)
}

pub(crate) fn expected_detections() -> Value {
    let text =
        std::fs::read_to_string(fixture_path("expected.json")).expect("expected.json is readable");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The fixture as a device would send it: JPEG files as they are, PNGs
/// re-encoded as high-quality JPEG.
pub(crate) fn fixture_jpeg(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if name.ends_with(".jpg") {
        return bytes;
    }
    let image = image::load_from_memory(&bytes)
        .expect("fixture decodes")
        .into_rgb8();
    let mut out = Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 98)
        .encode_image(&image)
        .expect("encodes");
    out.into_inner()
}

pub(crate) fn trace_frame(index: usize) -> Vec<u8> {
    let path = shared_dir().join(format!("fixtures/trace/frame_{index:04}.jpg"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    pub(crate) data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Settings every test shares: cheap password hashing, one detector worker.
pub(crate) fn test_config(data_dir: &std::path::Path) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_path_buf(),
        model_path: model_path(),
        detect_workers: 1,
        detect_threads: 1,
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        // Every test client registers from 127.0.0.1; the throttling tests
        // set their own limits.
        register_max_per_client: 1000,
        jwt_secret: Some(Secret::new(TEST_JWT_SECRET)),
        log: "warn".to_owned(),
        // Tests never take fixed ports: the ones that need MQTT ask for it
        // with `with_embedded_mqtt` or `with_external_mqtt`.
        mqtt: MqttMode::Off,
        ..Config::default()
    }
}

/// The embedded broker on a free loopback port.
pub(crate) fn with_embedded_mqtt(config: &mut Config) {
    config.mqtt = MqttMode::Embedded;
    config.mqtt_listen = lastseen_cloud::mqtt::free_loopback_port().expect("a free port");
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(data_dir.path());
    customize(&mut config);
    lastseen_cloud::init_logs(&config.log);
    let listener = lastseen_cloud::bind(config.bind)
        .await
        .expect("binds port 0");
    let addr = listener.local_addr().expect("local addr");
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(lastseen_cloud::run(config, listener, async {
        let _ = stop.await;
    }));
    let app = TestApp {
        addr,
        client: reqwest::Client::new(),
        data_dir,
        shutdown: Some(shutdown),
    };
    // The listener is bound, so this request waits in the backlog until the
    // server is up; if startup fails instead, the server task ends first.
    tokio::select! {
        response = app.client.get(app.url("/api/v1/health")).send() => {
            let response = response.expect("health request");
            assert_eq!(response.status(), StatusCode::OK, "health: {:?}", response.text().await);
        }
        outcome = server => panic!("the server stopped during startup: {outcome:?}"),
    }
    app
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub(crate) async fn register(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/register"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("register request")
    }

    pub(crate) async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// Registers `username` and returns a user access token.
    pub(crate) async fn user(&self, username: &str) -> String {
        assert_eq!(
            self.register(username, PASSWORD).await.status(),
            StatusCode::CREATED
        );
        let body: Value = self
            .login(username, PASSWORD)
            .await
            .json()
            .await
            .expect("login JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates a device for the user and returns `(device_id, device_token)`.
    pub(crate) async fn device(&self, user_token: &str, name: &str) -> (String, String) {
        let response = self
            .client
            .post(self.url("/api/v1/devices"))
            .bearer_auth(user_token)
            .json(&json!({"name": name}))
            .send()
            .await
            .expect("create device request");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("device JSON");
        (
            body["id"].as_str().expect("id").to_owned(),
            body["token"].as_str().expect("token").to_owned(),
        )
    }

    /// `POST /devices/{id}/{action}` (`rotate`, `revoke`) as the owner; must
    /// answer 200; its JSON.
    pub(crate) async fn act_on_device(&self, user_token: &str, id: &str, action: &str) -> Value {
        let response = self
            .client
            .post(self.url(&format!("/api/v1/devices/{id}/{action}")))
            .bearer_auth(user_token)
            .send()
            .await
            .expect("device action request");
        assert_eq!(response.status(), StatusCode::OK, "{action}");
        response.json().await.expect("device JSON")
    }

    pub(crate) async fn post_frame(
        &self,
        device_token: &str,
        seq: u64,
        captured_at: &str,
        jpeg: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/frames"))
            .bearer_auth(device_token)
            .header("content-type", "image/jpeg")
            .header("x-frame-seq", seq.to_string())
            .header("x-captured-at", captured_at)
            .body(jpeg)
            .send()
            .await
            .expect("post frame request")
    }

    pub(crate) async fn get(&self, user_token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(user_token)
            .send()
            .await
            .expect("GET request")
    }

    pub(crate) async fn get_json(&self, user_token: &str, path: &str) -> (StatusCode, Value) {
        let response = self.get(user_token, path).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Number of files in the blob store, to check that bad input stored nothing.
    pub(crate) fn blob_count(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| {
                            if e.path().is_dir() {
                                count(&e.path())
                            } else {
                                1
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(&self.data_dir.path().join("blobs"))
    }
}

/// The value of one sample in the cloud's /metrics, 0 when absent.
pub(crate) async fn metric(app: &TestApp, sample: &str) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Waits until a metric reaches `want`.
pub(crate) async fn wait_for_metric(app: &TestApp, sample: &str, want: u64) {
    let deadline = Instant::now() + crate::mqtt_client::PATIENCE;
    loop {
        let value = metric(app, sample).await;
        if value >= want {
            assert_eq!(value, want, "{sample}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample} is {value}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts the API's error shape and returns its code.
pub(crate) async fn error_code(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(
        body["error"]["message"].is_string(),
        "no error.message in {body}"
    );
    code.to_owned()
}

/// Every expected detection is found (label, score within 0.02, box within
/// 4 px) and nothing unexpected scores above 0.35.
pub(crate) fn assert_matches_expected(name: &str, actual: &Value, expected: &Value) {
    let actual = actual
        .as_array()
        .unwrap_or_else(|| panic!("{name}: detections is not an array"));
    let expected = expected
        .as_array()
        .unwrap_or_else(|| panic!("{name}: no expectations"));
    let matches = |want: &Value, got: &Value| {
        got["label"] == want["label"]
            && (got["score"].as_f64().unwrap_or(-1.0) - want["score"].as_f64().unwrap_or(9.0)).abs()
                <= 0.02
            && (0..4).all(|i| {
                (got["box"][i].as_f64().unwrap_or(-1e9) - want["box"][i].as_f64().unwrap_or(1e9))
                    .abs()
                    <= 4.0
            })
    };
    for want in expected {
        assert!(
            actual.iter().any(|got| matches(want, got)),
            "{name}: expected {want} among {actual:?}"
        );
    }
    for got in actual {
        if got["score"].as_f64().unwrap_or(0.0) > 0.35 {
            assert!(
                expected.iter().any(|want| matches(want, got)),
                "{name}: unexpected {got}"
            );
        }
    }
}
