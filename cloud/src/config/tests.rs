// figment::Jail fixes the closure type to return figment::Error, which is large.
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;

use super::*;
use crate::auth::{MAX_INVITE_DAYS, RegistrationMode};
use crate::mqtt::MqttMode;

fn problems(config: &Config) -> Vec<String> {
    match config.validate() {
        Err(ConfigError::Invalid(problems)) => problems,
        Ok(()) => Vec::new(),
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn defaults_are_valid() {
    assert!(Config::default().validate().is_ok());
}

#[test]
fn validate_reports_every_problem_at_once() {
    let mut config = Config::default();
    config.detect.queue_depth = 0;
    config.detect.workers = 0;
    config.detect.score_threshold = 2.0;
    config.auth.jwt_secret = Some(Secret::new("short"));
    assert_eq!(problems(&config).len(), 4, "{:?}", problems(&config));
}

#[test]
fn flags_override_file_which_overrides_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "cloud.toml",
            "bind = \"127.0.0.1:9000\"\nqueue_depth = 7\nlog = \"debug\"",
        )?;
        jail.set_env("LASTSEEN_QUEUE_DEPTH", "9");
        let flags = Overrides {
            log: Some("warn".into()),
            ..Overrides::default()
        };
        let config =
            Config::load(Some(Path::new("cloud.toml")), &flags).map_err(|e| e.to_string())?;
        assert_eq!(config.bind, SocketAddr::from(([127, 0, 0, 1], 9000)));
        assert_eq!(config.detect.queue_depth, 9);
        assert_eq!(config.log, "warn");
        Ok(())
    });
}

#[test]
fn unknown_keys_in_the_file_are_an_error() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("cloud.toml", "qeue_depth = 7")?;
        let result = Config::load(Some(Path::new("cloud.toml")), &Overrides::default());
        let Err(ConfigError::Load(error)) = result else {
            panic!("expected a load error, got {result:?}");
        };
        assert!(error.to_string().contains("qeue_depth"), "{error}");
        // A section table is no key of ours either: the keys are flat.
        jail.create_file("nested.toml", "[detect]\nqueue_depth = 7")?;
        let result = Config::load(Some(Path::new("nested.toml")), &Overrides::default());
        assert!(matches!(result, Err(ConfigError::Load(_))));
        Ok(())
    });
}

#[test]
fn every_section_reads_its_keys_from_file_and_environment() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "cloud.toml",
            "live_max_pending = 3\nhttp_max_connections = 5\nmetrics_token = \"0123456789abcdef\"\n\
             detect_workers = 3\nmqtt = \"off\"\nmqtt_topic_prefix = \"a/b\"\ndb_max_connections = 2",
        )?;
        jail.set_env("LASTSEEN_MQTT_SHARED_GROUP", "nodes");
        jail.set_env("LASTSEEN_DETECT_ENABLED", "false");
        jail.set_env("LASTSEEN_MAX_PAGE_SIZE", "7");
        let config = Config::load(Some(Path::new("cloud.toml")), &Overrides::default())
            .map_err(|e| e.to_string())?;
        assert_eq!(config.live.max_pending, 3);
        assert_eq!(config.serve.max_connections, 5);
        assert_eq!(config.metrics.token, Some(Secret::new("0123456789abcdef")));
        assert_eq!(config.detect.workers, 3);
        assert!(!config.detect.enabled);
        assert_eq!(config.mqtt.mode, MqttMode::Off);
        assert_eq!(config.mqtt.topic_prefix, "a/b");
        assert_eq!(config.mqtt.shared_group, "nodes");
        assert_eq!(config.store.db_max_connections, 2);
        assert_eq!(config.query.max_page_size, 7);
        Ok(())
    });
}

#[test]
fn every_config_file_under_deploy_parses() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let files: Vec<_> = std::fs::read_dir(&deploy)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    assert!(!files.is_empty(), "no config files in {}", deploy.display());
    // Secrets are not in the files: deploy/compose.yaml passes them in the environment.
    figment::Jail::expect_with(|jail| {
        jail.set_env("LASTSEEN_S3_SECRET_ACCESS_KEY", "from-the-environment");
        jail.set_env("LASTSEEN_MQTT_PASSWORD", "from-the-environment");
        for file in &files {
            let config = Config::load(Some(file), &Overrides::default());
            assert!(config.is_ok(), "{}: {:?}", file.display(), config.err());
        }
        Ok(())
    });
}

