//! Maintenance of stored frames: retention per user, and the sweep of
//! orphaned images, run together by one background task.
//!
//! Retention keeps each user's frames within their limits (days and/or
//! bytes): the configured defaults, or the user's own when they set some,
//! each no looser than the configured one (the operator's limits are upper
//! bounds: [`RetentionLimits::within`]).
//! It deletes the oldest frames first, a bounded batch per transaction
//! ([`RetentionStore::delete_frames`], which also repairs `last_seen`), then the
//! images no remaining frame points at. Frames of an unchanged scene share
//! one image, so an image goes with the last frame pointing at it.
//!
//! The orphan sweep deletes images older than a grace period that no frame
//! points at: the blob is written before its rows, so a crash in between
//! (or a failed delete after the rows went) leaves one behind. One window
//! stays open: a device that resends such a frame right between the sweep's
//! check and its delete loses the image again (the frame keeps its rows and
//! answers "no image"); the grace period makes that a resend hours late.

mod config;
mod orphans;
mod plan;
mod sweep;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lastseen_shared::UserId;

use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::store::{RetentionLimits, RetentionStore, StoreError};

pub use config::RetentionConfig;
pub use orphans::OrphanReport;
pub use sweep::RetentionReport;

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("{0}")]
    InvalidLimits(&'static str),
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// The settings of the maintenance task (see the `retention_*`,
/// `maintenance_*` and `orphan_grace_secs` config keys).
#[derive(Clone, Debug)]
pub struct MaintenanceSettings {
    /// What applies to a user who did not set their own limits, and the
    /// upper bound of what one who did may have.
    pub defaults: RetentionLimits,
    /// Frames per deletion transaction, and blobs per listed page.
    pub batch: u32,
    pub orphan_grace: Duration,
}

/// Where a user's limits come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsSource {
    /// The configured defaults.
    Default,
    /// The user's own, each no looser than the configured ones.
    User,
}

/// The limits that apply to a user, and how much their images take now.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRetention {
    pub limits: RetentionLimits,
    pub source: LimitsSource,
    pub stored_bytes: u64,
}

/// Largest byte limit: the databases keep it as a signed 64-bit integer.
const MAX_BYTES_LIMIT: u64 = i64::MAX as u64;

pub struct Retention {
    store: Arc<dyn RetentionStore>,
    blobs: Arc<dyn BlobStore>,
    settings: MaintenanceSettings,
}

impl Retention {
    pub fn new(
        store: Arc<dyn RetentionStore>,
        blobs: Arc<dyn BlobStore>,
        settings: MaintenanceSettings,
    ) -> Self {
        Self {
            store,
            blobs,
            settings,
        }
    }

    /// The limits that apply to `user` now.
    pub async fn of_user(&self, user: UserId) -> Result<UserRetention, RetentionError> {
        let own = self.store.retention_of(user).await?;
        let stored_bytes = self.store.stored_bytes(user).await?;
        Ok(UserRetention {
            limits: own.map_or(self.settings.defaults, |own| {
                own.within(self.settings.defaults)
            }),
            source: if own.is_some() {
                LimitsSource::User
            } else {
                LimitsSource::Default
            },
            stored_bytes,
        })
    }

    /// Sets the user's own limits (None in a field: no limit), or with
    /// `None` goes back to the defaults. Takes effect at the next sweep.
    pub async fn set_for_user(
        &self,
        user: UserId,
        limits: Option<RetentionLimits>,
    ) -> Result<UserRetention, RetentionError> {
        if let Some(limits) = &limits {
            if limits.max_age_days == Some(0) {
                return Err(RetentionError::InvalidLimits(
                    "max_age_days must be at least 1, or null to keep frames whatever their age",
                ));
            }
            if limits
                .max_bytes
                .is_some_and(|bytes| !(1..=MAX_BYTES_LIMIT).contains(&bytes))
            {
                return Err(RetentionError::InvalidLimits(
                    "max_bytes must be between 1 and 2^63-1, or null for no limit",
                ));
            }
        }
        if !self.store.set_retention_of(user, limits).await? {
            return Err(RetentionError::NotFound);
        }
        self.of_user(user).await
    }

    /// One maintenance run: retention for every user, then the orphan sweep.
    /// A failure stops this run; the next one starts over.
    pub async fn run_once(&self) -> Result<(RetentionReport, OrphanReport), RetentionError> {
        let retention = self.enforce(Utc::now()).await?;
        let orphans = self.sweep_orphans(Utc::now()).await?;
        Ok((retention, orphans))
    }

    /// Runs [`Retention::run_once`] every `interval`, the first time right away.
    #[tracing::instrument(name = "maintenance", skip(self))]
    pub async fn run_every(self: Arc<Self>, interval: Duration) {
        let mut every = tokio::time::interval(interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.run_once().await {
                Ok((retention, orphans)) => tracing::info!(
                    frames = retention.frames_deleted,
                    images = retention.images_deleted,
                    orphans = orphans.deleted,
                    "maintenance done"
                ),
                Err(error) => {
                    tracing::warn!(error = ?error, "maintenance failed; retrying at the next run")
                }
            }
        }
    }

    /// Deletes images whose rows are gone. A failure is logged and left to
    /// the orphan sweep, which finds the image again.
    async fn delete_images(&self, keys: Vec<String>) -> u64 {
        let mut deleted = 0;
        for key in keys {
            match self.blobs.delete(&BlobKey::from_stored(key)).await {
                Ok(()) => deleted += 1,
                Err(error) => {
                    tracing::warn!(%error, "an image outlived its frames; the orphan sweep will retry")
                }
            }
        }
        deleted
    }
}
