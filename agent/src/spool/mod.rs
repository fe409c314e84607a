//! The spool: a bounded on-disk queue of the frames that passed the gates,
//! each kept until the cloud confirmed it.
//!
//! Layout under `spool.dir`:
//! - `frames/<seq, 20 digits>.frame`: one file per frame ([`record`] layout);
//! - `seq`: the first sequence number not yet reserved (decimal text);
//! - `quarantine/`: frame files that kept failing to read, set aside.
//!
//! Invariants and fsync policy:
//! - **A frame is spooled only once it is durable**: the record is written to
//!   `frames/.<seq>.tmp`, fsynced, renamed to its final name, and the
//!   directory is fsynced. A kill -9 or power loss leaves either the whole
//!   file or a temp file, which the next start deletes.
//! - **Removal is not fsynced.** A removal lost to a power cut only means the
//!   frame is sent again, and the cloud stores a `(device, seq)` once.
//! - **`seq` never repeats.** Sequence numbers are reserved in blocks of
//!   `spool.seq_block`: the `seq` file is rewritten (temp, fsync, rename,
//!   directory fsync) with the end of the new block *before* any number of it
//!   is used. After a crash the agent starts at the persisted end (skipping
//!   the unused rest of the block) or after the highest spooled frame,
//!   whichever is larger. Gaps are allowed, repeats are not.
//! - **The cloud's seqs count too.** A spool that was emptied or restored
//!   (a reflash, a new SD card, a backup) would number new frames under seqs
//!   the cloud already stored. The transports ask the cloud for the device's
//!   highest stored seq and [`Spool::raise_next_seq`] above it (durably,
//!   like a block); a spooled frame the cloud refuses as `seq_conflict` is
//!   [`Spool::renumber`]ed above it and sent again (counted in `renumbered`).
//! - **Bounded**: at most `max_frames` files and `max_bytes` bytes; a new
//!   frame that does not fit pushes out the oldest ones, counted in
//!   `spool_dropped`. The new frame is written (and fsynced) *before*
//!   anything is pushed out, so a write that fails (disk full) costs no
//!   older frame, and its temp file is deleted at once.
//! - **Never stuck on one file**: a frame file that fails to read
//!   `quarantine_after_read_errors` times in a row (an I/O error; a bad
//!   checksum is removed at once) is moved to `quarantine/`, counted in
//!   `spool_quarantined`, and the frames behind it go out.
//! - Frames go out oldest first (lowest seq).

mod handle;
pub mod record;

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::SpoolConfig;
use crate::counters::Counters;
use crate::frame::Outgoing;
pub use handle::SharedSpool;
pub use record::SpooledFrame;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the seq file {path} is not a number")]
    SeqFile { path: PathBuf },
    #[error("the spool's worker thread stopped")]
    Stopped,
    #[error("a frame of {bytes} bytes is larger than the whole spool (spool.max_bytes)")]
    TooLarge { bytes: u64 },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The spool's depth, readable without taking its lock.
#[derive(Debug, Default)]
pub struct SpoolGauge {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Debug)]
pub struct Spool {
    frames_dir: PathBuf,
    seq_path: PathBuf,
    max_frames: usize,
    max_bytes: u64,
    seq_block: u64,
    /// seq -> file size.
    entries: BTreeMap<u64, u64>,
    total_bytes: u64,
    next_seq: u64,
    /// Every seq below this is reserved on disk.
    reserved_until: u64,
    quarantine_dir: PathBuf,
    quarantine_after: u32,
    /// seq -> failed reads in a row.
    read_failures: HashMap<u64, u32>,
    counters: Arc<Counters>,
    gauge: Arc<SpoolGauge>,
}

