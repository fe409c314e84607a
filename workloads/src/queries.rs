//! M users asking questions at a set rate while the devices send: last-seen
//! of one label, last-seen of every label, and a page of detections, in turn.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastseen_cloud::testkit::{Api, User};
use reqwest::StatusCode;
use tokio::time::{Instant, MissedTickBehavior};

use crate::scenario::QueryPlan;
use crate::stats::Recorder;

/// The requests a query user makes, in turn.
const KINDS: [&str; 3] = ["last_seen_label", "last_seen_all", "detections"];

/// Runs `plan.users` query users until `stop_at`, each at `plan.rate` requests per second.
pub fn spawn(
    api: &Api,
    users: &[User],
    plan: &QueryPlan,
    start: Instant,
    stop_at: Instant,
    recorder: Arc<Mutex<Recorder>>,
) -> tokio::task::JoinSet<()> {
    let (count, rate) = (plan.users, plan.rate);
    let mut tasks = tokio::task::JoinSet::new();
    if rate <= 0.0 || users.is_empty() {
        return tasks;
    }
    for i in 0..count as usize {
        let user = users[i % users.len()].clone();
        let api = api.clone();
        let recorder = recorder.clone();
        let label = plan.label.clone();
        tasks.spawn(async move {
            let period = Duration::from_secs_f64(1.0 / rate);
            // Users spread over one period, so they do not ask all at once.
            let first = start + period.mul_f64(i as f64 / count.max(1) as f64);
            let mut every = tokio::time::interval_at(first, period);
            every.set_missed_tick_behavior(MissedTickBehavior::Delay);
            for turn in 0.. {
                let at = every.tick().await;
                if at >= stop_at {
                    return;
                }
                let kind = KINDS[turn % KINDS.len()];
                let path = match kind {
                    "last_seen_label" => format!("/last-seen?label={label}"),
                    "last_seen_all" => "/last-seen".to_owned(),
                    _ => "/detections?limit=20".to_owned(),
                };
                let began = Instant::now();
                let outcome = api
                    .client()
                    .get(api.url(&path))
                    .bearer_auth(&user.token)
                    .send()
                    .await;
                let latency_ms = began.elapsed().as_secs_f64() * 1000.0;
                let error = match outcome {
                    Ok(response) => {
                        let status = response.status();
                        // Reading the body is part of the answer's time for a client.
                        let _ = response.bytes().await;
                        let expected = status == StatusCode::OK
                            // Nothing of that label seen yet (early in a run).
                            || (kind == "last_seen_label" && status == StatusCode::NOT_FOUND);
                        (!expected).then(|| status.as_u16().to_string())
                    }
                    Err(_) => Some("network".to_owned()),
                };
                let second = began.duration_since(start).as_secs();
                if let Ok(mut recorder) = recorder.lock() {
                    recorder.query(kind, second, latency_ms, error);
                }
            }
        });
    }
    tasks
}
