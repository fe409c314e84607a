//! The retention defaults and the maintenance task's pace.

use std::time::Duration;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

use super::MaintenanceSettings;
use crate::store::RetentionLimits;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Default retention: frames received more than this many days ago are
    /// deleted (rows and images). Unset keeps them; a user may set their own.
    pub retention_days: Option<u32>,
    /// Default retention: the oldest frames are deleted while a user's images
    /// take more than this many bytes. Unset is no limit.
    pub retention_max_bytes: Option<u64>,
    /// Seconds between two runs of the maintenance task (retention, then the
    /// orphan-image sweep).
    pub maintenance_interval_secs: u64,
    /// Frames deleted per transaction, and blobs listed per page, by the
    /// maintenance task.
    pub maintenance_batch: u32,
    /// Images younger than this many seconds are never swept as orphans: their
    /// rows may still be on the way.
    pub orphan_grace_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            retention_days: None,
            retention_max_bytes: None,
            maintenance_interval_secs: 3600,
            maintenance_batch: 500,
            orphan_grace_secs: 3600,
        }
    }
}

impl RetentionConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.retention_days.is_none_or(|days| days >= 1),
            "retention_days must be at least 1 (or unset to keep frames)",
        );
        problems.check(
            self.retention_max_bytes
                .is_none_or(|bytes| (1..=i64::MAX as u64).contains(&bytes)),
            "retention_max_bytes must be between 1 and 2^63-1 (or unset for no limit)",
        );
        problems.check(
            self.maintenance_interval_secs >= 1,
            "maintenance_interval_secs must be at least 1",
        );
        problems.check(
            (1..=10_000).contains(&self.maintenance_batch),
            "maintenance_batch must be between 1 and 10000",
        );
    }

    pub fn maintenance(&self) -> MaintenanceSettings {
        MaintenanceSettings {
            defaults: RetentionLimits {
                max_age_days: self.retention_days,
                max_bytes: self.retention_max_bytes,
            },
            batch: self.maintenance_batch,
            orphan_grace: Duration::from_secs(self.orphan_grace_secs),
        }
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.maintenance_interval_secs)
    }
}
