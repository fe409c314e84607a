//! The queries' settings: page sizes and the rendering of images.

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct QueryConfig {
    /// Largest `limit` a listing accepts.
    pub max_page_size: u32,
    /// Widest thumbnail `GET /frames/{id}/image?width=` makes.
    pub max_thumbnail_width: u32,
    /// Drawn or shrunk images (`?boxes=`, `?width=`) made at once (each
    /// decodes the frame, a thumbnail at 1/2, 1/4 or 1/8 scale), and how
    /// long a request waits for a slot before 503.
    pub render_max_concurrent: usize,
    pub render_wait_ms: u64,
    /// Bytes of drawn or shrunk images kept in memory (least recently used
    /// out first), so asking again does not render again; 0 keeps none.
    pub thumbnail_cache_bytes: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_page_size: 500,
            max_thumbnail_width: 1280,
            render_max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            render_wait_ms: 2000,
            thumbnail_cache_bytes: 64 * 1024 * 1024,
        }
    }
}

impl QueryConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(self.max_page_size >= 1, "max_page_size must be at least 1");
        problems.check(
            self.max_thumbnail_width >= 16,
            "max_thumbnail_width must be at least 16",
        );
        problems.check(
            self.render_max_concurrent >= 1,
            "render_max_concurrent must be at least 1",
        );
    }
}
