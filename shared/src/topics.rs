//! MQTT topic names, under a configurable prefix (default `lastseen/v1`):
//!
//! | topic | direction | QoS / retained | payload |
//! |---|---|---|---|
//! | `{prefix}/{device}/frames` | device -> cloud | 1 | [`crate::envelope`] |
//! | `{prefix}/{device}/ack` | cloud -> device | 1 | [`crate::messages::Ack`] (JSON; [`crate::signed`] for v2 senders) |
//! | `{prefix}/{device}/config` | cloud -> device | 1, retained | [`crate::messages::GateSettings`] (JSON in [`crate::signed`]) |
//! | `{prefix}/{device}/status` | device -> cloud | 1, retained, last will | [`crate::messages::DeviceStatus`] (JSON) |
//!
//! Cloud nodes subscribe to frames and statuses through shared subscriptions
//! (`$share/{group}-frames/{prefix}/+/frames`, `$share/{group}-status/...`)
//! so that several nodes split the load.

use std::fmt;

use crate::ids::DeviceId;

pub const DEFAULT_PREFIX: &str = "lastseen/v1";

/// A prefix that cannot form valid topic names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid MQTT topic prefix `{0}`: it needs non-empty levels separated by `/`, without `+`, `#`, NUL or a leading `$`"
)]
pub struct PrefixError(String);

/// Which of a device's topics a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    Frames,
    Ack,
    Config,
    Status,
}

impl TopicKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TopicKind::Frames => "frames",
            TopicKind::Ack => "ack",
            TopicKind::Config => "config",
            TopicKind::Status => "status",
        }
    }

    fn parse(level: &str) -> Option<Self> {
        [Self::Frames, Self::Ack, Self::Config, Self::Status]
            .into_iter()
            .find(|kind| kind.as_str() == level)
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Builds and parses the topic names of one deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Topics {
    pub fn new(prefix: &str) -> Result<Self, PrefixError> {
        let valid = !prefix.is_empty()
            && !prefix.starts_with('$')
            && prefix.len() <= 200
            && prefix
                .split('/')
                .all(|level| !level.is_empty() && !level.contains(['+', '#', '\0']));
        if valid {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(PrefixError(prefix.chars().take(64).collect()))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn topic(&self, device: DeviceId, kind: TopicKind) -> String {
        format!("{}/{device}/{kind}", self.prefix)
    }

    pub fn frames(&self, device: DeviceId) -> String {
        self.topic(device, TopicKind::Frames)
    }

    pub fn ack(&self, device: DeviceId) -> String {
        self.topic(device, TopicKind::Ack)
    }

    pub fn config(&self, device: DeviceId) -> String {
        self.topic(device, TopicKind::Config)
    }

    pub fn status(&self, device: DeviceId) -> String {
        self.topic(device, TopicKind::Status)
    }

    /// Every device's topics of one kind: `{prefix}/+/{kind}`.
    pub fn filter(&self, kind: TopicKind) -> String {
        format!("{}/+/{kind}", self.prefix)
    }

    /// The same filter as a shared subscription: each message goes to one
    /// member of `group`. Every kind has a share name of its own: MQTT 5
    /// names a shared subscription by share name and filter together, but
    /// rumqttd 0.20 keeps one read cursor per share *name*, so two filters
    /// under one name make it skip messages of one log at offsets the other
    /// advanced (a device's first frame after its status, statuses after
    /// frames).
    pub fn shared_filter(&self, group: &str, kind: TopicKind) -> String {
        format!("$share/{group}-{kind}/{}", self.filter(kind))
    }

    /// The device and kind a topic belongs to, or `None` if it is not one of ours.
    pub fn parse(&self, topic: &str) -> Option<(DeviceId, TopicKind)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        let (device, kind) = rest.split_once('/')?;
        Some((DeviceId::parse(device).ok()?, TopicKind::parse(kind)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_parses_every_kind() {
        let topics = Topics::default();
        let device = DeviceId::new();
        for kind in [
            TopicKind::Frames,
            TopicKind::Ack,
            TopicKind::Config,
            TopicKind::Status,
        ] {
            let name = topics.topic(device, kind);
            assert_eq!(name, format!("lastseen/v1/{device}/{kind}"));
            assert_eq!(topics.parse(&name), Some((device, kind)));
        }
        assert_eq!(
            topics.shared_filter("ingest", TopicKind::Frames),
            "$share/ingest-frames/lastseen/v1/+/frames"
        );
        assert_eq!(
            topics.shared_filter("ingest", TopicKind::Status),
            "$share/ingest-status/lastseen/v1/+/status"
        );
    }

    #[test]
    fn parse_rejects_foreign_topics() {
        let topics = Topics::new("site/a").unwrap();
        let device = DeviceId::new();
        assert_eq!(topics.parse(&format!("site/a/{device}/frames/x")), None);
        assert_eq!(topics.parse(&format!("site/ab/{device}/frames")), None);
        assert_eq!(topics.parse(&format!("site/{device}/frames")), None);
        assert_eq!(topics.parse("site/a/not-a-uuid/frames"), None);
        assert_eq!(topics.parse(&format!("site/a/{device}/other")), None);
    }

    #[test]
    fn refuses_prefixes_that_break_topics() {
        for bad in ["", "a/", "/a", "a//b", "a/+", "#", "$SYS", "a\0b"] {
            assert!(Topics::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Topics::new("lastseen/v1").is_ok());
    }
}
