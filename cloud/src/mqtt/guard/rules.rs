//! What a device may send through the guard: pure checks on parsed MQTT
//! 3.1.1 packets, no I/O (the token itself is verified by the caller).
//!
//! The rule (the same as the external broker's): a device logs in with
//! username = client id = its device id; it may publish only its own
//! `frames` (never retained) and `status` (retained allowed, its will only
//! there), and subscribe only to its own exact `ack` and `config` topics.
//! Topics are compared as whole strings with the canonical names built by
//! [`Topics`], so wildcards, `$share/...`, other devices, other spellings of
//! a device id and other prefixes all fall outside.

use lastseen_shared::{DeviceId, TopicKind, Topics};
use rumqttc::mqttbytes::Protocol;
use rumqttc::mqttbytes::v4::{Connect, Publish, Subscribe};

use crate::mqtt::CLOUD_USERNAME;

/// Why a CONNECT is refused (for the debug log; the device only learns
/// "not authorized" or "unacceptable protocol version").
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConnectDenial {
    #[error("not MQTT 3.1.1")]
    Protocol,
    #[error("no username or password")]
    NoLogin,
    #[error("the cloud's own username on the device port")]
    CloudPrincipal,
    #[error("the username is not a device id")]
    NotADevice,
    #[error("the client id is not the username")]
    ClientId,
    #[error("a last will outside the device's status topic, or too large")]
    Will,
}

/// Why a PUBLISH is refused; the connection is then closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PublishDenial {
    #[error("not one of the device's own frames or status topics")]
    Topic,
    #[error("a retained frame")]
    RetainedFrame,
    #[error("larger than allowed for its topic")]
    TooLarge,
}

/// Why a SUBSCRIBE is refused; it is answered with a failure SUBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a filter other than the device's own ack or config topic")]
pub(crate) struct SubscribeDenial;

/// The limits and topic names the checks use.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    topics: Topics,
    /// Largest frame envelope (`mqtt_max_message_bytes`).
    max_message_bytes: usize,
    /// Largest status or will (`mqtt_max_status_bytes`): the only payload a
    /// device can make the broker retain, once per device.
    max_status_bytes: usize,
}

/// A CONNECT that passed the static checks: the device it claims to be and
/// the token to verify.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Claim<'a> {
    pub(crate) device: DeviceId,
    pub(crate) token: &'a str,
}

impl Rules {
    pub(crate) fn new(topics: Topics, max_message_bytes: usize, max_status_bytes: usize) -> Self {
        Self {
            topics,
            max_message_bytes,
            max_status_bytes,
        }
    }

    /// The device a CONNECT claims to be; the caller then verifies the token
    /// and that it belongs to this device.
    pub(crate) fn connect<'a>(&self, connect: &'a Connect) -> Result<Claim<'a>, ConnectDenial> {
        if connect.protocol != Protocol::V4 {
            return Err(ConnectDenial::Protocol);
        }
        let login = connect.login.as_ref().ok_or(ConnectDenial::NoLogin)?;
        if login.username == CLOUD_USERNAME || login.username.starts_with(CLOUD_USERNAME) {
            return Err(ConnectDenial::CloudPrincipal);
        }
        // Only the canonical spelling: topics are compared as strings.
        let device = DeviceId::parse(&login.username)
            .ok()
            .filter(|device| device.to_string() == login.username)
            .ok_or(ConnectDenial::NotADevice)?;
        if connect.client_id != login.username {
            return Err(ConnectDenial::ClientId);
        }
        if let Some(will) = &connect.last_will
            && (will.topic != self.topics.status(device)
                || will.message.len() > self.max_status_bytes)
        {
            return Err(ConnectDenial::Will);
        }
        Ok(Claim {
            device,
            token: &login.password,
        })
    }

    pub(crate) fn publish(&self, device: DeviceId, publish: &Publish) -> Result<(), PublishDenial> {
        let limit = if publish.topic == self.topics.topic(device, TopicKind::Frames) {
            if publish.retain {
                return Err(PublishDenial::RetainedFrame);
            }
            self.max_message_bytes
        } else if publish.topic == self.topics.topic(device, TopicKind::Status) {
            self.max_status_bytes
        } else {
            return Err(PublishDenial::Topic);
        };
        if publish.payload.len() > limit {
            return Err(PublishDenial::TooLarge);
        }
        Ok(())
    }

    /// Every filter must be allowed: one bad filter fails the whole packet.
    pub(crate) fn subscribe(
        &self,
        device: DeviceId,
        subscribe: &Subscribe,
    ) -> Result<(), SubscribeDenial> {
        let ack = self.topics.ack(device);
        let config = self.topics.config(device);
        let allowed = !subscribe.filters.is_empty()
            && subscribe
                .filters
                .iter()
                .all(|filter| filter.path == ack || filter.path == config);
        if allowed {
            Ok(())
        } else {
            Err(SubscribeDenial)
        }
    }
}

