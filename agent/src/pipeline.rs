//! The processing stage: gates, encode, spool, on a thread of its own (all of
//! it is CPU work or blocking disk I/O with fsync).

use std::sync::Arc;

use lastseen_shared::GateSettings;
use tokio::sync::{mpsc, watch};

use crate::counters::Counters;
use crate::encode::Encoder;
use crate::frame::{Frame, Outgoing};
use crate::gate::{Decision, Gates};
use crate::spool::SharedSpool;

pub struct Stage {
    pub gates: Gates,
    pub encoder: Encoder,
    pub spool: Arc<SharedSpool>,
    pub settings: watch::Receiver<GateSettings>,
    pub counters: Arc<Counters>,
}

impl Stage {
    /// Runs until the capture side closes the channel.
    pub fn run(mut self, mut frames: mpsc::Receiver<Frame>) {
        while let Some(frame) = frames.blocking_recv() {
            self.process(&frame);
        }
    }

    /// One frame through the gates; a survivor is encoded and spooled.
    pub fn process(&mut self, frame: &Frame) -> Option<u64> {
        // Settings from the cloud apply from the next frame on.
        let settings = self.settings.borrow_and_update().clone();
        let Decision::Send {
            measurements,
            heartbeat,
        } = self.gates.decide(frame, &settings)
        else {
            return None;
        };
        let jpeg = match self.encoder.encode(frame) {
            Ok(jpeg) => jpeg,
            Err(error) => {
                Counters::inc(&self.counters.spool_errors);
                tracing::error!(%error, "cannot encode a frame that passed the gates");
                return None;
            }
        };
        let outgoing = Outgoing {
            captured_at: frame.captured_at,
            jpeg,
            measurements,
        };
        match self.spool.push(&outgoing) {
            Ok(seq) => {
                tracing::debug!(seq, heartbeat, bytes = outgoing.jpeg.len(), "spooled");
                Some(seq)
            }
            Err(error) => {
                Counters::inc(&self.counters.spool_errors);
                tracing::error!(%error, "cannot spool a frame that passed the gates");
                None
            }
        }
    }
}
