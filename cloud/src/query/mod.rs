//! Answers to "where and when was X last seen?": last-seen lookups,
//! detection history with cursor pagination, single frames and their images.
//! Every call is scoped to the asking user's devices.

mod cache;
mod config;
pub mod cursor;
mod render;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, FrameId, Label, UserId};

pub use config::QueryConfig;
pub use cursor::CursorError;

use cache::{CopyCache, CopyKey};

use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::bounded::{BoundedWork, Busy, WorkLoad};
use crate::detect::ImageError;
use crate::metrics::CacheStats;
use crate::store::{
    Cursor, DetectionQuery, DetectionRow, FrameRecord, Sighting, Store, StoreError, StoredFrame,
};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Also what another user's frame looks like, so ids cannot be probed.
    #[error("not found")]
    NotFound,
    #[error("the label has never been seen")]
    NeverSeen,
    #[error(transparent)]
    Cursor(#[from] CursorError),
    #[error("limit must be from 1 to {0}")]
    Limit(u32),
    #[error("since must be before until")]
    EmptyRange,
    #[error("width must be from 1 to {0}")]
    Width(u32),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Blob(BlobError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("a blocking task failed: {0}")]
    Task(String),
}

impl From<BlobError> for QueryError {
    fn from(error: BlobError) -> Self {
        match error {
            // The row exists but its image is gone (retention, or a failed
            // write): to the client that frame has no image.
            BlobError::NotFound(_) => QueryError::NotFound,
            other => QueryError::Blob(other),
        }
    }
}

/// A listing request as the API receives it, before validation.
#[derive(Clone, Debug, Default)]
pub struct DetectionFilter {
    pub label: Option<Label>,
    pub device: Option<DeviceId>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct DetectionPage {
    pub items: Vec<DetectionRow>,
    /// Present when more rows may follow.
    pub next_cursor: Option<String>,
}

/// One page of a device's frames in `seq` order.
#[derive(Clone, Debug)]
pub struct DeviceFramesPage {
    pub items: Vec<FrameRecord>,
    /// Pass back as `after_seq` for the next page; None on the last one.
    pub next_after_seq: Option<u64>,
}

pub struct Sightings {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    default_page_size: u32,
    max_page_size: u32,
    max_image_pixels: u64,
    max_thumbnail_width: u32,
    /// Drawn or shrunk copies made at once: each decodes the frame (a
    /// thumbnail at reduced scale).
    renders: BoundedWork,
    /// Copies made recently, within `thumbnail_cache_bytes`.
    copies: CopyCache,
}

/// How `Sightings::image` shows a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageOptions {
    /// Draw the detections on it.
    pub boxes: bool,
    /// Shrink it to this many pixels wide (never enlarged).
    pub width: Option<u32>,
}

