//! Admission before the detection queue: a flooding tenant does not starve
//! another (per-device and per-owner pixel budgets), and the per-user
//! storage quota refuses frames with 507 and stores nothing; over MQTT both
//! refusals get no ack.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lastseen_shared::Topics;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, error_code, fixture_jpeg, metric, spawn_app_with, wait_for_metric};
use crate::mqtt_client::{Broker, connect_device, envelope, use_broker};

const AT: &str = "2026-11-23T10:00:00Z";

/// A smooth gradient: a small body, but every pixel must be decoded.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encodes");
    out.into_inner()
}

#[derive(Default)]
struct Flood {
    stored: AtomicU64,
    over_budget: AtomicU64,
    /// The largest `Retry-After` a budget refusal carried.
    longest_wait: AtomicU64,
}

/// One flooding task: 1080p frames back to back, as fast as answers come,
/// until `stop`.
async fn flood(
    app: Arc<TestApp>,
    token: String,
    seqs: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    flood: Arc<Flood>,
) {
    let frame = jpeg(1920, 1080);
    while !stop.load(Ordering::Relaxed) {
        let seq = seqs.fetch_add(1, Ordering::Relaxed);
        let response = app.post_frame(&token, seq, AT, frame.clone()).await;
        match response.status() {
            StatusCode::CREATED => {
                flood.stored.fetch_add(1, Ordering::Relaxed);
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "overloaded");
                if body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("share of the detectors")
                {
                    flood.over_budget.fetch_add(1, Ordering::Relaxed);
                    flood.longest_wait.fetch_max(wait, Ordering::Relaxed);
                }
            }
            other => panic!("the flooder got {other}"),
        }
    }
}

/// Mallory floods from 16 tasks on two devices with 1080p frames, which
/// without admission keeps the 4-place queue full at all times. Alice sends
/// 10 small frames one after the other, each tried at most 20 times 100 ms
/// apart on 503: every one is stored, and Mallory is held to her budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flooding_tenant_does_not_starve_another() {
    let app = Arc::new(
        spawn_app_with(|config| {
            config.detect.queue_depth = 4;
            config.ingest.max_image_pixels = 1920 * 1080;
            config.ingest.admit_min_frame_pixels = 4096;
            // One 1080p frame at once, then one every two seconds: a device
            // and an account alike. Alice's ten small frames fit the burst.
            config.ingest.admit_device_pixels_per_sec = 1_000_000;
            config.ingest.admit_device_burst_pixels = 1920 * 1080;
            config.ingest.admit_owner_pixels_per_sec = 1_000_000;
            config.ingest.admit_owner_burst_pixels = 1920 * 1080;
        })
        .await,
    );
    let mallory = app.user("mallory").await;
    let alice = app.user("alice").await;
    let (alice_cam_id, alice_cam) = app.device(&alice, "Hall").await;
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Flood::default());
    let mut flooders = Vec::new();
    for name in ["One", "Two"] {
        let (_, token) = app.device(&mallory, name).await;
        let seqs = Arc::new(AtomicU64::new(0));
        for _ in 0..8 {
            flooders.push(tokio::spawn(flood(
                app.clone(),
                token.clone(),
                seqs.clone(),
                stop.clone(),
                totals.clone(),
            )));
        }
    }
    // The flood is on before Alice starts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let small = jpeg(160, 120);
    let mut attempts = Vec::new();
    for seq in 0..10u64 {
        let mut tries = 0;
        loop {
            tries += 1;
            let response = app.post_frame(&alice_cam, seq, AT, small.clone()).await;
            match response.status() {
                StatusCode::CREATED => break,
                StatusCode::SERVICE_UNAVAILABLE if tries < 20 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!(
                    "alice's frame {seq} got {other} after {tries} tries (frames stored before: {attempts:?})"
                ),
            }
        }
        attempts.push(tries);
    }
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.unwrap();
    }

    let over_budget = totals.over_budget.load(Ordering::Relaxed);
    assert!(over_budget > 0, "mallory was never held to her budget");
    // 1080p at 1 Mpx/s: about two seconds until the bucket holds a frame.
    let wait = totals.longest_wait.load(Ordering::Relaxed);
    assert!((1..=3).contains(&wait), "Retry-After {wait}");
    let counted = metric(
        &app,
        "lastseen_frames_dropped_total{transport=\"http\",reason=\"over_device_budget\"}",
    )
    .await
        + metric(
            &app,
            "lastseen_frames_dropped_total{transport=\"http\",reason=\"over_owner_budget\"}",
        )
        .await;
    assert_eq!(counted, over_budget);
    // Mallory's frames are stored at her budget's pace, not at her pace.
    let stored = totals.stored.load(Ordering::Relaxed);
    assert!(
        stored >= 1 && stored < over_budget,
        "{stored} stored, {over_budget} refused"
    );
    // Alice's ten are all there.
    let (status, frames) = app
        .get_json(&alice, &format!("/api/v1/devices/{alice_cam_id}/frames"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<u64> = frames["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..10).collect::<Vec<_>>(),
        "tries per frame: {attempts:?}"
    );
}

/// Frames past `user_quota_bytes` get 507 `quota_exceeded` and nothing is
/// stored; a resend of a stored frame is still answered, and another user
/// is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_past_the_quota_gets_507_and_nothing_is_stored() {
    let dog = fixture_jpeg("dog.jpg");
    let coffee = fixture_jpeg("coffee.png");
    let quota = (dog.len() + coffee.len() + 100) as u64;
    let app = spawn_app_with(|config| {
        config.ingest.user_quota_bytes = Some(quota);
        config.ingest.skip_unchanged_images = false;
    })
    .await;
    let alice = app.user("alice").await;
    let (cam_id, cam) = app.device(&alice, "Desk").await;
    assert_eq!(
        app.post_frame(&cam, 1, AT, dog.clone()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_frame(&cam, 2, AT, coffee.clone()).await.status(),
        StatusCode::CREATED
    );
    let blobs = app.blob_count();

    let refused = app.post_frame(&cam, 3, AT, dog.clone()).await;
    assert!(refused.headers().get("retry-after").is_none());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&quota.to_string()) && message.contains("keeps it"),
        "{message}"
    );
    // Again, with the status checked.
    let again = app.post_frame(&cam, 3, AT, dog.clone()).await;
    assert_eq!(
        error_code(again, StatusCode::INSUFFICIENT_STORAGE).await,
        "quota_exceeded"
    );
    assert_eq!(app.blob_count(), blobs);
    let (_, frames) = app
        .get_json(&alice, &format!("/api/v1/devices/{cam_id}/frames"))
        .await;
    assert_eq!(frames["items"].as_array().unwrap().len(), 2);
    // A resend of a stored frame is answered from the store as always.
    assert_eq!(
        app.post_frame(&cam, 1, AT, dog.clone()).await.status(),
        StatusCode::OK
    );
    // The quota is per user: Bob stores his.
    let bob = app.user("bob").await;
    let (_, bob_cam) = app.device(&bob, "Porch").await;
    assert_eq!(
        app.post_frame(&bob_cam, 1, AT, dog.clone()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        metric(
            &app,
            "lastseen_frames_dropped_total{transport=\"http\",reason=\"quota_exceeded\"}"
        )
        .await,
        2
    );
}