#[cfg(test)]
mod tests {
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::{LastWill, SubscribeFilter};

    use super::*;

    const MAX_MESSAGE: usize = 1000;
    const MAX_STATUS: usize = 100;

    fn rules() -> Rules {
        Rules::new(Topics::default(), MAX_MESSAGE, MAX_STATUS)
    }

    fn connect(client_id: &str, username: &str) -> Connect {
        let mut connect = Connect::new(client_id);
        connect.set_login(username, "token");
        connect
    }

    fn publish(topic: String, retain: bool, size: usize) -> Publish {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, vec![0u8; size]);
        publish.pkid = 1;
        publish.retain = retain;
        publish
    }

    fn subscribe(filters: &[String]) -> Subscribe {
        Subscribe::new_many(
            filters
                .iter()
                .map(|path| SubscribeFilter::new(path.clone(), QoS::AtLeastOnce)),
        )
    }

    #[test]
    fn a_device_connects_as_itself_with_its_will_on_its_status() {
        let device = DeviceId::new();
        let id = device.to_string();
        let mut login = connect(&id, &id);
        login.last_will = Some(LastWill::new(
            Topics::default().status(device),
            vec![b'x'; MAX_STATUS],
            QoS::AtLeastOnce,
            true,
        ));
        assert_eq!(
            rules().connect(&login),
            Ok(Claim {
                device,
                token: "token"
            })
        );
    }

    #[test]
    fn refuses_logins_that_are_not_a_device_speaking_for_itself() {
        let device = DeviceId::new();
        let other = DeviceId::new();
        let id = device.to_string();
        let rules = rules();
        let check = |connect: &Connect| rules.connect(connect).map(|claim| claim.device);

        assert_eq!(
            check(&connect(&id, &other.to_string())),
            Err(ConnectDenial::ClientId)
        );
        assert_eq!(
            check(&connect(&other.to_string(), &id)),
            Err(ConnectDenial::ClientId)
        );
        assert_eq!(
            check(&connect(CLOUD_USERNAME, CLOUD_USERNAME)),
            Err(ConnectDenial::CloudPrincipal)
        );
        let cloud_like = format!("{CLOUD_USERNAME}-123");
        assert_eq!(
            check(&connect(&cloud_like, &cloud_like)),
            Err(ConnectDenial::CloudPrincipal)
        );
        assert_eq!(
            check(&connect("alice", "alice")),
            Err(ConnectDenial::NotADevice)
        );
        let upper = id.to_uppercase();
        assert_eq!(
            check(&connect(&upper, &upper)),
            Err(ConnectDenial::NotADevice)
        );
        assert_eq!(
            check(&Connect::new(id.clone())),
            Err(ConnectDenial::NoLogin)
        );

        let mut v5 = connect(&id, &id);
        v5.protocol = Protocol::V5;
        assert_eq!(check(&v5), Err(ConnectDenial::Protocol));
    }

    #[test]
    fn refuses_a_will_elsewhere_or_too_large() {
        let device = DeviceId::new();
        let id = device.to_string();
        let topics = Topics::default();
        for (topic, size) in [
            (topics.status(DeviceId::new()), 10),
            (topics.config(device), 10),
            (topics.frames(device), 10),
            ("#".to_owned(), 10),
            (topics.status(device), MAX_STATUS + 1),
        ] {
            let mut login = connect(&id, &id);
            login.last_will = Some(LastWill::new(
                topic.clone(),
                vec![0u8; size],
                QoS::AtLeastOnce,
                true,
            ));
            assert_eq!(
                rules().connect(&login).map(|claim| claim.device),
                Err(ConnectDenial::Will),
                "{topic} {size}"
            );
        }
    }

    #[test]
    fn a_device_publishes_only_its_own_frames_and_status() {
        let device = DeviceId::new();
        let other = DeviceId::new();
        let topics = Topics::default();
        let rules = rules();
        assert_eq!(
            rules.publish(device, &publish(topics.frames(device), false, MAX_MESSAGE)),
            Ok(())
        );
        assert_eq!(
            rules.publish(device, &publish(topics.status(device), true, MAX_STATUS)),
            Ok(())
        );
        // Clearing its retained status.
        assert_eq!(
            rules.publish(device, &publish(topics.status(device), true, 0)),
            Ok(())
        );
        for topic in [
            topics.frames(other),
            topics.status(other),
            topics.ack(other),
            topics.config(other),
            topics.ack(device),
            topics.config(device),
            topics.filter(TopicKind::Frames),
            "junk/1".to_owned(),
            format!("{}/", topics.frames(device)),
            format!("/{}", topics.frames(device)),
            "$SYS/broker".to_owned(),
        ] {
            assert_eq!(
                rules.publish(device, &publish(topic.clone(), false, 1)),
                Err(PublishDenial::Topic),
                "{topic}"
            );
        }
    }

    #[test]
    fn frames_are_never_retained_and_sizes_are_bounded() {
        let device = DeviceId::new();
        let topics = Topics::default();
        let rules = rules();
        assert_eq!(
            rules.publish(device, &publish(topics.frames(device), true, 1)),
            Err(PublishDenial::RetainedFrame)
        );
        assert_eq!(
            rules.publish(
                device,
                &publish(topics.frames(device), false, MAX_MESSAGE + 1)
            ),
            Err(PublishDenial::TooLarge)
        );
        assert_eq!(
            rules.publish(
                device,
                &publish(topics.status(device), false, MAX_STATUS + 1)
            ),
            Err(PublishDenial::TooLarge)
        );
    }

    #[test]
    fn a_device_subscribes_only_to_its_own_exact_ack_and_config() {
        let device = DeviceId::new();
        let other = DeviceId::new();
        let topics = Topics::default();
        let rules = rules();
        let own = [topics.ack(device), topics.config(device)];
        assert_eq!(rules.subscribe(device, &subscribe(&own)), Ok(()));
        assert_eq!(rules.subscribe(device, &subscribe(&own[..1])), Ok(()));
        for filter in [
            "#".to_owned(),
            "+/+/+/+".to_owned(),
            topics.filter(TopicKind::Frames),
            topics.filter(TopicKind::Ack),
            format!("{}/{device}/#", topics.prefix()),
            format!("{}/{device}/+", topics.prefix()),
            topics.ack(other),
            topics.config(other),
            topics.frames(device),
            topics.status(device),
            topics.shared_filter("ingest", TopicKind::Frames),
            format!("$share/x/{}", topics.ack(device)),
        ] {
            // Alone, and hidden behind an allowed filter in the same packet.
            assert_eq!(
                rules.subscribe(device, &subscribe(std::slice::from_ref(&filter))),
                Err(SubscribeDenial),
                "{filter}"
            );
            assert_eq!(
                rules.subscribe(device, &subscribe(&[own[0].clone(), filter.clone()])),
                Err(SubscribeDenial),
                "{filter}"
            );
        }
    }
}
