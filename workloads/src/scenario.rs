//! A scenario: how many devices send what, how, for how long, against which
//! cloud, and who queries meanwhile. Read from a TOML file (see
//! `workloads/scenarios/`), then `--set key=value` overrides (dotted keys,
//! e.g. `fleet.devices=50`), over the defaults below.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read the scenario: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("`--set {0}`: expected key=value")]
    Override(String),
    #[error("invalid scenario:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Seconds the devices capture (the ramp included).
    pub duration_secs: f64,
    /// After capture stops, seconds to wait for the spools to drain before
    /// the ledger is checked anyway.
    pub drain_secs: f64,
    pub fleet: FleetPlan,
    pub queries: QueryPlan,
    pub cloud: CloudPlan,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Https,
    Mqtt,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetPlan {
    /// Devices replaying `source_dir`, each a real agent.
    pub devices: u32,
    /// Frames per second each device captures.
    pub fps: f64,
    /// Devices start one after another, spread over this many seconds.
    pub ramp_secs: f64,
    pub transport: Transport,
    /// Images replayed in name order, looping; each device starts at its own offset.
    pub source_dir: PathBuf,
    /// More devices that connect (MQTT session or HTTPS status) but capture nothing.
    pub idle_devices: u32,
    /// Devices per provisioned user (the cloud's `max_devices_per_user` bounds it).
    pub devices_per_user: u32,
    pub gates: GatePlan,
    /// MQTT: frames out without an ack, per device.
    pub max_in_flight: usize,
}

/// Which agent gates are on. All off sends every captured frame.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatePlan {
    pub light: bool,
    pub change: bool,
    /// YOLOX-Nano on the device (one ONNX Runtime session per device).
    pub person: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryPlan {
    /// Users asking questions (the provisioned users, taken in turn).
    pub users: u32,
    /// Requests per second per user, taking turns: last-seen of `label`,
    /// last-seen of every label, a page of detections.
    pub rate: f64,
    pub label: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudPlan {
    /// An external cloud's base URL (no `/api/v1`); unset starts one in this
    /// process on free ports ("managed").
    pub url: Option<String>,
    /// The external cloud's MQTT broker, `mqtt://host:port`.
    pub mqtt_url: Option<String>,
    /// Managed cloud: the model; the person gate uses it too.
    pub model_path: PathBuf,
    pub detect_workers: usize,
    pub detect_threads: usize,
    pub queue_depth: usize,
    /// Managed cloud: SQL store; unset is SQLite in a temp dir.
    pub database_url: Option<String>,
    /// Managed cloud: stop it this many seconds into the run ...
    pub restart_at_secs: Option<f64>,
    /// ... and start it again on the same port and data this much later.
    pub restart_down_secs: f64,
    /// Managed cloud: its `tracing` filter.
    pub log: String,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "custom".to_owned(),
            duration_secs: 30.0,
            drain_secs: 60.0,
            fleet: FleetPlan::default(),
            queries: QueryPlan::default(),
            cloud: CloudPlan::default(),
        }
    }
}

impl Default for FleetPlan {
    fn default() -> Self {
        Self {
            devices: 4,
            fps: 1.0,
            ramp_secs: 2.0,
            transport: Transport::Https,
            source_dir: PathBuf::from("../shared/fixtures/trace"),
            idle_devices: 0,
            devices_per_user: 10,
            gates: GatePlan::default(),
            max_in_flight: 16,
        }
    }
}

impl Default for QueryPlan {
    fn default() -> Self {
        Self {
            users: 1,
            rate: 2.0,
            label: "person".to_owned(),
        }
    }
}

impl Default for CloudPlan {
    fn default() -> Self {
        Self {
            url: None,
            mqtt_url: None,
            model_path: PathBuf::from("../shared/models/yolox_nano.onnx"),
            detect_workers: 2,
            detect_threads: 1,
            queue_depth: 64,
            database_url: None,
            restart_at_secs: None,
            restart_down_secs: 3.0,
            log: "warn".to_owned(),
        }
    }
}

