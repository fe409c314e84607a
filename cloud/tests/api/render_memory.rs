//! F8: memory under a flood of drawn images, measured on the real binary.
//!
//! The built `lastseen-cloud` runs as a child process (random port, fresh
//! data dir); one frame of exactly `max_image_pixels` (the default) is
//! stored, then 300 `?boxes=true` copies are asked at once, with the
//! thumbnail cache off so that every one that gets a slot renders. The
//! child's VmRSS is sampled from /proc while they run, and its VmHWM (peak
//! resident set) must stay under the bound docs/limits.md states:
//!
//! RSS at rest + render_max_concurrent x RENDER_BYTES_PER_PIXEL x max_image_pixels
//!
//! `LASTSEEN_RENDER_LOAD_BIN` runs another build instead (to measure an
//! older one, BENCHMARKS.md), `LASTSEEN_RENDER_LOAD_SIZE=WxH` another frame
//! size (it then raises `max_image_pixels` to fit), and
//! `LASTSEEN_RENDER_LOAD_QUERY` another query (e.g. `width=320&boxes=true`).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TEST_JWT_SECRET};

/// Bytes one full-size drawn copy may take per pixel of the frame: the
/// decoded RGB (3), the JPEG written back and the allocator's slack.
const RENDER_BYTES_PER_PIXEL: u64 = 5;
const RENDER_MAX_CONCURRENT: u64 = 2;
const REQUESTS: usize = 300;

struct Cloud {
    child: Child,
    addr: SocketAddr,
    _data_dir: tempfile::TempDir,
}

