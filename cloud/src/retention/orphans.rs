//! The orphan sweep: images under `frames/` older than the grace period that
//! no frame points at.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Retention, RetentionError};
use crate::blob::{BlobKey, FRAMES_PREFIX};

/// What one orphan sweep saw and deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OrphanReport {
    pub listed: u64,
    pub deleted: u64,
}

impl Retention {
    /// Lists every frame image, a page at a time, and deletes those written
    /// before `now - orphan_grace` that no frame points at.
    pub async fn sweep_orphans(&self, now: DateTime<Utc>) -> Result<OrphanReport, RetentionError> {
        let grace = TimeDelta::from_std(self.settings.orphan_grace).unwrap_or(TimeDelta::MAX);
        let Some(written_before) = now.checked_sub_signed(grace) else {
            return Ok(OrphanReport::default());
        };
        let mut report = OrphanReport::default();
        let mut after: Option<BlobKey> = None;
        loop {
            let page = self
                .blobs
                .list(FRAMES_PREFIX, after.as_ref(), self.settings.batch as usize)
                .await?;
            let Some(last) = page.last() else {
                return Ok(report);
            };
            after = Some(last.key.clone());
            report.listed += page.len() as u64;
            let old: Vec<String> = page
                .iter()
                .filter(|entry| entry.modified < written_before)
                .map(|entry| entry.key.as_str().to_owned())
                .collect();
            if old.is_empty() {
                continue;
            }
            let orphans = self.store.unreferenced_blob_keys(&old).await?;
            if !orphans.is_empty() {
                tracing::info!(
                    count = orphans.len(),
                    "deleting images that no frame points at"
                );
            }
            report.deleted += self.delete_images(orphans).await;
        }
    }
}
