//! The heartbeat: one frame every `heartbeat_secs` even when the change or
//! person gate says no, so a slow change (a cup put down while the
//! background absorbed it) is still recorded.

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone, Debug, Default)]
pub struct Heartbeat {
    last_sent: Option<DateTime<Utc>>,
}

impl Heartbeat {
    /// True when nothing was sent for `every_secs` (0 = never due).
    pub fn due(&self, now: DateTime<Utc>, every_secs: u32) -> bool {
        every_secs > 0
            && self
                .last_sent
                .is_none_or(|last| now - last >= TimeDelta::seconds(every_secs.into()))
    }

    pub fn sent(&mut self, at: DateTime<Utc>) {
        self.last_sent = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_due_after_the_interval_since_the_last_frame_sent() {
        let start = DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut heartbeat = Heartbeat::default();
        assert!(heartbeat.due(start, 300));
        heartbeat.sent(start);
        assert!(!heartbeat.due(start + TimeDelta::seconds(299), 300));
        assert!(heartbeat.due(start + TimeDelta::seconds(300), 300));
        assert!(!heartbeat.due(start + TimeDelta::days(1), 0));
    }
}
