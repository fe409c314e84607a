//! lastseen-workloads: how many devices can one cloud node take, how fast,
//! and did we lose anything?
//!
//! One run: start (or reach) the cloud (`cloud`), make users and devices
//! through its public API (`provision`), run N real agents replaying a trace
//! (`fleet`) and M query users (`queries`), record every confirmed frame and
//! query (`stats`, `progress`), let the spools drain, check the ledger
//! against the store (`ledger`), and write the report (`report`, `chart`).

pub mod chart;
pub mod cloud;
pub mod fleet;
pub mod ledger;
pub mod progress;
pub mod provision;
pub mod queries;
pub mod report;
pub mod scenario;
pub mod stats;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lastseen_agent::counters::Counters;
use lastseen_cloud::testkit::{Api, ApiCallError, LocalCloudError};
use tokio::sync::mpsc;

use cloud::CloudUnderTest;
use fleet::{Fleet, Replay};
use ledger::{DeviceBook, Ledger};
use report::{DeviceTotals, FrameTotals, Report};
use scenario::Scenario;
use stats::Recorder;

/// How often the drain checks whether every spool is empty.
const DRAIN_POLL: Duration = Duration::from_millis(200);
/// The window over which the sustained throughput is taken.
const SUSTAINED_WINDOW_SECS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
    #[error(transparent)]
    Cloud(#[from] LocalCloudError),
    #[error("provisioning: {0}")]
    Provision(#[from] ApiCallError),
    #[error("checking the ledger: {0}")]
    Ledger(ApiCallError),
    #[error("a task failed: {0}")]
    Task(String),
}

/// Runs `scenario` to the end; the report says whether the ledger passed.
pub async fn run(scenario: Scenario) -> Result<Report, WorkloadError> {
    let source_dir = scenario.fleet.source_dir.clone();
    let replay = tokio::task::spawn_blocking(move || Replay::load(&source_dir))
        .await
        .map_err(|e| WorkloadError::Task(e.to_string()))??;
    let mut cloud = CloudUnderTest::open(&scenario).await?;
    let endpoints = cloud.endpoints();
    let api = Api::new(&endpoints.http_url)?;
    let run_id: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let fleet_size = scenario.fleet.devices + scenario.fleet.idle_devices;
    let active = scenario.fleet.devices as usize;
    let provisioned = provision::provision(&api, &run_id, scenario.user_count(), fleet_size, |i| {
        fleet::gate_settings(&scenario, i >= active)
    })
    .await?;

    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let (deliveries, mut delivered) = mpsc::unbounded_channel();
    let mut fleet = Fleet::launch(
        &scenario,
        &endpoints,
        &provisioned.devices,
        replay,
        deliveries,
    )
    .await?;
    let start = fleet.start;
    let stop_at = start + Duration::from_secs_f64(scenario.duration_secs);
    let recording = {
        let recorder = recorder.clone();
        let started_at = fleet.started_at;
        tokio::spawn(async move {
            while let Some((device, delivery)) = delivered.recv().await {
                if let Ok(mut recorder) = recorder.lock() {
                    recorder.delivery(device, &delivery, started_at);
                }
            }
        })
    };
    let mut queries = queries::spawn(
        &api,
        &provisioned.users,
        &scenario.queries,
        start,
        stop_at,
        recorder.clone(),
    );
    let progress = tokio::spawn(progress::run(
        Arc::new(
            fleet
                .devices
                .iter()
                .map(progress::DeviceHandleView::of)
                .collect(),
        ),
        recorder.clone(),
        start,
        scenario.duration_secs,
    ));
    let mut errors = Vec::new();

    // The restart scenario: stop the managed cloud mid-run, start it again.
    if let (Some(at), CloudUnderTest::Managed(managed)) =
        (scenario.cloud.restart_at_secs, &mut cloud)
    {
        tokio::time::sleep_until(start + Duration::from_secs_f64(at)).await;
        tracing::warn!("stopping the cloud (restart scenario)");
        if let Err(error) = managed.stop().await {
            errors.push(format!("cloud stop: {error}"));
        }
        tokio::time::sleep(Duration::from_secs_f64(scenario.cloud.restart_down_secs)).await;
        managed.restart().await?;
        tracing::warn!("the cloud is back (restart scenario)");
    }

    tokio::time::sleep_until(stop_at).await;
    let drain_until = stop_at + Duration::from_secs_f64(scenario.drain_secs);
    while !fleet.settled() && tokio::time::Instant::now() < drain_until {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drained = fleet.settled();
    let elapsed_secs = start.elapsed().as_secs_f64();
    while queries.join_next().await.is_some() {}
    errors.extend(fleet.stop().await);
    // Every agent is gone, and with it every sender of reports.
    recording
        .await
        .map_err(|e| WorkloadError::Task(e.to_string()))?;
    progress.abort();
    progress::finish();

    // Every writer has stopped (the progress bar only reads).
    let recorder = std::mem::take(&mut *recorder.lock().unwrap_or_else(|p| p.into_inner()));
    let mut checks = Vec::with_capacity(fleet.devices.len());
    for (index, device) in fleet.devices.iter().enumerate() {
        let owner = &provisioned.users[device.owner];
        let stored = ledger::stored_seqs(&api, &owner.token, &device.id.to_string())
            .await
            .map_err(WorkloadError::Ledger)?;
        let delivered = recorder.devices.get(&index).cloned().unwrap_or_default();
        let book = DeviceBook {
            acked: delivered.acked,
            rejected: delivered.rejected,
            pending: device.pending(),
        };
        checks.push(ledger::check_device(&device.id.to_string(), &book, &stored));
    }
    if let CloudUnderTest::Managed(managed) = &mut cloud
        && let Err(error) = managed.stop().await
    {
        errors.push(format!("cloud stop: {error}"));
    }

    let frames = frame_totals(&fleet, &recorder);
    let per_second = recorder.seconds();
    Ok(Report {
        acked_per_sec: sustained(&per_second, scenario.duration_secs),
        devices: DeviceTotals {
            active: scenario.fleet.devices,
            idle: scenario.fleet.idle_devices,
        },
        started_at: fleet.started_at,
        elapsed_secs,
        drained,
        frames,
        latency: recorder.latency(),
        queries: recorder.queries(),
        per_second,
        ledger: Ledger::of(&checks),
        errors,
        scenario,
    })
}

/// The best mean of acked frames per second over a window of
/// [`SUSTAINED_WINDOW_SECS`] within the capture window (the whole window if shorter).
fn sustained(per_second: &[stats::Second], duration_secs: f64) -> f64 {
    let capture: Vec<u64> = per_second
        .iter()
        .take(duration_secs.ceil() as usize)
        .map(|s| s.acked)
        .collect();
    if capture.is_empty() {
        return 0.0;
    }
    let window = SUSTAINED_WINDOW_SECS.min(capture.len());
    capture
        .windows(window)
        .map(|w| w.iter().sum::<u64>() as f64 / window as f64)
        .fold(0.0, f64::max)
}

fn frame_totals(fleet: &Fleet, recorder: &Recorder) -> FrameTotals {
    let sum = |pick: fn(&Counters) -> &std::sync::atomic::AtomicU64| -> u64 {
        fleet
            .devices
            .iter()
            .map(|d| Counters::get(pick(&d.counters)))
            .sum()
    };
    FrameTotals {
        captured: sum(|c| &c.captured),
        dropped_by_gates: sum(|c| &c.dropped_light)
            + sum(|c| &c.dropped_change)
            + sum(|c| &c.dropped_person),
        spooled: sum(|c| &c.spooled),
        sent: sum(|c| &c.sent),
        acked: recorder.acked(),
        rejected: recorder.rejected(),
        rejected_by_reason: recorder.rejected_by_code.clone(),
        transport_errors: sum(|c| &c.transport_errors),
        spool_dropped: sum(|c| &c.spool_dropped),
    }
}

/// Exit status of the command line: the ledger decides.
pub fn exit_code(report: &Report) -> u8 {
    u8::from(!report.ledger.passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_throughput_is_the_best_window_within_the_capture() {
        let seconds: Vec<stats::Second> = [1, 2, 10, 10, 10, 0, 50]
            .iter()
            .enumerate()
            .map(|(t, acked)| stats::Second {
                t: t as u64,
                acked: *acked,
                ..stats::Second::default()
            })
            .collect();
        // Shorter than the window: the mean over the capture window (6 s).
        assert!((sustained(&seconds, 6.0) - 33.0 / 6.0).abs() < 1e-9);
        assert_eq!(sustained(&[], 6.0), 0.0);
    }
}
