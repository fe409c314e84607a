//! The HTTP listener's limits: header and idle timeouts, the body-rate
//! floor, the connection cap, a refused frame that is never read, and
//! `/metrics` on its own address or behind a token. Raw TCP where the wire
//! matters.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, fixture_jpeg, spawn_app_with};

/// A bound on waits for things that must happen, far above what they take:
/// a test fails on it only when the thing never happens.
const PATIENCE: Duration = Duration::from_secs(60);

/// One HTTP response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    fn error_code(&self) -> String {
        let body: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON error body");
        body["error"]["code"]
            .as_str()
            .expect("error.code")
            .to_owned()
    }
}

/// Reads one response (head, then `Content-Length` bytes of body). `None`
/// when the connection ends first.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<RawResponse> {
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0_u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end);
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut response = RawResponse {
        status,
        head,
        body: Vec::new(),
    };
    let length: usize = response
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < length {
        let mut chunk = [0_u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    response.body = buffer.drain(..length).collect();
    Some(response)
}

async fn next_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> RawResponse {
    tokio::time::timeout(PATIENCE, read_response(stream, buffer))
        .await
        .expect("an answer in time")
        .expect("an answer before the connection ended")
}

/// Waits until the server closes `stream` (EOF or reset), dropping whatever
/// it still sends.
async fn closed_by_server(stream: &mut TcpStream) {
    let end = async {
        let mut chunk = [0_u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(PATIENCE, end)
        .await
        .expect("the server closes the connection");
}

/// A sample of `/metrics` on a connection of its own: with the short timers
/// of these tests, a pooled connection may be closed just as it is reused.
async fn metric(app: &TestApp, sample: &str) -> u64 {
    let text = fresh_client()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

fn health_request() -> &'static [u8] {
    b"GET /api/v1/health HTTP/1.1\r\nHost: lastseen\r\n\r\n"
}

/// Small timers, so that the slow clients are closed quickly.
fn short_timers(config: &mut lastseen_cloud::config::Config) {
    config.serve.header_timeout_secs = 2;
    config.serve.idle_timeout_secs = 2;
    config.serve.min_body_bytes_per_sec = 1024;
    config.serve.body_rate_window_secs = 1;
}

/// The tests open more than a thousand sockets, twice over (both ends live
/// in this process): raise the soft open-file limit to the hard one if it is
/// lower than `need` (util-linux `prlimit`, as the tests forbid unsafe code).
fn soft_open_files() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

fn ensure_open_files(need: u64) {
    raise_open_files(need);
    let soft = soft_open_files();
    assert!(
        soft.is_none_or(|soft| soft >= need),
        "this test needs {need} open files and the limit is {soft:?}: raise `ulimit -n`"
    );
}

fn raise_open_files(need: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if soft_open_files().is_some_and(|soft| soft >= need) {
        return;
    }
    let pid = std::process::id().to_string();
    let raised = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=unlimited:"])
        .status();
    // `unlimited:` is refused without privileges; the hard limit then.
    if !raised.is_ok_and(|s| s.success()) {
        let hard = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(4))
            .unwrap_or("4096")
            .to_owned();
        let _ = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={hard}:")])
            .status();
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.addr).await.expect("connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_slow_clients_do_not_stop_a_normal_one_and_are_closed() {
    const EACH: usize = 333;
    ensure_open_files(4 * (3 * EACH as u64 + 100));
    let app = spawn_app_with(short_timers).await;
    let mut slow = Vec::new();
    // Headers one byte at a time, never finished in time.
    for _ in 0..EACH {
        let mut stream = connect(&app).await;
        slow.push(tokio::spawn(async move {
            let head = b"GET /api/v1/health HTTP/1.1\r\nHost: lastseen\r\nX-Slow: 1\r\n\r\n";
            for byte in head {
                if stream.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            closed_by_server(&mut stream).await;
            "header"
        }));
    }
    // Connected, then nothing.
    for _ in 0..EACH {
        let mut stream = connect(&app).await;
        slow.push(tokio::spawn(async move {
            closed_by_server(&mut stream).await;
            "idle"
        }));
    }
    // A JSON body a few bytes a second.
    for _ in 0..EACH {
        let stream = connect(&app).await;
        slow.push(tokio::spawn(async move {
            let (mut read, mut write) = stream.into_split();
            let trickle = tokio::spawn(async move {
                let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: lastseen\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{";
                if write.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if write.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(PATIENCE, read.read_to_end(&mut answer)).await;
            trickle.abort();
            let answer = String::from_utf8_lossy(&answer).into_owned();
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            "body"
        }));
    }

    // All of them are open; a normal client is served.
    let response = fresh_client()
        .get(app.url("/api/v1/health"))
        .timeout(PATIENCE)
        .send()
        .await
        .expect("a normal client gets an answer");
    assert_eq!(response.status(), StatusCode::OK);

    for task in slow {
        tokio::time::timeout(PATIENCE, task)
            .await
            .expect("every slow client is closed")
            .expect("slow client task");
    }
    let timed_out = |reason: &'static str| {
        let app = &app;
        async move {
            metric(
                app,
                &format!("lastseen_http_connections_timed_out_total{{reason=\"{reason}\"}}"),
            )
            .await
        }
    };
    assert!(
        timed_out("header").await >= 2 * EACH as u64,
        "header timeouts"
    );
    assert!(timed_out("body").await >= EACH as u64, "body timeouts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_after_a_request_is_closed() {
    let app = spawn_app_with(short_timers).await;
    let mut stream = connect(&app).await;
    let mut buffer = Vec::new();
    stream.write_all(health_request()).await.expect("sends");
    assert_eq!(next_response(&mut stream, &mut buffer).await.status, 200);
    closed_by_server(&mut stream).await;
    assert!(
        metric(
            &app,
            "lastseen_http_connections_timed_out_total{reason=\"idle\"}"
        )
        .await
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_below_the_rate_floor_gets_408_and_the_connection_closes() {
    let app = spawn_app_with(short_timers).await;
    let mut stream = connect(&app).await;
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: lastseen\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"username\":";
    stream.write_all(head.as_bytes()).await.expect("sends");
    let mut buffer = Vec::new();
    let response = next_response(&mut stream, &mut buffer).await;
    assert_eq!(response.status, 408, "{response:?}");
    assert_eq!(response.error_code(), "request_timeout");
    assert_eq!(response.header("connection"), Some("close"));
    closed_by_server(&mut stream).await;

    // At a normal pace the same kind of request is answered as usual.
    let answer = fresh_client()
        .post(app.url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "nobody", "password": "wrong password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(
        metric(
            &app,
            "lastseen_http_connections_timed_out_total{reason=\"body\"}"
        )
        .await
            >= 1
    );
}

/// `POST /frames` headers for a 10 MiB body; the body itself is never sent.
fn big_frame_head(token: &str, expect_continue: bool, length: usize) -> String {
    let expect = if expect_continue {
        "Expect: 100-continue\r\n"
    } else {
        ""
    };
    format!(
        "POST /api/v1/frames HTTP/1.1\r\nHost: lastseen\r\nAuthorization: Bearer {token}\r\nContent-Type: image/jpeg\r\nX-Frame-Seq: 1\r\nX-Captured-At: 2026-11-23T10:00:00Z\r\n{expect}Content-Length: {length}\r\n\r\n"
    )
}

/// A device token that was good and has been revoked, and a forged one.
async fn bad_tokens(app: &TestApp) -> Vec<String> {
    let user = app.user("owner").await;
    let (id, token) = app.device(&user, "Gone").await;
    app.act_on_device(&user, &id, "revoke").await;
    vec![token, "not-a-token".to_owned()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_gets_401_before_the_body_and_the_connection_closes() {
    let app = spawn_app_with(|_| {}).await;
    for token in bad_tokens(&app).await {
        let mut stream = connect(&app).await;
        let head = big_frame_head(&token, false, 10 * 1024 * 1024);
        stream.write_all(head.as_bytes()).await.expect("sends");
        // Not one byte of the body has been sent.
        let mut buffer = Vec::new();
        let response = next_response(&mut stream, &mut buffer).await;
        assert_eq!(response.status, 401, "{response:?}");
        assert_eq!(response.error_code(), "unauthorized");
        assert_eq!(response.header("connection"), Some("close"));
        closed_by_server(&mut stream).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_gets_100_only_with_a_good_token() {
    let app = spawn_app_with(|_| {}).await;
    let jpeg = fixture_jpeg("dog.jpg");

    for token in bad_tokens(&app).await {
        let mut stream = connect(&app).await;
        let head = big_frame_head(&token, true, jpeg.len());
        stream.write_all(head.as_bytes()).await.expect("sends");
        let mut buffer = Vec::new();
        let response = next_response(&mut stream, &mut buffer).await;
        assert_eq!(response.status, 401, "a 100 went out before: {response:?}");
        closed_by_server(&mut stream).await;
        assert!(buffer.is_empty(), "nothing after the 401");
    }

    let user = app.user("camera-owner").await;
    let (_, token) = app.device(&user, "Porch").await;
    let mut stream = connect(&app).await;
    let head = big_frame_head(&token, true, jpeg.len());
    stream.write_all(head.as_bytes()).await.expect("sends");
    let mut buffer = Vec::new();
    let interim = next_response(&mut stream, &mut buffer).await;
    assert_eq!(interim.status, 100, "{interim:?}");
    stream.write_all(&jpeg).await.expect("sends the body");
    let stored = next_response(&mut stream, &mut buffer).await;
    assert_eq!(stored.status, 201, "{stored:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_connection_gets_503_and_the_open_ones_are_served() {
    const CAP: usize = 4;
    let app = spawn_app_with(|config| config.serve.max_connections = CAP).await;
    // The test client keeps its own connection from startup, so the cap is
    // reached after at most CAP of these.
    let mut open = Vec::new();
    let refused = loop {
        assert!(
            open.len() <= CAP,
            "no refusal after {} connections",
            open.len()
        );
        let mut stream = connect(&app).await;
        let mut buffer = Vec::new();
        stream.write_all(health_request()).await.expect("sends");
        let response = next_response(&mut stream, &mut buffer).await;
        match response.status {
            200 => open.push((stream, buffer)),
            _ => break response,
        }
    };
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.error_code(), "overloaded");

    // The connections already open are still served, /metrics included.
    let (stream, buffer) = open.first_mut().expect("at least one open");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: lastseen\r\n\r\n")
        .await
        .expect("sends");
    let metrics = next_response(stream, buffer).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body);
    let refused_total = text
        .lines()
        .find_map(|l| l.strip_prefix("lastseen_http_connections_refused_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(refused_total >= Some(1), "{text}");
    assert!(
        text.lines()
            .any(|l| l == format!("lastseen_http_connections_open {CAP}")),
        "{text}"
    );

    // One closed: room for a new one.
    drop(open.pop());
    let served = async {
        loop {
            let mut stream = connect(&app).await;
            let mut buffer = Vec::new();
            stream.write_all(health_request()).await.expect("sends");
            if read_response(&mut stream, &mut buffer)
                .await
                .is_some_and(|r| r.status == 200)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, served)
        .await
        .expect("a slot frees when a connection closes");
}

fn free_port() -> SocketAddr {
    lastseen_cloud::testkit::free_loopback_port().expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address_are_not_on_the_api_port() {
    let metrics_addr = free_port();
    let app = spawn_app_with(|config| config.metrics.bind = Some(metrics_addr)).await;
    let on_api = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(on_api.status(), StatusCode::NOT_FOUND);
    let scraped = app
        .client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("lastseen_http_connections_open"), "{text}");
    // The metrics address serves nothing else.
    let api_there = app
        .client
        .get(format!("http://{metrics_addr}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(api_there.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_with_a_token_refuse_scrapers_without_it() {
    const TOKEN: &str = "scrape-token-0123456789";
    let app = spawn_app_with(|config| {
        config.metrics.token = Some(lastseen_cloud::config::Secret::new(TOKEN));
    })
    .await;
    let scrape = |token: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for token in [None, Some("scrape-token-wrong-456789")] {
        let refused = scrape(token).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(!refused.text().await.unwrap().contains("lastseen_"));
    }
    let scraped = scrape(Some(TOKEN)).await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("lastseen_frames_received_total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_uploading_a_whole_frame_with_a_bad_token_reads_the_401() {
    let app = spawn_app_with(|_| {}).await;
    // A real JPEG header, then padding up to 10 MiB: what a device would send.
    let mut body = fixture_jpeg("dog.jpg");
    body.resize(10 * 1024 * 1024 - 1, 0);
    for token in bad_tokens(&app).await {
        let response = fresh_client()
            .post(app.url("/api/v1/frames"))
            .bearer_auth(&token)
            .header("content-type", "image/jpeg")
            .header("x-frame-seq", "1")
            .header("x-captured-at", "2026-11-23T10:00:00Z")
            .body(body.clone())
            .send()
            .await
            .expect("the 401 arrives, not a broken connection");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
