//! The agent binary killed with SIGKILL mid-stream and started again:
//! nothing it spooled is lost, nothing is stored twice, no seq repeats.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lastseen_shared::DeviceId;

use crate::helpers::{Cloud, eventually, stored_seqs, trace_dir};

const LIMIT: Duration = Duration::from_secs(180);

fn free_port() -> u16 {
    lastseen_cloud::testkit::free_loopback_port()
        .expect("a free port")
        .port()
}

/// Writes a config for the binary: the trace at 20 fps, every gate open.
fn write_config(
    dir: &Path,
    cloud: &Cloud,
    device: DeviceId,
    token: &str,
    frames: u64,
    metrics: u16,
) -> std::path::PathBuf {
    std::fs::write(dir.join("device.token"), format!("{token}\n")).unwrap();
    let text = format!(
        r#"
log = "warn"

[cloud]
device_id = "{device}"
token_file = "{token_file}"
transport = "https"
http_url = "http://{addr}"
mqtt_url = "mqtt://127.0.0.1:1"
backoff_initial_ms = 50
backoff_max_ms = 500

[source]
kind = "dir"
path = "{trace}"
fps = 20
max_frames = {frames}

[gates]
heartbeat_secs = 0
light = {{ enabled = false }}
change = {{ enabled = false }}

[spool]
dir = "{spool}"

[metrics]
listen = "127.0.0.1:{metrics}"
"#,
        token_file = dir.join("device.token").display(),
        addr = cloud.addr,
        trace = trace_dir().display(),
        spool = dir.join("spool").display(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn_agent(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lastseen-agent"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starts the agent binary")
}

/// One counter from the agent's /metrics, or None while it is not up.
async fn metric(port: u16, name: &str) -> Option<u64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let prefix = format!("lastseen_agent_{name} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

fn spooled_seqs(spool: &Path) -> Vec<u64> {
    let mut seqs: Vec<u64> = std::fs::read_dir(spool.join("frames"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".frame")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    seqs.sort_unstable();
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let cloud = Cloud::start().await;
    let (_, device, token) = cloud.device("killed").await;
    let store = cloud.store().await;
    let dir = tempfile::tempdir().unwrap();

    // Run 1: the whole trace (220 frames at 20 fps), killed after 30 stored.
    let port = free_port();
    let config = write_config(dir.path(), &cloud, device, &token, 0, port);
    let mut agent = spawn_agent(&config);
    eventually("30 frames stored", LIMIT, || {
        let store = &store;
        async move { stored_seqs(store, device, [29]).await == [29] }
    })
    .await;
    agent.kill().expect("SIGKILL");
    agent.wait().expect("reaped");
    let left_in_spool = spooled_seqs(&dir.path().join("spool"));

    // Run 2: 20 more frames; the spool left by run 1 goes out first.
    let port = free_port();
    let config = write_config(dir.path(), &cloud, device, &token, 20, port);
    let mut agent = spawn_agent(&config);
    eventually(
        "run 2 captured its frames and drained the spool",
        LIMIT,
        || async move {
            metric(port, "captured_total").await == Some(20)
                && metric(port, "spool_depth").await == Some(0)
        },
    )
    .await;
    let _ = Command::new("kill").arg(agent.id().to_string()).status();
    agent.wait().expect("reaped");

    let stored = stored_seqs(&store, device, 0..1100).await;
    let (run1, run2): (Vec<u64>, Vec<u64>) = stored.iter().partition(|&&seq| seq < 1000);
    // Run 1 handed out 0, 1, 2 ... in order: everything it spooled arrived,
    // including what the kill left in the spool, so there is no gap.
    assert!(run1.len() >= 30, "{run1:?}");
    assert_eq!(run1, (0..run1.len() as u64).collect::<Vec<_>>());
    assert!(
        left_in_spool.iter().all(|seq| run1.contains(seq)),
        "{left_in_spool:?} vs {run1:?}"
    );
    // Run 2 started after the block run 1 had reserved: its 20 frames have
    // new seqs, so none was mistaken for a resend of a run-1 frame.
    assert_eq!(run2, (1000..1020).collect::<Vec<_>>());
    assert!(spooled_seqs(&dir.path().join("spool")).is_empty());
}
