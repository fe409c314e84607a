//! What the MQTT session remembers about the frames it published: which are
//! out and since when ([`InFlight`], for resends), and which an ack may
//! settle at all ([`Published`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lastseen_shared::Ack;
use tokio::time::Instant;

/// The frames published and not yet answered.
#[derive(Debug)]
pub struct InFlight {
    sent: BTreeMap<u64, Instant>,
    limit: usize,
    timeout: Duration,
}

impl InFlight {
    pub fn new(limit: usize, timeout: Duration) -> Self {
        Self {
            sent: BTreeMap::new(),
            limit,
            timeout,
        }
    }

    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.sent.len())
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.sent.contains_key(&seq)
    }

    pub fn sent(&mut self, seq: u64, at: Instant) {
        self.sent.insert(seq, at);
    }

    pub fn settle(&mut self, seq: u64) -> bool {
        self.sent.remove(&seq).is_some()
    }

    /// Forgets frames unanswered for too long, so they are published again.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.sent.len();
        self.sent
            .retain(|_, at| now.duration_since(*at) < self.timeout);
        before - self.sent.len()
    }

    /// After a reconnect everything out is published again.
    pub fn clear(&mut self) {
        self.sent.clear();
    }
}

/// The seqs this run published whose frames are still in the spool. An ack
/// settles only these: anything else in it (a seq never sent, or a replay
/// of an old ack) is ignored, so a message on the ack topic cannot empty
/// the spool of frames that were never delivered. Unlike [`InFlight`] it
/// survives ack timeouts and reconnects, so a late ack still counts.
#[derive(Debug, Default)]
pub struct Published(BTreeSet<u64>);

impl Published {
    pub fn insert(&mut self, seq: u64) {
        self.0.insert(seq);
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.0.contains(&seq)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The part of `ack` about frames this run published, which leave the
    /// set, and how many seqs it ignored.
    pub fn settle(&mut self, ack: Ack) -> (Ack, usize) {
        let total = ack.acked.len() + ack.rejected.len();
        let mut known = |seq: u64| self.0.remove(&seq);
        let acked: Vec<u64> = ack.acked.into_iter().filter(|seq| known(*seq)).collect();
        let rejected: Vec<_> = ack
            .rejected
            .into_iter()
            .filter(|rejected| known(rejected.seq))
            .collect();
        let ignored = total - acked.len() - rejected.len();
        let ack = Ack {
            acked,
            rejected,
            highest_seq: ack.highest_seq,
        };
        (ack, ignored)
    }

    /// Forgets frames no longer in the spool (pushed out of a full one).
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.0.retain(|seq| keep(*seq));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastseen_shared::messages::Rejected;

    #[test]
    fn in_flight_frames_expire_and_make_room() {
        let mut in_flight = InFlight::new(2, Duration::from_secs(30));
        let start = Instant::now();
        in_flight.sent(1, start);
        in_flight.sent(2, start + Duration::from_secs(10));
        assert_eq!(in_flight.room(), 0);
        assert!(in_flight.settle(1));
        assert!(!in_flight.settle(1));
        assert_eq!(in_flight.room(), 1);
        assert_eq!(in_flight.expire(start + Duration::from_secs(39)), 0);
        assert_eq!(in_flight.expire(start + Duration::from_secs(41)), 1);
        assert!(in_flight.is_empty());
    }

    fn rejected(seq: u64) -> Rejected {
        Rejected {
            seq,
            code: "unprocessable_image".to_owned(),
            message: "no".to_owned(),
        }
    }

    #[test]
    fn an_ack_settles_only_published_seqs_and_each_once() {
        let mut published = Published::default();
        for seq in [3, 4, 5] {
            published.insert(seq);
        }
        let forged = Ack {
            acked: (0..100).collect(),
            rejected: vec![rejected(200)],
            highest_seq: None,
        };
        let (kept, ignored) = published.settle(forged);
        assert_eq!(kept.acked, [3, 4, 5]);
        assert!(kept.rejected.is_empty());
        assert_eq!(ignored, 98);
        assert!(published.is_empty());

        // A replay of the same ack settles nothing more.
        published.insert(6);
        let (kept, ignored) = published.settle(Ack {
            acked: vec![3, 4, 5],
            rejected: vec![rejected(6)],
            highest_seq: None,
        });
        assert!(kept.acked.is_empty());
        assert_eq!(kept.rejected, [rejected(6)]);
        assert_eq!(ignored, 3);
        assert!(!published.contains(6));
    }

    #[test]
    fn frames_gone_from_the_spool_are_forgotten() {
        let mut published = Published::default();
        for seq in 0..10 {
            published.insert(seq);
        }
        published.retain(|seq| seq >= 7);
        assert_eq!(published.len(), 3);
        let (kept, ignored) = published.settle(Ack {
            acked: vec![2, 8],
            rejected: Vec::new(),
            highest_seq: None,
        });
        assert_eq!((kept.acked, ignored), (vec![8], 1));
    }
}