impl Spool {
    /// Opens (or creates) the spool, cleaning up after a crash.
    pub fn open(config: &SpoolConfig, counters: Arc<Counters>) -> Result<Self, SpoolError> {
        let frames_dir = config.dir.join("frames");
        fs::create_dir_all(&frames_dir).map_err(io(&frames_dir))?;
        let mut entries = BTreeMap::new();
        for entry in fs::read_dir(&frames_dir).map_err(io(&frames_dir))? {
            let entry = entry.map_err(io(&frames_dir))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A write that never completed: the frame was never spooled.
                fs::remove_file(&path).map_err(io(&path))?;
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".frame")
                .and_then(|digits| digits.parse::<u64>().ok())
            else {
                continue;
            };
            let size = entry.metadata().map_err(io(&path))?.len();
            entries.insert(seq, size);
        }
        let seq_path = config.dir.join("seq");
        let persisted = match fs::read_to_string(&seq_path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| SpoolError::SeqFile {
                    path: seq_path.clone(),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&seq_path)(e)),
        };
        let after_spooled = entries.keys().next_back().map_or(0, |max| max + 1);
        let next_seq = persisted.max(after_spooled);
        let total_bytes = entries.values().sum();
        let spool = Self {
            frames_dir,
            seq_path,
            max_frames: config.max_frames,
            max_bytes: config.max_bytes,
            seq_block: config.seq_block,
            entries,
            total_bytes,
            next_seq,
            reserved_until: next_seq,
            quarantine_dir: config.dir.join("quarantine"),
            quarantine_after: config.quarantine_after_read_errors.max(1),
            read_failures: HashMap::new(),
            counters,
            gauge: Arc::new(SpoolGauge::default()),
        };
        spool.update_gauge();
        Ok(spool)
    }

    pub fn gauge(&self) -> Arc<SpoolGauge> {
        self.gauge.clone()
    }

    /// Writes the frame durably under a fresh seq, pushing out the oldest
    /// frames if the spool is full. Returns the seq.
    pub fn push(&mut self, frame: &Outgoing) -> Result<u64, SpoolError> {
        let seq = self.allocate_seq()?;
        let bytes = record::encode(&SpooledFrame {
            seq,
            captured_at: frame.captured_at,
            measurements: frame.measurements.clone(),
            jpeg: frame.jpeg.clone(),
        });
        self.store(seq, &bytes)?;
        Counters::inc(&self.counters.spooled);
        Ok(seq)
    }

    /// Writes a record under `seq`: to a temp file, fsynced, then room is
    /// made (oldest frames out), then renamed into place. Nothing is pushed
    /// out for a write that failed, and its temp file is removed.
    fn store(&mut self, seq: u64, bytes: &[u8]) -> Result<(), SpoolError> {
        let size = bytes.len() as u64;
        if size > self.max_bytes {
            return Err(SpoolError::TooLarge { bytes: size });
        }
        let tmp = self.frames_dir.join(format!(".{seq}.tmp"));
        let written = File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                file.sync_all()
            })
            .map_err(io(&tmp));
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp);
            return Err(error);
        }
        while self.entries.len() >= self.max_frames || self.total_bytes + size > self.max_bytes {
            let Some((&oldest, _)) = self.entries.first_key_value() else {
                break;
            };
            if self.remove(oldest)? {
                Counters::inc(&self.counters.spool_dropped);
                tracing::warn!(seq = oldest, "spool full: dropped the oldest frame");
            }
        }
        let path = self.path_of(seq);
        if let Err(error) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(io(&path)(error));
        }
        sync_dir(&self.frames_dir)?;
        self.entries.insert(seq, size);
        self.total_bytes += size;
        self.update_gauge();
        Ok(())
    }

    /// Numbers the next frames from `floor` on, if that is above the next
    /// seq (the cloud stored seqs up to `floor - 1`, e.g. before a reflash).
    /// Durable before it returns, like a block reservation. True if raised.
    pub fn raise_next_seq(&mut self, floor: u64) -> Result<bool, SpoolError> {
        if floor <= self.next_seq {
            return Ok(false);
        }
        self.write_seq_file(floor)?;
        tracing::info!(
            from = self.next_seq,
            to = floor,
            "next seq raised above the cloud's highest stored seq"
        );
        self.next_seq = floor;
        self.reserved_until = floor;
        Ok(true)
    }

    /// Moves a spooled frame to a fresh seq (above any floor raised before),
    /// for a frame the cloud refused because another frame has its seq.
    /// The new file is durable before the old one goes; a crash in between
    /// leaves both, and the old one is renumbered again (the frame may then
    /// be stored twice, never lost). `None` if the frame is gone or damaged.
    pub fn renumber(&mut self, seq: u64) -> Result<Option<u64>, SpoolError> {
        let Some(mut frame) = self.read(seq)? else {
            return Ok(None);
        };
        let new_seq = self.allocate_seq()?;
        frame.seq = new_seq;
        // The old copy makes no room for its own replacement.
        let old_size = self.entries.remove(&seq).unwrap_or(0);
        self.total_bytes -= old_size;
        if let Err(error) = self.store(new_seq, &record::encode(&frame)) {
            self.entries.insert(seq, old_size);
            self.total_bytes += old_size;
            return Err(error);
        }
        let old = self.path_of(seq);
        match fs::remove_file(&old) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // Out of the queue already; the next start renumbers it again.
            Err(error) => {
                tracing::warn!(seq, %error, "cannot remove a renumbered frame's old file")
            }
        }
        Counters::inc(&self.counters.renumbered);
        tracing::info!(
            seq,
            new_seq,
            "frame renumbered above the cloud's highest seq"
        );
        Ok(Some(new_seq))
    }

    /// Reads a spooled frame; `None` if it is gone (acked, or pushed out).
    /// A damaged file is removed and counted, and reads as `None`.
    pub fn read(&mut self, seq: u64) -> Result<Option<SpooledFrame>, SpoolError> {
        if !self.entries.contains_key(&seq) {
            return Ok(None);
        }
        let path = self.path_of(seq);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(seq);
                return Ok(None);
            }
            Err(e) => {
                let failures = self.read_failures.entry(seq).or_insert(0);
                *failures += 1;
                if *failures < self.quarantine_after {
                    return Err(io(&path)(e));
                }
                tracing::error!(seq, error = %e, failures = *failures, "spool file keeps failing to read: quarantined");
                self.quarantine(seq, &path);
                return Ok(None);
            }
        };
        self.read_failures.remove(&seq);
        match record::decode(&bytes) {
            Ok(frame) if frame.seq == seq => Ok(Some(frame)),
            outcome => {
                tracing::error!(seq, path = %path.display(), ?outcome, "damaged spool file removed");
                Counters::inc(&self.counters.spool_corrupt);
                self.remove(seq)?;
                Ok(None)
            }
        }
    }

    /// Deletes a frame (the cloud confirmed or refused it). False if it was not there.
    pub fn remove(&mut self, seq: u64) -> Result<bool, SpoolError> {
        if !self.entries.contains_key(&seq) {
            return Ok(false);
        }
        let path = self.path_of(seq);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        self.forget(seq);
        Ok(true)
    }

    /// Spooled seqs in sending order, starting after `after` (exclusive).
    pub fn seqs_after(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        let start = after.map_or(0, |s| s.saturating_add(1));
        if after == Some(u64::MAX) {
            return Vec::new();
        }
        self.entries
            .range(start..)
            .take(limit)
            .map(|(&s, _)| s)
            .collect()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.entries.contains_key(&seq)
    }

    pub fn depth(&self) -> usize {
        self.entries.len()
    }

    pub fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The seq the next frame will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn allocate_seq(&mut self) -> Result<u64, SpoolError> {
        if self.next_seq >= self.reserved_until {
            let until = self.next_seq.saturating_add(self.seq_block);
            self.write_seq_file(until)?;
            self.reserved_until = until;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Persists `until` as the first seq not reserved (temp, fsync, rename,
    /// directory fsync).
    fn write_seq_file(&self, until: u64) -> Result<(), SpoolError> {
        let tmp = self.seq_path.with_extension("tmp");
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(format!("{until}\n").as_bytes())
            .map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.seq_path).map_err(io(&self.seq_path))?;
        if let Some(dir) = self.seq_path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Sets an unreadable frame file aside in `quarantine/` (for someone to
    /// look at) and out of the queue. If even the move fails, the file stays
    /// where it is but is skipped until the next start.
    fn quarantine(&mut self, seq: u64, path: &Path) {
        let moved = fs::create_dir_all(&self.quarantine_dir)
            .and_then(|()| fs::rename(path, self.quarantine_dir.join(format!("{seq:020}.frame"))));
        if let Err(error) = moved {
            tracing::error!(seq, %error, "cannot move a spool file to quarantine: skipped until restart");
        }
        Counters::inc(&self.counters.spool_quarantined);
        self.read_failures.remove(&seq);
        self.forget(seq);
    }

    fn forget(&mut self, seq: u64) {
        if let Some(size) = self.entries.remove(&seq) {
            self.total_bytes -= size;
        }
        self.update_gauge();
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.frames_dir.join(format!("{seq:020}.frame"))
    }

    fn update_gauge(&self) {
        self.gauge
            .frames
            .store(self.entries.len() as u64, Ordering::Relaxed);
        self.gauge.bytes.store(self.total_bytes, Ordering::Relaxed);
    }
}

/// Makes a rename or a new file in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests;