impl Scenario {
    /// Defaults, then `file`, then each `key=value` of `overrides`.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self, ScenarioError> {
        let mut figment = Figment::from(Serialized::defaults(Scenario::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        for item in overrides {
            let (key, value) = item
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| ScenarioError::Override(item.clone()))?;
            // Parsed like a TOML value: `5` is a number, `true` a bool, `mqtt` a string.
            let value: figment::value::Value = match value.trim().parse() {
                Ok(value) => value,
                Err(never) => match never {},
            };
            figment = figment.merge(Serialized::default(key.trim(), value));
        }
        let scenario: Scenario = figment.extract().map_err(Box::new)?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: &str| {
            if !ok {
                problems.push(problem.to_owned());
            }
        };
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let fleet = &self.fleet;
        check(
            positive(self.duration_secs),
            "duration_secs must be above 0",
        );
        check(
            self.drain_secs.is_finite() && self.drain_secs >= 0.0,
            "drain_secs must be 0 or more",
        );
        check(
            fleet.devices + fleet.idle_devices >= 1,
            "fleet.devices + fleet.idle_devices must be at least 1",
        );
        check(
            positive(fleet.fps) && fleet.fps <= 120.0,
            "fleet.fps must be above 0 and at most 120",
        );
        check(
            fleet.ramp_secs.is_finite()
                && fleet.ramp_secs >= 0.0
                && fleet.ramp_secs < self.duration_secs,
            "fleet.ramp_secs must be 0 or more and below duration_secs",
        );
        check(
            fleet.devices_per_user >= 1,
            "fleet.devices_per_user must be at least 1",
        );
        check(
            fleet.max_in_flight >= 1,
            "fleet.max_in_flight must be at least 1",
        );
        check(
            self.queries.rate.is_finite() && self.queries.rate >= 0.0,
            "queries.rate must be 0 or more",
        );
        check(
            lastseen_shared::Label::parse(&self.queries.label).is_ok(),
            "queries.label must be a valid label, e.g. person",
        );
        let cloud = &self.cloud;
        check(
            cloud
                .url
                .as_deref()
                .is_none_or(|u| u.starts_with("http://") || u.starts_with("https://")),
            "cloud.url must be an http:// or https:// URL",
        );
        check(
            cloud.mqtt_url.is_none() || cloud.url.is_some(),
            "cloud.mqtt_url is for an external cloud (set cloud.url too)",
        );
        check(
            !(cloud.url.is_some()
                && fleet.transport == Transport::Mqtt
                && cloud.mqtt_url.is_none()),
            "fleet.transport = \"mqtt\" with an external cloud needs cloud.mqtt_url",
        );
        check(
            cloud.detect_workers >= 1 && cloud.detect_threads >= 1 && cloud.queue_depth >= 1,
            "cloud.detect_workers, cloud.detect_threads and cloud.queue_depth must be at least 1",
        );
        if let Some(at) = cloud.restart_at_secs {
            check(
                at.is_finite() && at > 0.0 && at < self.duration_secs,
                "cloud.restart_at_secs must be within the run (0 < at < duration_secs)",
            );
            check(
                cloud.url.is_none(),
                "cloud.restart_at_secs needs a managed cloud (no cloud.url)",
            );
            // rumqttd has no shutdown: the embedded broker cannot be restarted in-process.
            check(
                fleet.transport == Transport::Https,
                "cloud.restart_at_secs needs fleet.transport = \"https\" (the embedded MQTT broker cannot be restarted in-process)",
            );
            check(
                cloud.restart_down_secs.is_finite() && cloud.restart_down_secs >= 0.0,
                "cloud.restart_down_secs must be 0 or more",
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ScenarioError::Invalid(problems))
        }
    }

    /// Users to provision: enough for the devices, and at least the query users.
    pub fn user_count(&self) -> u32 {
        let devices = self.fleet.devices + self.fleet.idle_devices;
        devices
            .div_ceil(self.fleet.devices_per_user)
            .max(self.queries.users)
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_file_and_are_typed_like_toml() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(
            &file,
            "name = \"steady\"\nduration_secs = 60\n[fleet]\ndevices = 10\ntransport = \"https\"\n",
        )
        .unwrap();
        let scenario = Scenario::load(
            Some(&file),
            &[
                "fleet.devices=25".into(),
                "fleet.transport = mqtt".into(),
                "fleet.gates.person=true".into(),
                "cloud.url=http://127.0.0.1:8080".into(),
                "cloud.mqtt_url=mqtt://127.0.0.1:1883".into(),
                "cloud.restart_down_secs=1.5".into(),
            ],
        )
        .unwrap();
        assert_eq!(scenario.name, "steady");
        assert_eq!(scenario.duration_secs, 60.0);
        assert_eq!(scenario.fleet.devices, 25);
        assert_eq!(scenario.fleet.transport, Transport::Mqtt);
        assert!(scenario.fleet.gates.person);
        assert_eq!(scenario.cloud.restart_down_secs, 1.5);
        assert_eq!(scenario.fleet.fps, 1.0, "defaults stay");
        assert_eq!(scenario.user_count(), 3);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = Scenario::load(
            None,
            &[
                "duration_secs=0".into(),
                "fleet.fps=0".into(),
                "queries.label=\"Not A Label\"".into(),
            ],
        )
        .unwrap_err();
        let ScenarioError::Invalid(problems) = error else {
            panic!("{error}");
        };
        assert!(problems.len() >= 3, "{problems:?}");
        assert!(matches!(
            Scenario::load(None, &["fleet.devices".into()]),
            Err(ScenarioError::Override(_))
        ));
        assert!(matches!(
            Scenario::load(None, &["fleet.nonsense=1".into()]),
            Err(ScenarioError::Load(_))
        ));
    }

    #[test]
    fn the_person_gate_runs_beside_a_managed_cloud() {
        // The agents' person gate and the cloud's detector share the process's
        // one ONNX Runtime environment (lastseen_shared::onnx).
        let scenario = Scenario::load(None, &["fleet.gates.person=true".into()]).unwrap();
        assert!(scenario.fleet.gates.person && scenario.cloud.url.is_none());
    }

    #[test]
    fn a_restart_needs_a_managed_cloud_over_https() {
        let error = Scenario::load(
            None,
            &[
                "cloud.restart_at_secs=10".into(),
                "fleet.transport=mqtt".into(),
            ],
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("fleet.transport = \"https\""),
            "{error}"
        );
        let ok = Scenario::load(None, &["cloud.restart_at_secs=10".into()]).unwrap();
        assert_eq!(ok.cloud.restart_at_secs, Some(10.0));
    }

    #[test]
    fn every_scenario_file_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            Scenario::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 5, "{seen} scenario files");
    }
}
