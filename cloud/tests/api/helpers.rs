//! `spawn_app()`: the real server on a random port with a fresh data dir
//! (`lastseen_cloud::testkit::LocalCloud`), and a client that talks to it as
//! a device or a user would.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use lastseen_cloud::config::Config;
use lastseen_cloud::testkit::{self, Api, CloudMqtt, LocalCloud};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub(crate) use lastseen_cloud::testkit::{PASSWORD, TEST_JWT_SECRET, model_path};

pub(crate) fn expected_detections() -> Value {
    let path = testkit::image_path("expected.json");
    let text = std::fs::read_to_string(path).expect("expected.json is readable");
    serde_json::from_str(&text).expect("expected.json is JSON")
}

/// The fixture as a device would send it: JPEG files as they are, PNGs
/// re-encoded as high-quality JPEG.
pub(crate) fn fixture_jpeg(name: &str) -> Vec<u8> {
    testkit::fixture_jpeg(name, 98).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn trace_frame(index: usize) -> Vec<u8> {
    testkit::trace_frame(index).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) struct TestApp {
    pub(crate) addr: SocketAddr,
    pub(crate) client: reqwest::Client,
    api: Api,
    /// Stops the server when the test drops the app.
    cloud: LocalCloud,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The test config, changed by `customize`. Tests never take fixed ports: the
/// ones that need MQTT ask for it (`crate::mqtt_client::use_broker`).
pub(crate) async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let cloud = LocalCloud::start(CloudMqtt::Off, customize)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let client = cloud.client().clone();
    TestApp {
        addr: cloud.addr(),
        api: Api::with_client(client.clone(), &cloud.http_url()),
        client,
        cloud,
    }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        self.cloud.url(path)
    }

    pub(crate) fn data_dir(&self) -> &Path {
        self.cloud.data_dir()
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

    /// Registers `username` (201) and returns a user access token.
    pub(crate) async fn user(&self, username: &str) -> String {
        let user = self.api.user(username, PASSWORD).await;
        user.unwrap_or_else(|e| panic!("{e}")).token
    }

    /// Creates a device for the user (201) and returns `(device_id, device_token)`.
    pub(crate) async fn device(&self, user_token: &str, name: &str) -> (String, String) {
        let device = self.api.device(user_token, name, None).await;
        let (id, token) = device.unwrap_or_else(|e| panic!("{e}"));
        (id.to_string(), token)
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
        file_count(&self.data_dir().join("blobs"))
    }
}

/// Number of files under `dir`, at any depth (0 when it does not exist).
pub(crate) fn file_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    if e.path().is_dir() {
                        file_count(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
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
