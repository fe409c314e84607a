//! What `deploy/` installs on a device: the systemd unit passes
//! `systemd-analyze verify` with the built binary in its `ExecStart`, and the
//! sample configuration loads and validates.

use std::path::{Path, PathBuf};
use std::process::Command;

use figment::Figment;
use lastseen_agent::config::{Config, SourceKind, TransportKind};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[test]
fn the_systemd_unit_verifies_and_starts_the_agent_with_its_config() {
    let unit = std::fs::read_to_string(deploy().join("lastseen-agent.service")).unwrap();
    let exec_start = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    let mut words = exec_start.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/lastseen-agent"));
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["--config", "/etc/lastseen/agent.toml"]);

    // systemd's own check, with the binary this build made in its place.
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_lastseen-agent");
    let local = unit.replace("/usr/local/bin/lastseen-agent", binary);
    let path = dir.path().join("lastseen-agent.service");
    std::fs::write(&path, local).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("lastseen-agent.service"),
        "warnings about the unit: {stderr}"
    );

    // The unit's arguments are the agent's own: a missing file is named as
    // such, not refused as an unknown flag.
    let missing = dir.path().join("agent.toml");
    let run = Command::new(binary)
        .args(["--config", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("agent.toml"), "{stderr}");
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
}

#[test]
fn the_sample_configuration_loads_and_validates() {
    let config = Config::load(Some(&deploy().join("agent/agent.toml")), Figment::new())
        .expect("deploy/agent/agent.toml is valid");
    assert_eq!(config.cloud.transport, TransportKind::Https);
    assert_eq!(config.source.kind, SourceKind::Http);
    assert_eq!(
        config.spool.dir,
        Path::new("/var/lib/lastseen-agent/spool"),
        "the spool lives in the unit's StateDirectory"
    );
}
