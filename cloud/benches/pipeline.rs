//! Frames per second through the whole HTTP path (POST /frames -> decoded ->
//! detected -> blob and rows stored -> answered), next to the raw speed of the
//! same model with ONNX Runtime alone, on the same number of workers and
//! threads, in the same run.
//!
//! `cargo bench -p lastseen-cloud --bench pipeline` (see BENCHMARKS.md).
//! Environment: FRAMES (default 400), WORKERS (2), THREADS (1), CLIENTS (2 x WORKERS).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use lastseen_cloud::config::{Config, Secret};
use lastseen_cloud::detect::{load_model, load_runtime};
use lastseen_shared::yolox::YoloxConfig;
use serde_json::{Value, json};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The fixture photos as JPEG bodies (PNGs re-encoded at quality 95).
fn fixture_jpegs() -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for name in ["astronaut.png", "chelsea.png", "coffee.png", "dog.jpg"] {
        let path = shared().join("fixtures/images").join(name);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        if name.ends_with(".jpg") {
            out.push(bytes);
        } else {
            let image = image::load_from_memory(&bytes)?.into_rgb8();
            let mut jpeg = std::io::Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
                .encode_image(&image)?;
            out.push(jpeg.into_inner());
        }
    }
    Ok(out)
}

/// Inference alone: one session per worker thread, each running the model on
/// an already letterboxed fixture, as fast as it can.
fn raw_onnx_fps(frames: usize, workers: usize, threads: usize) -> Result<f64> {
    let runtime = load_runtime(None)?;
    let model_path = shared().join("models/yolox_nano.onnx");
    let image = image::open(shared().join("fixtures/images/dog.jpg"))?.into_rgb8();
    let mut models = Vec::new();
    for _ in 0..workers {
        let mut model = load_model(&runtime, &model_path, YoloxConfig::default(), threads)?;
        model.detect(&image)?; // fills the input tensor and warms the session
        models.push(model);
    }
    let remaining = Arc::new(AtomicUsize::new(frames));
    let started = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = models
            .iter_mut()
            .map(|model| {
                let remaining = remaining.clone();
                scope.spawn(move || -> Result<()> {
                    while remaining
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        model.infer_only()?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a raw worker panicked"))??;
        }
        Ok(())
    })?;
    Ok(frames as f64 / started.elapsed().as_secs_f64())
}

/// CPU time per frame of the work the pipeline adds before inference:
/// JPEG decode and letterboxing, single-threaded, over the fixture bodies.
fn decode_and_letterbox_ms(rounds: usize) -> Result<f64> {
    let bodies = fixture_jpegs()?;
    let mut preprocessor = lastseen_shared::yolox::Preprocessor::new(416);
    let mut tensor = vec![0.0; preprocessor.tensor_len()];
    let started = Instant::now();
    for round in 0..rounds {
        let image = lastseen_cloud::detect::decode_jpeg(&bodies[round % bodies.len()], u64::MAX)?;
        preprocessor.run(&image, &mut tensor)?;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / rounds as f64)
}

async fn pipeline_fps(
    frames: usize,
    workers: usize,
    threads: usize,
    clients: usize,
) -> Result<f64> {
    let data_dir = tempfile::tempdir()?;
    let config = Config {
        bind: "127.0.0.1:0".parse()?,
        data_dir: data_dir.path().to_path_buf(),
        model_path: shared().join("models/yolox_nano.onnx"),
        detect_workers: workers,
        detect_threads: threads,
        queue_depth: clients * 2,
        // The pipeline's own throughput: no device's fair share holds it back.
        admit_device_pixels_per_sec: u64::MAX,
        admit_device_burst_pixels: u64::MAX,
        admit_owner_pixels_per_sec: u64::MAX,
        admit_owner_burst_pixels: u64::MAX,
        jwt_secret: Some(Secret::new("bench-secret-that-is-long-enough-0123456789")),
        log: "warn".to_owned(),
        ..Config::default()
    };
    let listener = lastseen_cloud::bind(config.bind).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(lastseen_cloud::run(
        config,
        listener,
        std::future::pending(),
    ));

    let http = reqwest::Client::new();
    let health = http.get(format!("{base}/api/v1/health")).send().await?;
    ensure!(health.status().is_success(), "the cloud did not start");
    let credentials = json!({"username": "bench", "password": "bench-password-123"});
    http.post(format!("{base}/api/v1/auth/register"))
        .json(&credentials)
        .send()
        .await?;
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&credentials)
        .send()
        .await?
        .json()
        .await?;
    let user = login["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let device: Value = http
        .post(format!("{base}/api/v1/devices"))
        .bearer_auth(&user)
        .json(&json!({"name": "bench"}))
        .send()
        .await?
        .json()
        .await?;
    let device = Arc::new(
        device["token"]
            .as_str()
            .context("no device token")?
            .to_owned(),
    );
    let bodies = Arc::new(fixture_jpegs()?);
    let next_seq = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, base, device, bodies, next_seq) = (
            http.clone(),
            base.clone(),
            device.clone(),
            bodies.clone(),
            next_seq.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next_seq.fetch_add(1, Ordering::SeqCst);
                if seq >= frames {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = bodies[seq % bodies.len()].clone();
                let response = http
                    .post(format!("{base}/api/v1/frames"))
                    .bearer_auth(device.as_str())
                    .header("content-type", "image/jpeg")
                    .header("x-frame-seq", seq.to_string())
                    .header("x-captured-at", "2026-11-23T10:00:00Z")
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    response.status().as_u16() == 201,
                    "frame {seq}: {}",
                    response.status()
                );
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(frames as f64 / started.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let frames = env_or("FRAMES", 400);
    let workers = env_or("WORKERS", 2);
    let threads = env_or("THREADS", 1);
    let clients = env_or("CLIENTS", workers * 2);
    println!("frames={frames} workers={workers} threads/worker={threads} clients={clients}");
    let raw = raw_onnx_fps(frames, workers, threads)?;
    println!("raw ONNX Runtime (inference only): {raw:.1} frames/s");
    let extra_ms = decode_and_letterbox_ms(200)?;
    let infer_ms = 1000.0 * workers as f64 / raw;
    println!(
        "decode + letterbox: {extra_ms:.2} ms/frame on one core, inference {infer_ms:.2} ms/frame/worker: \
         a CPU-bound ceiling of {:.1}% before HTTP and storage",
        100.0 * infer_ms / (infer_ms + extra_ms)
    );
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pipeline = tokio.block_on(pipeline_fps(frames, workers, threads, clients))?;
    println!("HTTP pipeline (post -> detections stored): {pipeline:.1} frames/s");
    println!("pipeline / raw: {:.1}%", 100.0 * pipeline / raw);
    Ok(())
}