/// The reference table in docs/configuration.md names every key, and only keys.
#[test]
fn the_configuration_reference_lists_every_key() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let text = std::fs::read_to_string(&doc).unwrap();
    let mut documented = BTreeSet::new();
    for row in text.lines().filter(|line| line.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap_or_default();
        documented.extend(first_cell.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    let keys = Config::keys();
    let missing: Vec<_> = keys.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&keys).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md: missing {missing:?}, not settings {unknown:?}"
    );
}

#[test]
fn retention_and_maintenance_settings_are_checked() {
    let mut config = Config::default();
    config.retention.retention_days = Some(0);
    config.retention.retention_max_bytes = Some(0);
    config.retention.maintenance_interval_secs = 0;
    config.retention.maintenance_batch = 0;
    config.ingest.unchanged_min_iou = 0.0;
    assert_eq!(problems(&config).len(), 5, "{:?}", problems(&config));
    let mut config = Config::default();
    config.retention.retention_days = Some(30);
    config.retention.retention_max_bytes = Some(1 << 30);
    assert!(config.validate().is_ok());
    // Both off by default: nothing is deleted unless someone asks.
    assert_eq!(Config::default().retention.retention_days, None);
    assert_eq!(Config::default().retention.retention_max_bytes, None);
}

#[test]
fn admission_quota_and_skew_settings_are_checked() {
    let mut config = Config::default();
    config.ingest.admit_device_pixels_per_sec = 0;
    config.ingest.admit_owner_burst_pixels = 1000;
    config.ingest.admit_min_frame_pixels = u64::MAX;
    config.ingest.user_quota_bytes = Some(0);
    config.ingest.user_quota_refresh_secs = 0;
    config.ingest.clock_skew_flag_secs = 1;
    assert_eq!(problems(&config).len(), 6, "{:?}", problems(&config));
    // The defaults let the largest allowed frame through, and set no quota.
    let defaults = Config::default().ingest;
    assert!(defaults.admit_device_burst_pixels >= defaults.max_image_pixels);
    assert!(defaults.admit_owner_burst_pixels >= defaults.max_image_pixels);
    assert_eq!(defaults.user_quota_bytes, None);
    figment::Jail::expect_with(|jail| {
        jail.set_env("LASTSEEN_USER_QUOTA_BYTES", "5000000000");
        jail.set_env("LASTSEEN_ADMIT_DEVICE_PIXELS_PER_SEC", "1000000");
        let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(config.ingest.user_quota_bytes, Some(5_000_000_000));
        assert_eq!(config.ingest.admit_device_pixels_per_sec, 1_000_000);
        Ok(())
    });
}

#[test]
fn retention_comes_from_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LASTSEEN_RETENTION_DAYS", "14");
        jail.set_env("LASTSEEN_RETENTION_MAX_BYTES", "5000000000");
        jail.set_env("LASTSEEN_SKIP_UNCHANGED_IMAGES", "false");
        let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(config.retention.retention_days, Some(14));
        assert_eq!(config.retention.retention_max_bytes, Some(5_000_000_000));
        assert!(!config.ingest.skip_unchanged_images);
        Ok(())
    });
}

