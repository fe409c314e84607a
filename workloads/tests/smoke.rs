//! The smoke scenario against a cloud this test starts (random ports, the
//! embedded broker on a free port, the real model), over HTTPS and MQTT: the
//! ledger passes and the report files hold what the run did.

use std::path::PathBuf;

use lastseen_cloud::testkit::{model_path, trace_dir};
use lastseen_workloads::scenario::Scenario;
use serde_json::Value;

fn smoke(transport: &str) -> Scenario {
    let scenario_file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml");
    let mut scenario = Scenario::load(
        Some(&scenario_file),
        &[format!("fleet.transport={transport}")],
    )
    .expect("the smoke scenario loads");
    // The test runs in the crate's directory, not at the repository root.
    scenario.fleet.source_dir = trace_dir();
    scenario.cloud.model_path = model_path();
    scenario
}

async fn run_and_check(transport: &str) -> lastseen_workloads::report::Report {
    let scenario = smoke(transport);
    let devices = scenario.fleet.devices;
    let report = lastseen_workloads::run(scenario)
        .await
        .expect("the run completes");
    let out = tempfile::tempdir().unwrap();
    let (json, chart) = report.write(out.path()).expect("the report is written");
    print!("{}", report.summary());

    assert!(report.ledger.passed, "{}", report.summary());
    assert!(report.drained, "{}", report.summary());
    assert_eq!(report.ledger.devices, u64::from(devices));
    assert!(report.frames.acked > 0, "{}", report.summary());
    // Gates off: every captured frame was sent, acked and stored exactly once.
    assert_eq!(
        report.frames.captured,
        report.frames.acked,
        "{}",
        report.summary()
    );
    assert_eq!(report.ledger.acked, report.frames.acked);
    assert_eq!(report.ledger.stored, report.frames.acked);
    assert_eq!(report.frames.rejected, 0);
    assert_eq!(lastseen_workloads::exit_code(&report), 0);
    assert!(report.latency.count as u64 == report.frames.acked);
    assert!(report.latency.p50_ms > 0.0 && report.latency.p50_ms <= report.latency.p99_ms);
    assert!(
        report
            .queries
            .values()
            .map(|q| q.latency.count)
            .sum::<usize>()
            > 0,
        "the query user asked something"
    );
    assert!(
        report.queries.values().all(|q| q.errors.is_empty()),
        "{:?}",
        report.queries
    );

    let written: Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(written["ledger"]["passed"], true);
    assert_eq!(written["frames"]["acked"], report.frames.acked);
    assert_eq!(written["scenario"]["fleet"]["transport"], transport);
    let acked_per_second: u64 = written["per_second"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["acked"].as_u64().unwrap())
        .sum();
    assert_eq!(acked_per_second, report.frames.acked);
    let svg = std::fs::read_to_string(chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("<polyline"),
        "{svg}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_passes_its_ledger_over_https() {
    run_and_check("https").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_passes_its_ledger_over_mqtt() {
    let report = run_and_check("mqtt").await;
    // Every frame was published once: none waited for the agent's 30 s
    // resend (the first-frame bug: a shared-subscription cursor skipped it).
    assert_eq!(
        report.frames.sent,
        report.frames.acked,
        "{}",
        report.summary()
    );
}
