//! A device flooding its status topic. The cloud records statuses from
//! a bounded queue with one worker (at most one waiting per device, a newer
//! one replacing it), instead of a task per message: the flood is counted
//! as superseded, nothing waits beyond one status for the device, and the
//! device ends with the last status it sent.

use std::time::Instant;

use lastseen_shared::{DeviceState, DeviceStatus};
use reqwest::StatusCode;
use rumqttc::QoS;

use crate::helpers::metric;
use crate::mqtt::setup;
use crate::mqtt_client::{Broker, PATIENCE, on_each_broker};

/// Statuses sent; the last one (odd) says online.
const FLOOD: u64 = 3000;

async fn a_status_flood_is_bounded_and_the_last_status_wins(broker: Broker) {
    let s = setup(broker).await;
    let (id, _, device) = s.device("Flood").await;
    let topic = s.topics.status(device.id);
    for n in 0..FLOOD {
        let mut status = DeviceStatus::offline();
        if n % 2 == 1 {
            status.state = DeviceState::Online;
        }
        status.counters.insert("n".to_owned(), n);
        device
            .client
            .publish(
                topic.clone(),
                QoS::AtLeastOnce,
                false,
                serde_json::to_vec(&status).expect("JSON"),
            )
            .await
            .expect("publish status");
    }

    // The last status sent is the one the device ends with.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = s
            .app
            .get_json(&s.user, &format!("/api/v1/devices/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        if body["status"]["counters"]["n"] == FLOOD - 1 {
            assert_eq!(body["status"]["state"], "online", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "never the last status: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Every status is accounted for: recorded, or superseded while it
    // waited (a will from connect_device's first attempt may add one).
    let counters = [
        "lastseen_mqtt_statuses_total",
        "lastseen_mqtt_statuses_superseded_total",
        "lastseen_mqtt_statuses_queue_full_total",
        "lastseen_mqtt_statuses_dropped_total",
    ];
    let mut values = Vec::new();
    for name in counters {
        values.push(metric(&s.app, name).await);
    }
    let (recorded, superseded, full, dropped) = (values[0], values[1], values[2], values[3]);
    assert!(
        (FLOOD..=FLOOD + 2).contains(&(recorded + superseded)),
        "{counters:?} = {values:?}"
    );
    assert!(
        superseded > 0,
        "the flood was recorded one by one: {values:?}"
    );
    assert_eq!((full, dropped), (0, 0), "{values:?}");
    assert!(recorded < FLOOD, "{values:?}");
    // One device never has more than one status waiting.
    assert_eq!(
        metric(&s.app, "lastseen_mqtt_statuses_waiting_peak").await,
        1
    );
    assert_eq!(metric(&s.app, "lastseen_mqtt_statuses_waiting").await, 0);
}

on_each_broker!(a_status_flood_is_bounded_and_the_last_status_wins);
