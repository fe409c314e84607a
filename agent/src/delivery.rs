//! Reports of confirmed frames, for a caller that wants to follow each frame
//! to the cloud (the load tool measures capture-to-stored latency with it
//! and keeps its ledger of acked seqs).
//!
//! A report is sent exactly where a transport removes a frame from the spool
//! because the cloud answered for it: stored (HTTP 2xx, or the seq in an
//! MQTT ack) or refused for good. A frame confirmed twice (an ack for a
//! resend) is reported once, when it left the spool.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// What the cloud said about one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Persisted by the cloud (and so visible to queries).
    Acked,
    /// Refused for good, with the cloud's error code (e.g. `unprocessable_image`).
    Rejected { code: String },
}

/// One frame that left the spool because the cloud answered for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    /// When the agent received the cloud's answer.
    pub confirmed_at: DateTime<Utc>,
    pub outcome: DeliveryOutcome,
}

/// Where the transports send [`Delivery`] reports; off unless asked for.
#[derive(Clone, Debug, Default)]
pub struct DeliveryReports(Option<mpsc::UnboundedSender<Delivery>>);

impl DeliveryReports {
    pub fn to(sender: mpsc::UnboundedSender<Delivery>) -> Self {
        Self(Some(sender))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Reports a confirmed frame, timestamped now. A listener that went away
    /// is not the agent's problem: the report is dropped.
    pub fn report(&self, seq: u64, captured_at: DateTime<Utc>, outcome: DeliveryOutcome) {
        if let Some(sender) = &self.0 {
            let _ = sender.send(Delivery {
                seq,
                captured_at,
                confirmed_at: Utc::now(),
                outcome,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_reach_the_listener_only_when_one_was_given() {
        let off = DeliveryReports::default();
        assert!(!off.is_on());
        off.report(1, Utc::now(), DeliveryOutcome::Acked);

        let (tx, mut rx) = mpsc::unbounded_channel();
        let on = DeliveryReports::to(tx);
        assert!(on.is_on());
        let captured = Utc::now();
        on.report(
            7,
            captured,
            DeliveryOutcome::Rejected {
                code: "unprocessable_image".into(),
            },
        );
        let delivery = rx.try_recv().expect("a report");
        assert_eq!(delivery.seq, 7);
        assert_eq!(delivery.captured_at, captured);
        assert!(delivery.confirmed_at >= captured);
        assert_eq!(
            delivery.outcome,
            DeliveryOutcome::Rejected {
                code: "unprocessable_image".into()
            }
        );
        drop(rx);
        // The listener is gone: reporting still works and drops the report.
        on.report(8, captured, DeliveryOutcome::Acked);
    }
}
