//! What the cloud sends the device: acks that settle frames (and may carry
//! the device's highest seq in the cloud), and gate settings. With a keyed
//! token, both must be signed with the device's key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lastseen_shared::signed::{self, SignedKind};
use lastseen_shared::{Ack, GateSettings};

use super::link::Link;
use super::{InFlight, Mqtt, Published};
use crate::counters::Counters;
use crate::delivery::DeliveryOutcome;
use crate::transport::SEQ_CONFLICT;

/// When each published, unconfirmed frame was captured, for its delivery
/// report. Unlike [`InFlight`] it survives ack timeouts and reconnects, so a
/// late ack is still reported; kept only while someone listens for reports.
#[derive(Debug, Default)]
pub(super) struct Unconfirmed(pub(super) BTreeMap<u64, DateTime<Utc>>);

impl Mqtt {
    /// Settles the frames an ack names; false if it did not verify.
    pub(super) async fn on_ack(
        &self,
        link: &Link,
        payload: &[u8],
        in_flight: &mut InFlight,
        published: &mut Published,
        unconfirmed: &mut Unconfirmed,
    ) -> bool {
        let body = match signed::open(link.key.as_ref(), SignedKind::Ack, self.ctx.device, payload)
        {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "ignoring an ack that does not verify");
                Counters::inc(&self.ctx.counters.unverified_messages);
                return false;
            }
        };
        let ack: Ack = match serde_json::from_slice(body) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(%error, "ignoring a malformed ack");
                return true;
            }
        };
        // Raises the floor only, so a replayed ack is harmless.
        if let Some(highest_seq) = ack.highest_seq {
            self.ctx.continue_above(highest_seq).await;
        }
        let (mut ack, ignored) = published.settle(ack);
        if ignored > 0 {
            // Resends answered twice, or a replayed or made-up ack.
            tracing::debug!(ignored, "ack names frames not published in this run");
            Counters::add(&self.ctx.counters.acks_ignored, ignored as u64);
        }
        // Not refused for good: another frame has the seq in the cloud.
        let (conflicts, refusals): (Vec<_>, Vec<_>) = ack
            .rejected
            .into_iter()
            .partition(|rejected| rejected.code == SEQ_CONFLICT);
        ack.rejected = refusals;
        for conflict in conflicts {
            in_flight.settle(conflict.seq);
            unconfirmed.0.remove(&conflict.seq);
            if let Some(new_seq) = self.ctx.renumber(conflict.seq).await {
                tracing::warn!(
                    seq = conflict.seq,
                    new_seq,
                    "the cloud has another frame under this seq: sent again under a new one"
                );
            }
        }
        for rejected in &ack.rejected {
            tracing::warn!(
                seq = rejected.seq,
                code = rejected.code,
                message = rejected.message,
                "the cloud refused a frame for good"
            );
        }
        let acked: Vec<u64> = ack.acked.clone();
        let refused: Vec<u64> = ack.rejected.iter().map(|r| r.seq).collect();
        for seq in acked.iter().chain(&refused) {
            in_flight.settle(*seq);
        }
        match self.ctx.spool.remove(acked.clone()).await {
            Ok(removed) => {
                Counters::add(&self.ctx.counters.acked, removed.len() as u64);
                self.report(unconfirmed, &removed, |_| DeliveryOutcome::Acked);
            }
            Err(error) => tracing::error!(%error, "cannot remove acked frames"),
        }
        match self.ctx.spool.remove(refused.clone()).await {
            Ok(removed) => {
                Counters::add(&self.ctx.counters.rejected, removed.len() as u64);
                self.report(unconfirmed, &removed, |seq| DeliveryOutcome::Rejected {
                    code: ack
                        .rejected
                        .iter()
                        .find(|r| r.seq == seq)
                        .map(|r| r.code.clone())
                        .unwrap_or_default(),
                });
            }
            Err(error) => tracing::error!(%error, "cannot remove refused frames"),
        }
        // Answers for frames confirmed before (resends) need no report.
        for seq in acked.iter().chain(&refused) {
            unconfirmed.0.remove(seq);
        }
        true
    }

    /// Reports the frames that just left the spool.
    fn report(
        &self,
        unconfirmed: &mut Unconfirmed,
        removed: &[u64],
        outcome: impl Fn(u64) -> DeliveryOutcome,
    ) {
        for &seq in removed {
            if let Some(captured_at) = unconfirmed.0.remove(&seq) {
                self.ctx.deliveries.report(seq, captured_at, outcome(seq));
            }
        }
    }

    /// Applies settings from the config topic; false if they did not verify.
    pub(super) fn on_config(&self, link: &Link, payload: &[u8]) -> bool {
        if payload.is_empty() {
            // A cleared retained message: keep what is in force.
            return true;
        }
        let body = match signed::open(
            link.key.as_ref(),
            SignedKind::Config,
            self.ctx.device,
            payload,
        ) {
            Ok(body) => body,
            Err(error) => {
                tracing::warn!(%error, "ignoring gate settings that do not verify");
                Counters::inc(&self.ctx.counters.unverified_messages);
                return false;
            }
        };
        match serde_json::from_slice::<GateSettings>(body) {
            Ok(settings) => self.ctx.apply_settings(settings, "mqtt"),
            Err(error) => tracing::warn!(%error, "ignoring malformed gate settings"),
        }
        true
    }
}
