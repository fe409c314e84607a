//! What the broker lets the cloud and each device do, as dynamic-security
//! roles: the rule of docs/mqtt-security.md, written as ACLs.
//!
//! Everything not granted is denied: `mosquitto_ctrl dynsec init` sets the
//! default access for publishing and subscribing to deny. Subscriptions are
//! checked against the whole filter, `$share/...` included, so a device
//! cannot join the cloud's shared subscriptions.

use lastseen_shared::{DeviceId, TopicKind, Topics};

use super::commands::{Acl, AclType, ClientInfo, RESPONSE_TOPIC};

/// The role the cloud gives its own broker user.
pub(crate) const CLOUD_ROLE: &str = "lastseen-cloud";
/// Marks the broker clients the cloud made for devices: only these are
/// ever deleted by the reconcile pass.
pub(crate) const DEVICE_TEXTNAME: &str = "lastseen device";

pub(crate) fn device_role(device: DeviceId) -> String {
    format!("lastseen-device-{device}")
}

/// The cloud publishes acks and configs to every device, reads every
/// device's frames and statuses through its shared subscriptions, and talks
/// to the dynamic-security plugin.
pub(crate) fn cloud_acls(topics: &Topics, group: &str) -> Vec<Acl> {
    let every = |kind| topics.filter(kind);
    vec![
        Acl::allow(AclType::PublishClientSend, every(TopicKind::Ack)),
        Acl::allow(AclType::PublishClientSend, every(TopicKind::Config)),
        Acl::allow(AclType::PublishClientSend, super::commands::COMMAND_TOPIC),
        Acl::allow(AclType::PublishClientReceive, every(TopicKind::Frames)),
        Acl::allow(AclType::PublishClientReceive, every(TopicKind::Status)),
        Acl::allow(AclType::PublishClientReceive, RESPONSE_TOPIC),
        Acl::allow(
            AclType::SubscribePattern,
            topics.shared_filter(group, TopicKind::Frames),
        ),
        Acl::allow(
            AclType::SubscribePattern,
            topics.shared_filter(group, TopicKind::Status),
        ),
        Acl::allow(AclType::SubscribePattern, RESPONSE_TOPIC),
    ]
}

/// A device publishes its frames and status (its will included) and
/// subscribes to exactly its ack and config topics.
pub(crate) fn device_acls(topics: &Topics, device: DeviceId) -> Vec<Acl> {
    let own = |kind| topics.topic(device, kind);
    vec![
        Acl::allow(AclType::PublishClientSend, own(TopicKind::Frames)),
        Acl::allow(AclType::PublishClientSend, own(TopicKind::Status)),
        Acl::allow(AclType::SubscribeLiteral, own(TopicKind::Ack)),
        Acl::allow(AclType::SubscribeLiteral, own(TopicKind::Config)),
        Acl::allow(AclType::PublishClientReceive, own(TopicKind::Ack)),
        Acl::allow(AclType::PublishClientReceive, own(TopicKind::Config)),
    ]
}

/// The device a broker client was made for, if the cloud made it.
pub(crate) fn managed_device(client: &ClientInfo) -> Option<DeviceId> {
    if client.textname.as_deref() != Some(DEVICE_TEXTNAME) {
        return None;
    }
    DeviceId::parse(&client.username).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::dynsec::commands::RoleRef;

    #[test]
    fn a_device_may_only_touch_its_own_topics() {
        let topics = Topics::new("p/v1").unwrap();
        let device = DeviceId::new();
        let acls = device_acls(&topics, device);
        for acl in &acls {
            assert!(acl.allow);
            assert!(acl.topic.starts_with(&format!("p/v1/{device}/")), "{acl:?}");
            assert!(!acl.topic.contains(['+', '#', '$']), "{acl:?}");
        }
        let subscribe: Vec<_> = acls
            .iter()
            .filter(|acl| {
                matches!(
                    acl.acltype,
                    AclType::SubscribeLiteral | AclType::SubscribePattern
                )
            })
            .map(|acl| (acl.acltype, acl.topic.as_str()))
            .collect();
        assert_eq!(
            subscribe,
            [
                (AclType::SubscribeLiteral, topics.ack(device).as_str()),
                (AclType::SubscribeLiteral, topics.config(device).as_str()),
            ]
        );
        assert_eq!(device_role(device), format!("lastseen-device-{device}"));
    }

    #[test]
    fn the_cloud_subscribes_only_its_shared_filters_and_the_answers() {
        let topics = Topics::new("p/v1").unwrap();
        let subscribe: Vec<_> = cloud_acls(&topics, "g")
            .into_iter()
            .filter(|acl| acl.acltype == AclType::SubscribePattern)
            .map(|acl| acl.topic)
            .collect();
        assert_eq!(
            subscribe,
            [
                "$share/g-frames/p/v1/+/frames",
                "$share/g-status/p/v1/+/status",
                RESPONSE_TOPIC,
            ]
        );
    }

    #[test]
    fn only_clients_marked_by_the_cloud_count_as_devices() {
        let device = DeviceId::new();
        let client = |username: String, textname: Option<&str>| ClientInfo {
            username,
            clientid: None,
            textname: textname.map(str::to_owned),
            roles: vec![RoleRef {
                rolename: "r".into(),
            }],
        };
        assert_eq!(
            managed_device(&client(device.to_string(), Some(DEVICE_TEXTNAME))),
            Some(device)
        );
        assert_eq!(managed_device(&client(device.to_string(), None)), None);
        assert_eq!(
            managed_device(&client("admin".into(), Some(DEVICE_TEXTNAME))),
            None
        );
    }
}
