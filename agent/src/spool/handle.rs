//! The spool shared between the pipeline thread (writes) and the transport
//! (reads and removes), with a wake-up for new frames.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::{Spool, SpoolError, SpoolGauge, SpooledFrame};
use crate::frame::Outgoing;

#[derive(Debug)]
pub struct SharedSpool {
    spool: Mutex<Spool>,
    gauge: Arc<SpoolGauge>,
    added: Notify,
}

impl SharedSpool {
    pub fn new(spool: Spool) -> Arc<Self> {
        Arc::new(Self {
            gauge: spool.gauge(),
            spool: Mutex::new(spool),
            added: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Spool> {
        // A panic while holding the lock leaves the index as consistent as
        // the files (each operation updates the index after the disk).
        self.spool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Blocking: writes and fsyncs. Called from the pipeline thread.
    pub fn push(&self, frame: &Outgoing) -> Result<u64, SpoolError> {
        let seq = self.lock().push(frame)?;
        self.added.notify_one();
        Ok(seq)
    }

    pub fn gauge(&self) -> &SpoolGauge {
        &self.gauge
    }

    /// Up to `limit` spooled seqs after `after`, oldest first (no disk access).
    pub fn seqs_after(&self, after: Option<u64>, limit: usize) -> Vec<u64> {
        self.lock().seqs_after(after, limit)
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.lock().contains(seq)
    }

    /// Waits until a frame is pushed (or was pushed since the last wait).
    pub async fn added(&self) {
        self.added.notified().await;
    }

    pub async fn read(self: &Arc<Self>, seq: u64) -> Result<Option<SpooledFrame>, SpoolError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.lock().read(seq))
            .await
            .map_err(|_| SpoolError::Stopped)?
    }

    /// Numbers the next frames from `floor` on if that is higher (durably).
    pub async fn raise_next_seq(self: &Arc<Self>, floor: u64) -> Result<bool, SpoolError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.lock().raise_next_seq(floor))
            .await
            .map_err(|_| SpoolError::Stopped)?
    }

    /// Moves a spooled frame to a fresh seq; see [`Spool::renumber`].
    pub async fn renumber(self: &Arc<Self>, seq: u64) -> Result<Option<u64>, SpoolError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.lock().renumber(seq))
            .await
            .map_err(|_| SpoolError::Stopped)?
    }

    /// Removes confirmed frames; returns those of `seqs` that were still there.
    pub async fn remove(self: &Arc<Self>, seqs: Vec<u64>) -> Result<Vec<u64>, SpoolError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut spool = this.lock();
            let mut removed = Vec::with_capacity(seqs.len());
            for seq in seqs {
                if spool.remove(seq)? {
                    removed.push(seq);
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|_| SpoolError::Stopped)?
    }
}
