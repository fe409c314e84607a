//! Frames per second through the whole HTTP path (POST /frames -> decoded ->
//! detected -> blob and rows stored -> answered), next to the raw speed of the
//! same model with ONNX Runtime alone, on the same number of workers and
//! threads, in the same run.
//!
//! `cargo bench -p lastseen-cloud --bench pipeline` (see BENCHMARKS.md).
//! Environment: FRAMES (default 400), WORKERS (2), THREADS (1), CLIENTS (2 x WORKERS).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, ensure};
use lastseen_cloud::detect::{load_model, load_runtime};
use lastseen_cloud::testkit::{
    Api, CloudMqtt, LocalCloud, PASSWORD, fixture_jpeg, image_path, model_path,
};
use lastseen_shared::yolox::YoloxConfig;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fixture photos as JPEG bodies (PNGs re-encoded at quality 95).
fn fixture_jpegs() -> Result<Vec<Vec<u8>>> {
    ["astronaut.png", "chelsea.png", "coffee.png", "dog.jpg"]
        .into_iter()
        .map(|name| Ok(fixture_jpeg(name, 95)?))
        .collect()
}

/// Inference alone: one session per worker thread, each running the model on
/// an already letterboxed fixture, as fast as it can.
fn raw_onnx_fps(frames: usize, workers: usize, threads: usize) -> Result<f64> {
    let runtime = load_runtime(None)?;
    let model_path = model_path();
    let image = image::open(image_path("dog.jpg"))?.into_rgb8();
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
    let cloud = LocalCloud::start(CloudMqtt::Off, |config| {
        config.detect.workers = workers;
        config.detect.threads = threads;
        config.detect.queue_depth = clients * 2;
        // The pipeline's own throughput: no device's fair share holds it back.
        config.ingest.admit_device_pixels_per_sec = u64::MAX;
        config.ingest.admit_device_burst_pixels = u64::MAX;
        config.ingest.admit_owner_pixels_per_sec = u64::MAX;
        config.ingest.admit_owner_burst_pixels = u64::MAX;
    })
    .await?;
    let base = cloud.http_url();
    let api = Api::new(&base)?;
    let user = api.user("bench", PASSWORD).await?;
    let (_, device) = api.device(&user.token, "bench", None).await?;
    let device = Arc::new(device);
    let http = api.client().clone();
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
