//! `[source]`: where frames come from.

use std::path::PathBuf;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Dir,
    Http,
    V4l2,
    #[default]
    Synthetic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceConfig {
    pub kind: SourceKind,
    /// Frames per second taken from the source.
    pub fps: f64,
    /// `dir`: the directory whose `.jpg`/`.jpeg`/`.png` files are replayed in name order.
    pub path: Option<PathBuf>,
    /// `dir`: start again from the first file after the last one.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// `http`: the snapshot URL (most IP cameras serve one JPEG per GET).
    pub url: Option<String>,
    /// `http`: seconds one snapshot request may take.
    pub timeout_secs: u64,
    /// `http`: the largest snapshot read, in bytes; a larger one is a
    /// capture error (counted in `snapshots_too_large`), never read whole.
    pub max_snapshot_bytes: u64,
    /// `v4l2`: the camera device.
    pub device: PathBuf,
    /// `v4l2` and `synthetic`: frame size.
    pub width: u32,
    pub height: u32,
    /// `synthetic` and `dir`: stop after this many frames (0 = no limit).
    pub max_frames: u64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            kind: SourceKind::Synthetic,
            fps: 5.0,
            path: None,
            looping: false,
            url: None,
            timeout_secs: 10,
            max_snapshot_bytes: 16 * 1024 * 1024,
            device: PathBuf::from("/dev/video0"),
            width: 640,
            height: 360,
            max_frames: 0,
        }
    }
}

impl SourceConfig {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(
            self.fps.is_finite() && self.fps > 0.0 && self.fps <= 120.0,
            "source.fps must be above 0 and at most 120",
        );
        match self.kind {
            SourceKind::Dir => problems.check(
                self.path.is_some(),
                "source.path is required with kind = \"dir\"",
            ),
            SourceKind::Http => problems.check(
                self.url
                    .as_deref()
                    .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://")),
                "source.url (http:// or https://) is required with kind = \"http\"",
            ),
            SourceKind::V4l2 => problems.check(
                cfg!(feature = "camera"),
                "source kind \"v4l2\" needs an agent built with the `camera` feature",
            ),
            SourceKind::Synthetic => {}
        }
        problems.check(
            self.timeout_secs >= 1,
            "source.timeout_secs must be at least 1",
        );
        problems.check(
            (16..=8192).contains(&self.width) && (16..=8192).contains(&self.height),
            "source.width and source.height must be within 16-8192",
        );
        problems.check(
            self.max_snapshot_bytes >= 1024,
            "source.max_snapshot_bytes must be at least 1024",
        );
    }
}