impl Sightings {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        config: &QueryConfig,
        max_image_pixels: u64,
    ) -> Self {
        Self {
            store,
            blobs,
            default_page_size: config.max_page_size.min(50),
            max_page_size: config.max_page_size,
            max_image_pixels,
            max_thumbnail_width: config.max_thumbnail_width,
            renders: BoundedWork::new(
                config.render_max_concurrent,
                Duration::from_millis(config.render_wait_ms),
            ),
            copies: CopyCache::new(config.thumbnail_cache_bytes),
        }
    }

    /// Renders running now and at most so far, for `/metrics`.
    pub fn render_load(&self) -> WorkLoad {
        self.renders.load()
    }

    /// The copy cache's hits, misses and size, for `/metrics`.
    pub fn copy_cache_stats(&self) -> CacheStats {
        self.copies.stats()
    }

    pub async fn last_seen(&self, owner: UserId, label: &Label) -> Result<Sighting, QueryError> {
        let mut rows = self.store.last_seen(owner, Some(label)).await?;
        rows.drain(..).next().ok_or(QueryError::NeverSeen)
    }

    pub async fn last_seen_all(&self, owner: UserId) -> Result<Vec<Sighting>, QueryError> {
        Ok(self.store.last_seen(owner, None).await?)
    }

    pub async fn detections(
        &self,
        owner: UserId,
        filter: DetectionFilter,
    ) -> Result<DetectionPage, QueryError> {
        let limit = self.page_limit(filter.limit)?;
        if let (Some(since), Some(until)) = (filter.since, filter.until)
            && since >= until
        {
            return Err(QueryError::EmptyRange);
        }
        let after = filter.cursor.as_deref().map(cursor::decode).transpose()?;
        let query = DetectionQuery {
            owner,
            label: filter.label,
            device: filter.device,
            since: filter.since,
            until: filter.until,
            after,
            limit,
        };
        let items = self.store.detections(&query).await?;
        let next_cursor = match items.last() {
            Some(last) if items.len() == limit as usize => Some(cursor::encode(&Cursor {
                captured_at: last.captured_at,
                detection_id: last.id,
            })),
            _ => None,
        };
        Ok(DetectionPage { items, next_cursor })
    }

    /// The frames of one of `owner`'s devices in `seq` order, strictly after
    /// `after_seq`: what a load test's ledger compares with what its devices
    /// were told was stored. Another owner's device is [`QueryError::NotFound`].
    pub async fn device_frames(
        &self,
        owner: UserId,
        device: DeviceId,
        after_seq: Option<u64>,
        limit: Option<u32>,
    ) -> Result<DeviceFramesPage, QueryError> {
        let limit = self.page_limit(limit)?;
        match self.store.device(device).await? {
            Some(record) if record.owner == owner => {}
            _ => return Err(QueryError::NotFound),
        }
        let items = self
            .store
            .frames_of_device(owner, device, after_seq, limit)
            .await?;
        let next_after_seq = match items.last() {
            Some(last) if items.len() == limit as usize => Some(last.seq),
            _ => None,
        };
        Ok(DeviceFramesPage {
            items,
            next_after_seq,
        })
    }

    fn page_limit(&self, limit: Option<u32>) -> Result<u32, QueryError> {
        let limit = limit.unwrap_or(self.default_page_size);
        if limit == 0 || limit > self.max_page_size {
            return Err(QueryError::Limit(self.max_page_size));
        }
        Ok(limit)
    }

    pub async fn frame(&self, owner: UserId, id: FrameId) -> Result<StoredFrame, QueryError> {
        self.store
            .frame_of_owner(owner, id)
            .await?
            .ok_or(QueryError::NotFound)
    }

    /// The stored JPEG, or a copy with the detections drawn on it and/or
    /// shrunk to a thumbnail.
    pub async fn image(
        &self,
        owner: UserId,
        id: FrameId,
        options: ImageOptions,
    ) -> Result<Bytes, QueryError> {
        if let Some(width) = options.width
            && (width == 0 || width > self.max_thumbnail_width)
        {
            return Err(QueryError::Width(self.max_thumbnail_width));
        }
        // Every request looks the frame up: another user's or a deleted
        // frame is not found, whatever the cache holds.
        let frame = self.frame(owner, id).await?;
        let key = BlobKey::from_stored(frame.frame.blob_key.clone());
        let width = options.width.filter(|&w| w < frame.frame.width);
        if !options.boxes && width.is_none() {
            return Ok(self.blobs.get(&key).await?);
        }
        let copy = CopyKey {
            frame: id,
            width,
            boxes: options.boxes,
        };
        if let Some(cached) = self.copies.get(&copy, false) {
            return Ok(cached);
        }
        let slot = self.renders.acquire().await?;
        // Made while this request waited for its slot?
        if let Some(cached) = self.copies.get(&copy, true) {
            return Ok(cached);
        }
        // Read under the slot, so waiting requests hold no image.
        let jpeg = self.blobs.get(&key).await?;
        let max_pixels = self.max_image_pixels;
        let boxes = if options.boxes {
            frame.detections
        } else {
            Vec::new()
        };
        let drawn = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            render::render(&jpeg, &boxes, width, max_pixels)
        })
        .await
        .map_err(|e| QueryError::Task(e.to_string()))??;
        let drawn = Bytes::from(drawn);
        self.copies.put(copy, drawn.clone());
        Ok(drawn)
    }
}
