//! `[encode]`, `[spool]` and `[metrics]`: what the device does with a frame
//! that passed the gates, and what it reports about itself.

use std::net::SocketAddr;
use std::path::PathBuf;

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// Frames larger than this (width or height) are scaled down before sending.
    pub max_side: u32,
    /// JPEG quality (1-100) of re-encoded frames.
    pub jpeg_quality: u8,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        Self {
            max_side: 1280,
            jpeg_quality: 80,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the on-disk queue (and the persisted seq).
    pub dir: PathBuf,
    /// Frames kept at most; when full the oldest is dropped (and counted).
    pub max_frames: usize,
    /// Bytes kept at most, likewise.
    pub max_bytes: u64,
    /// Sequence numbers reserved per fsync of the seq file.
    pub seq_block: u64,
    /// A frame file that fails to read this many times (an I/O error, not
    /// a bad checksum) is moved to `quarantine/` beside `frames/` and
    /// counted in `spool_quarantined`, so it never blocks the frames behind it.
    pub quarantine_after_read_errors: u32,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("spool"),
            max_frames: 10_000,
            max_bytes: 1024 * 1024 * 1024,
            seq_block: 1000,
            quarantine_after_read_errors: 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text) at all.
    pub enabled: bool,
    /// Where `/metrics` is served (port 0 = any free port).
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl EncodeConfig {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(self.max_side >= 16, "encode.max_side must be at least 16");
        problems.check(
            (1..=100).contains(&self.jpeg_quality),
            "encode.jpeg_quality must be within 1-100",
        );
    }
}

impl SpoolConfig {
    pub(super) fn check(&self, problems: &mut Problems) {
        problems.check(self.max_frames >= 1, "spool.max_frames must be at least 1");
        problems.check(
            self.max_bytes >= 64 * 1024,
            "spool.max_bytes must be at least 65536",
        );
        problems.check(self.seq_block >= 1, "spool.seq_block must be at least 1");
        problems.check(
            self.quarantine_after_read_errors >= 1,
            "spool.quarantine_after_read_errors must be at least 1",
        );
    }
}
