//! Retention: every user's frames brought within their limits, oldest first.

use chrono::{DateTime, TimeDelta, Utc};
use lastseen_shared::UserId;

use super::plan::frames_to_free;
use super::{Retention, RetentionError};
use crate::store::{AgedFrame, RetentionLimits};

/// What one retention pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub frames_deleted: u64,
    pub images_deleted: u64,
}

impl RetentionReport {
    fn add(&mut self, other: RetentionReport) {
        self.frames_deleted += other.frames_deleted;
        self.images_deleted += other.images_deleted;
    }
}

impl Retention {
    /// Applies every user's limits as of `now`.
    pub async fn enforce(&self, now: DateTime<Utc>) -> Result<RetentionReport, RetentionError> {
        let mut report = RetentionReport::default();
        let mut after = None;
        loop {
            let users = self
                .store
                .retention_subjects(after, self.settings.batch)
                .await?;
            let Some(last) = users.last() else {
                return Ok(report);
            };
            after = Some(last.user);
            for subject in &users {
                let limits = subject.limits.map_or(self.settings.defaults, |own| {
                    own.within(self.settings.defaults)
                });
                report.add(self.enforce_for(subject.user, limits, now).await?);
            }
        }
    }

    /// Applies `limits` to `user`'s frames: first the age, then the bytes.
    pub async fn enforce_for(
        &self,
        user: UserId,
        limits: RetentionLimits,
        now: DateTime<Utc>,
    ) -> Result<RetentionReport, RetentionError> {
        let mut report = RetentionReport::default();
        // A limit too far back for the calendar keeps everything.
        let cutoff = limits
            .max_age_days
            .and_then(|days| now.checked_sub_signed(TimeDelta::days(i64::from(days))));
        if let Some(cutoff) = cutoff {
            loop {
                let batch = self.oldest(user, Some(cutoff)).await?;
                report.add(self.delete(user, &batch).await?);
                if batch.len() < self.settings.batch as usize {
                    break;
                }
            }
        }
        if let Some(max_bytes) = limits.max_bytes {
            // Read once, then kept up to date from what each batch frees:
            // the total is a scan of the user's frames.
            let mut stored = self.store.stored_bytes(user).await?;
            while stored > max_bytes {
                let batch = self.oldest(user, None).await?;
                if batch.is_empty() {
                    break;
                }
                let (count, freed) = frames_to_free(&batch, stored - max_bytes);
                report.add(self.delete(user, &batch[..count]).await?);
                stored = stored.saturating_sub(freed);
            }
        }
        Ok(report)
    }

    async fn oldest(
        &self,
        user: UserId,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<AgedFrame>, RetentionError> {
        Ok(self
            .store
            .oldest_frames(user, before, self.settings.batch)
            .await?)
    }

    /// Rows first (one transaction), then the images they no longer need.
    async fn delete(
        &self,
        user: UserId,
        frames: &[AgedFrame],
    ) -> Result<RetentionReport, RetentionError> {
        if frames.is_empty() {
            return Ok(RetentionReport::default());
        }
        let ids: Vec<_> = frames.iter().map(|frame| frame.id).collect();
        let unreferenced = self.store.delete_frames(user, &ids).await?;
        let images_deleted = self.delete_images(unreferenced).await;
        tracing::debug!(user = %user, frames = ids.len(), images = images_deleted, "retention deleted frames");
        Ok(RetentionReport {
            frames_deleted: ids.len() as u64,
            images_deleted,
        })
    }
}