impl Drop for Cloud {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cloud {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A `VmHWM:`/`VmRSS:` line of /proc/PID/status, in bytes.
    fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the cloud's /proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn spawn_cloud(max_image_pixels: u64) -> Cloud {
    let binary = std::env::var("LASTSEEN_RENDER_LOAD_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lastseen-cloud").to_owned());
    let data_dir = tempfile::tempdir().expect("temp dir");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let child = Command::new(binary)
        .env("LASTSEEN_BIND", addr.to_string())
        .env("LASTSEEN_DATA_DIR", data_dir.path())
        .env("LASTSEEN_MQTT", "off")
        .env("LASTSEEN_DETECT_ENABLED", "false")
        .env("LASTSEEN_JWT_SECRET", TEST_JWT_SECRET)
        .env("LASTSEEN_ARGON2_MEMORY_KIB", "256")
        .env("LASTSEEN_ARGON2_ITERATIONS", "1")
        .env("LASTSEEN_MAX_IMAGE_PIXELS", max_image_pixels.to_string())
        .env(
            "LASTSEEN_RENDER_MAX_CONCURRENT",
            RENDER_MAX_CONCURRENT.to_string(),
        )
        .env("LASTSEEN_RENDER_WAIT_MS", "10000")
        .env("LASTSEEN_THUMBNAIL_CACHE_BYTES", "0")
        .env("LASTSEEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starts lastseen-cloud");
    let cloud = Cloud {
        child,
        addr,
        _data_dir: data_dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(cloud.url("/api/v1/health")).send().await
            && response.status() == StatusCode::OK
        {
            return cloud;
        }
        assert!(Instant::now() < deadline, "the cloud did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `width` x `height` JPEG with detail everywhere (gradients and a
/// pattern), as a camera's would be.
fn large_jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let pattern = ((x / 16 + y / 16) % 2) as u8 * 40;
        image::Rgb([
            (x * 255 / width) as u8 ^ pattern,
            (y * 255 / height) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&image)
        .expect("encodes");
    out.into_inner()
}

fn frame_size() -> (u32, u32) {
    match std::env::var("LASTSEEN_RENDER_LOAD_SIZE") {
        Ok(size) => {
            let (w, h) = size.split_once('x').expect("WxH");
            (w.parse().expect("width"), h.parse().expect("height"))
        }
        // Exactly the default limit: 4096 x 3072.
        Err(_) => (4096, 3072),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_drawn_copies_at_once_stay_under_the_memory_bound() {
    let (width, height) = frame_size();
    let pixels = u64::from(width) * u64::from(height);
    let default_pixels = lastseen_cloud::config::Config::default()
        .ingest
        .max_image_pixels;
    assert_eq!(
        default_pixels,
        4096 * 3072,
        "the test's frame is the default limit"
    );
    let cloud = spawn_cloud(pixels.max(default_pixels)).await;
    let client = reqwest::Client::new();

    let register = client
        .post(cloud.url("/api/v1/auth/register"))
        .json(&json!({"username": "loaded", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status(), StatusCode::CREATED);
    let login: Value = client
        .post(cloud.url("/api/v1/auth/login"))
        .json(&json!({"username": "loaded", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login JSON");
    let user = login["access_token"].as_str().expect("token").to_owned();
    let device: Value = client
        .post(cloud.url("/api/v1/devices"))
        .bearer_auth(&user)
        .json(&json!({"name": "Big"}))
        .send()
        .await
        .expect("device")
        .json()
        .await
        .expect("device JSON");
    let jpeg = large_jpeg(width, height);
    let stored = client
        .post(cloud.url("/api/v1/frames"))
        .bearer_auth(device["token"].as_str().expect("device token"))
        .header("content-type", "image/jpeg")
        .header("x-frame-seq", "1")
        .header("x-captured-at", "2026-12-06T01:00:00Z")
        .body(jpeg.clone())
        .send()
        .await
        .expect("post frame");
    assert_eq!(stored.status(), StatusCode::CREATED);
    let frame: Value = stored.json().await.expect("frame JSON");
    let query =
        std::env::var("LASTSEEN_RENDER_LOAD_QUERY").unwrap_or_else(|_| "boxes=true".to_owned());
    let image = cloud.url(&format!(
        "/api/v1/frames/{}/image?{query}",
        frame["frame_id"].as_str().expect("frame id")
    ));
    // One render first, so the baseline includes the code paths' own
    // one-time allocations; then the process at rest.
    let first = client
        .get(&image)
        .bearer_auth(&user)
        .send()
        .await
        .expect("GET");
    assert_eq!(first.status(), StatusCode::OK);
    drop(first.bytes().await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_rest = cloud.memory("VmRSS:");

    let started = Instant::now();
    let requests = futures::future::join_all((0..REQUESTS).map(|_| {
        let (client, image, user) = (client.clone(), image.clone(), user.clone());
        async move {
            match client.get(&image).bearer_auth(&user).send().await {
                Ok(response) => {
                    let status = response.status();
                    let _ = response.bytes().await;
                    Some(status)
                }
                Err(_) => None,
            }
        }
    }));
    let mut sampled_peak = 0;
    let sampler = async {
        loop {
            sampled_peak = sampled_peak.max(cloud.memory("VmRSS:"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let statuses = tokio::select! {
        statuses = requests => statuses,
        () = sampler => unreachable!(),
    };
    let elapsed = started.elapsed();
    let peak = cloud.memory("VmHWM:");
    let ok = statuses
        .iter()
        .filter(|s| **s == Some(StatusCode::OK))
        .count();
    let busy = statuses
        .iter()
        .filter(|s| **s == Some(StatusCode::SERVICE_UNAVAILABLE))
        .count();
    let bound = at_rest + RENDER_MAX_CONCURRENT * RENDER_BYTES_PER_PIXEL * pixels;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    eprintln!(
        "render load: {width}x{height} frame ({:.1} MiB JPEG), {REQUESTS} x ?{query} in {elapsed:.1?}: \
         {ok} OK, {busy} 503; RSS at rest {:.0} MiB, sampled peak {:.0} MiB, VmHWM {:.0} MiB, bound {:.0} MiB",
        mib(jpeg.len() as u64),
        mib(at_rest),
        mib(sampled_peak),
        mib(peak),
        mib(bound),
    );
    assert_eq!(ok + busy, REQUESTS, "{statuses:?}");
    assert!(ok >= 2, "no render got a slot: {statuses:?}");
    assert!(
        peak <= bound,
        "peak RSS {:.0} MiB over the bound {:.0} MiB",
        mib(peak),
        mib(bound)
    );
}