#[test]
fn registration_is_one_of_three_modes_from_file_environment_or_flag() {
    assert_eq!(Config::default().auth.registration, RegistrationMode::Open);
    figment::Jail::expect_with(|jail| {
        jail.create_file("cloud.toml", "registration = \"invite\"")?;
        let file = Some(Path::new("cloud.toml"));
        let config = Config::load(file, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(config.auth.registration, RegistrationMode::Invite);
        jail.create_file("typo.toml", "registration = \"invites\"")?;
        let typo = Config::load(Some(Path::new("typo.toml")), &Overrides::default());
        assert!(matches!(typo, Err(ConfigError::Load(_))));
        jail.set_env("LASTSEEN_REGISTRATION", "closed");
        let config = Config::load(file, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(config.auth.registration, RegistrationMode::Closed);
        let flags = Overrides {
            registration: Some(RegistrationMode::Open),
            ..Overrides::default()
        };
        let config = Config::load(file, &flags).map_err(|e| e.to_string())?;
        assert_eq!(config.auth.registration, RegistrationMode::Open);
        Ok(())
    });
    for days in [0, MAX_INVITE_DAYS + 1] {
        let mut config = Config::default();
        config.auth.invite_ttl_days = days;
        assert!(config.validate().is_err(), "{days}");
    }
}

#[test]
fn operator_commands_take_the_flags_before_them() {
    use clap::Parser;
    let cli = Cli::try_parse_from([
        "lastseen-cloud",
        "--database-url",
        "postgres://db/lastseen",
        "add-user",
        "--username",
        "alice",
    ])
    .unwrap();
    assert_eq!(
        cli.overrides.database_url.as_deref(),
        Some("postgres://db/lastseen")
    );
    assert!(matches!(cli.command, Some(Command::AddUser { username }) if username == "alice"));
    // There is no way to pass a password on the command line.
    assert!(
        Cli::try_parse_from([
            "lastseen-cloud",
            "add-user",
            "--username",
            "a",
            "--password",
            "x"
        ])
        .is_err()
    );
    let cli = Cli::try_parse_from(["lastseen-cloud", "invite", "--expires-days", "3"]).unwrap();
    assert!(matches!(
        cli.command,
        Some(Command::Invite {
            expires_days: Some(3)
        })
    ));
    assert!(Cli::try_parse_from(["lastseen-cloud", "invite", "--expires-days", "0"]).is_err());
    assert!(
        Cli::try_parse_from(["lastseen-cloud"])
            .unwrap()
            .command
            .is_none()
    );
}

#[test]
fn secrets_do_not_print() {
    let mut config = Config::default();
    config.auth.jwt_secret = Some(Secret::new("x".repeat(40)));
    assert!(!format!("{config:?}").contains("xxxx"));
}

#[test]
fn an_s3_bucket_needs_both_keys() {
    let mut config = Config::default();
    config.blob.s3_bucket = Some("lastseen-frames".into());
    assert_eq!(
        problems(&config),
        [
            "s3_access_key_id is required with s3_bucket",
            "s3_secret_access_key is required with s3_bucket"
        ]
    );
    config.blob.s3_access_key_id = Some("minio".into());
    config.blob.s3_secret_access_key = Some(Secret::new("minio-secret"));
    assert!(config.validate().is_ok());
    // A bucket shared by several nodes is production storage.
    assert!(!config.uses_embedded_storage());
    assert!(Config::default().uses_embedded_storage());
}

#[test]
fn s3_bucket_names_and_endpoints_are_checked() {
    for bad in ["ab", "Frames", "-frames", "frames-", "fr_ames", "a/b"] {
        let mut config = Config::default();
        config.blob.s3_bucket = Some(bad.into());
        config.blob.s3_access_key_id = Some("k".into());
        config.blob.s3_secret_access_key = Some(Secret::new("s"));
        assert!(config.validate().is_err(), "{bad}");
    }
    let mut config = Config::default();
    config.blob.s3_endpoint = Some("127.0.0.1:9000".into());
    assert!(config.validate().is_err());
}

#[test]
fn s3_settings_come_from_the_environment() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("LASTSEEN_S3_BUCKET", "frames");
        jail.set_env("LASTSEEN_S3_ENDPOINT", "http://127.0.0.1:9000");
        jail.set_env("LASTSEEN_S3_ACCESS_KEY_ID", "minio");
        jail.set_env("LASTSEEN_S3_SECRET_ACCESS_KEY", "minio-secret");
        jail.set_env("LASTSEEN_S3_CREATE_BUCKET", "true");
        let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        let blob = &config.blob;
        assert_eq!(blob.s3_bucket.as_deref(), Some("frames"));
        assert_eq!(blob.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(blob.s3_secret_access_key, Some(Secret::new("minio-secret")));
        assert!(blob.s3_create_bucket && blob.s3_path_style);
        assert!(!format!("{config:?}").contains("minio-secret"));
        Ok(())
    });
}

#[test]
fn the_device_key_secret_is_checked_and_comes_from_the_environment() {
    let mut config = Config::default();
    config.auth.device_key_secret = Some(Secret::new("short"));
    config.auth.device_key_secret_file = Some("device.key".into());
    assert_eq!(
        problems(&config),
        [
            "set device_key_secret or device_key_secret_file, not both",
            "device_key_secret must be at least 32 bytes"
        ]
    );
    let same = Secret::new("s".repeat(40));
    let mut config = Config::default();
    config.auth.jwt_secret = Some(same.clone());
    config.auth.device_key_secret = Some(same);
    assert_eq!(
        problems(&config),
        ["device_key_secret must differ from jwt_secret (keep the two keys apart)"]
    );
    figment::Jail::expect_with(|jail| {
        jail.set_env("LASTSEEN_DEVICE_KEY_SECRET", "d".repeat(40));
        let config = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
        assert_eq!(
            config.auth.device_key_secret,
            Some(Secret::new("d".repeat(40)))
        );
        assert!(!format!("{config:?}").contains("dddd"));
        Ok(())
    });
}