/// Over MQTT both refusals are "not now": no ack at all (a rejected ack
/// would make the agent delete the frame), counted by reason, nothing
/// stored; the device's resend goes through once there is room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_a_refused_frame_gets_no_ack_and_is_counted() {
    let dog = fixture_jpeg("dog.jpg");
    let coffee = fixture_jpeg("coffee.png");
    let mut address = String::new();
    let mut prefix = String::new();
    let app = spawn_app_with(|config| {
        address = use_broker(config, Broker::Embedded);
        prefix = config.mqtt.topic_prefix.clone();
        // Alice: room for the dog only. Bob: one frame's worth of pixels,
        // then 1 px/s.
        config.ingest.user_quota_bytes = Some(dog.len() as u64 + 100);
        config.ingest.max_image_pixels = 768 * 576;
        config.ingest.admit_device_pixels_per_sec = 1;
        config.ingest.admit_device_burst_pixels = 768 * 576;
        config.ingest.admit_min_frame_pixels = 768 * 576;
        config.ingest.skip_unchanged_images = false;
    })
    .await;
    let topics = Topics::new(&prefix).unwrap();
    let dropped = "lastseen_frames_dropped_total{transport=\"mqtt\",reason=";

    let alice = app.user("alice").await;
    let (id, token) = app.device(&alice, "Desk").await;
    let mut desk = connect_device(&address, &topics, &id, &token).await;
    let first = envelope(desk.id, &token, 1, &dog);
    desk.publish_frame(desk.id, first.clone()).await;
    assert_eq!(desk.next_ack().await.acked, [1]);
    desk.publish_frame(desk.id, envelope(desk.id, &token, 2, &coffee))
        .await;
    wait_for_metric(&app, &format!("{dropped}\"quota_exceeded\"}}"), 1).await;

    let bob = app.user("bob").await;
    let (id, bob_token) = app.device(&bob, "Porch").await;
    let mut porch = connect_device(&address, &topics, &id, &bob_token).await;
    // Small bodies, well inside the quota: only the pixels count here.
    porch
        .publish_frame(porch.id, envelope(porch.id, &bob_token, 1, &jpeg(768, 576)))
        .await;
    assert_eq!(porch.next_ack().await.acked, [1]);
    porch
        .publish_frame(porch.id, envelope(porch.id, &bob_token, 2, &jpeg(64, 64)))
        .await;
    wait_for_metric(&app, &format!("{dropped}\"over_device_budget\"}}"), 1).await;

    // No answer to either, and only the two first frames are stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for device in [&mut desk, &mut porch] {
        let ack_topic = topics.ack(device.id);
        assert!(
            device.drain().iter().all(|(topic, _)| *topic != ack_topic),
            "an ack for a refused frame"
        );
    }
    assert_eq!(app.blob_count(), 2);
    // A resend of a stored frame (the same envelope) is acked as always.
    desk.publish_frame(desk.id, first).await;
    assert_eq!(desk.next_ack().await.acked, [1]);
    desk.clear_retained().await;
    porch.clear_retained().await;
}
