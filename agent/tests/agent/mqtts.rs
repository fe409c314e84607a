//! MQTT over TLS with a private CA, as a site without public DNS runs it:
//! `certs/make-certs` makes the CA and the broker's certificate, the cloud's
//! embedded broker speaks TLS only, and the agent trusts the CA through
//! `cloud.ca_file` alone (no system store, no "insecure" switch). A broker
//! whose certificate another CA signed gets no frame.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lastseen_agent::Agent;
use lastseen_agent::config::{Config, TransportKind};
use lastseen_agent::counters::Counters;

use crate::helpers::{
    Cloud, CloudMqtt, RunningAgent, agent_config, eventually, open_gates, stored_seqs,
};

const LIMIT: Duration = Duration::from_secs(180);

/// Runs `certs/make-certs --out dir names...`; returns `dir`.
fn make_certs(dir: &Path, names: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/make-certs");
    let status = Command::new(&script)
        .arg("--out")
        .arg(dir)
        .args(names)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(status.success(), "make-certs failed: {status}");
    dir.to_path_buf()
}

/// A cloud whose embedded broker presents `certs/server.crt`.
async fn tls_cloud(certs: &Path) -> Cloud {
    let (cert, key) = (certs.join("server.crt"), certs.join("server.key"));
    Cloud::start_configured(CloudMqtt::Embedded, |config| {
        config.mqtt.tls_cert = Some(cert);
        config.mqtt.tls_key = Some(key);
    })
    .await
}

fn over_mqtts(mut config: Config, cloud: &Cloud, ca_file: &Path) -> Config {
    config.gates = open_gates();
    config.cloud.transport = TransportKind::Mqtt;
    config.cloud.mqtt_url = cloud.mqtt_url().expect("the cloud takes MQTT");
    assert!(config.cloud.mqtt_url.starts_with("mqtts://"));
    config.cloud.ca_file = Some(ca_file.to_path_buf());
    config.cloud.ack_timeout_secs = 2;
    config
}

#[test]
fn make_certs_keeps_its_keys_private_and_names_every_address() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path(), &["lastseen.example.org", "127.0.0.1"]);
    for key in ["ca.key", "server.key"] {
        let mode = std::fs::metadata(certs.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName,basicConstraints",
            "-in",
        ])
        .arg(certs.join("server.crt"))
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DNS:lastseen.example.org"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    // A second run keeps the CA, so devices that trust it still do.
    let ca = std::fs::read(certs.join("ca.crt")).unwrap();
    make_certs(dir.path(), &["127.0.0.1"]);
    assert_eq!(std::fs::read(certs.join("ca.crt")).unwrap(), ca);
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(certs.join("ca.crt"))
        .arg(certs.join("server.crt"))
        .status()
        .expect("openssl");
    assert!(verify.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_mqtts_trusting_a_private_ca_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path(), &["localhost", "127.0.0.1"]);
    let cloud = tls_cloud(&certs).await;
    let (_, device, token) = cloud.device("mqtts").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 20;
    let base = agent_config(&cloud, device, &token, spool.path(), frames);
    let config = over_mqtts(base, &cloud, &certs.join("ca.crt"));
    let running = RunningAgent::start(Agent::build(config).await.expect("agent builds"));
    let (counters, spool_state) = (running.counters.clone(), running.spool.clone());
    eventually("every frame acked over TLS", LIMIT, || {
        let done = Counters::get(&counters.acked) == frames
            && spool_state.gauge().frames.load(Ordering::Relaxed) == 0;
        async move { done }
    })
    .await;
    let stored = stored_seqs(&cloud.store().await, device, 0..frames + 5).await;
    assert_eq!(stored, (0..frames).collect::<Vec<_>>());
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_whose_certificate_another_ca_signed_gets_no_frame() {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(&dir.path().join("site"), &["localhost", "127.0.0.1"]);
    let stranger = make_certs(&dir.path().join("stranger"), &["127.0.0.1"]);
    let cloud = tls_cloud(&certs).await;
    let (_, device, token) = cloud.device("mqtts-mitm").await;
    let spool = tempfile::tempdir().unwrap();
    let frames = 10;
    let base = agent_config(&cloud, device, &token, spool.path(), frames);
    // The device trusts only the other CA: the broker cannot prove itself.
    let config = over_mqtts(base, &cloud, &stranger.join("ca.crt"));
    let running = RunningAgent::start(Agent::build(config).await.expect("agent builds"));
    let spool_state = running.spool.clone();
    eventually("every frame kept in the spool", LIMIT, || {
        let kept = spool_state.gauge().frames.load(Ordering::Relaxed) == frames;
        async move { kept }
    })
    .await;
    // Long enough for several connection attempts (backoff is at most 500 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(Counters::get(&running.counters.acked), 0);
    assert_eq!(spool_state.gauge().frames.load(Ordering::Relaxed), frames);
    let stored = stored_seqs(&cloud.store().await, device, 0..frames).await;
    assert!(stored.is_empty(), "{stored:?}");
    running.stop().await;
}
