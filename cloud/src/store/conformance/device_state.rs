//! Device settings and status ([`crate::store::DeviceStateStore`]).

use super::*;
use crate::store::ReportedStatus;
use lastseen_shared::{DeviceState, DeviceStatus, GateSettings};
use std::collections::BTreeMap;

fn online(captured: u64) -> DeviceStatus {
    DeviceStatus {
        state: DeviceState::Online,
        at: Some(at(5)),
        counters: BTreeMap::from([("captured".to_owned(), captured)]),
        spool_depth: Some(3),
        version: Some("0.1.0".to_owned()),
    }
}

pub(crate) async fn settings_are_none_until_set_then_replaced(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    assert_eq!(store.device_settings(cam.id).await.unwrap(), None);

    let mut settings = GateSettings::default();
    settings.change.min_changed_fraction = 0.25;
    settings.heartbeat_secs = 0;
    store.put_device_settings(cam.id, &settings).await.unwrap();
    assert_eq!(
        store.device_settings(cam.id).await.unwrap(),
        Some(settings.clone())
    );

    settings.person.enabled = true;
    store.put_device_settings(cam.id, &settings).await.unwrap();
    assert_eq!(store.device_settings(cam.id).await.unwrap(), Some(settings));
    // Settings alone are no status.
    assert_eq!(store.device_status(cam.id).await.unwrap(), None);
    assert!(store.device_statuses_of(alice.id).await.unwrap().is_empty());
}

pub(crate) async fn statuses_are_kept_per_device_and_listed_per_owner(store: &dyn Store) {
    let alice = user(store).await;
    let kitchen = device_at(store, &alice, "kitchen", 0).await;
    let silent = device_at(store, &alice, "silent", 1).await;
    let bob = user(store).await;
    let attic = device(store, &bob).await;

    let first = ReportedStatus {
        status: online(1),
        received_at: at(10),
    };
    store
        .record_device_status(kitchen.id, &first)
        .await
        .unwrap();
    store
        .put_device_settings(kitchen.id, &GateSettings::default())
        .await
        .unwrap();
    let last = ReportedStatus {
        status: DeviceStatus::offline(),
        received_at: at(20),
    };
    store.record_device_status(kitchen.id, &last).await.unwrap();
    store.record_device_status(attic.id, &first).await.unwrap();

    assert_eq!(
        store.device_status(kitchen.id).await.unwrap(),
        Some(last.clone())
    );
    assert_eq!(store.device_status(silent.id).await.unwrap(), None);
    assert_eq!(
        store.device_statuses_of(alice.id).await.unwrap(),
        vec![(kitchen.id, last)]
    );
    assert_eq!(
        store.device_statuses_of(bob.id).await.unwrap(),
        vec![(attic.id, first)]
    );
    // Writing a status leaves the settings alone.
    assert_eq!(
        store.device_settings(kitchen.id).await.unwrap(),
        Some(GateSettings::default())
    );
}

pub(crate) async fn state_goes_with_its_device(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    store
        .put_device_settings(cam.id, &GateSettings::default())
        .await
        .unwrap();
    let status = ReportedStatus {
        status: online(7),
        received_at: at(1),
    };
    store.record_device_status(cam.id, &status).await.unwrap();
    store.delete_device(alice.id, cam.id).await.unwrap();
    assert_eq!(store.device_settings(cam.id).await.unwrap(), None);
    assert_eq!(store.device_status(cam.id).await.unwrap(), None);
    assert!(store.device_statuses_of(alice.id).await.unwrap().is_empty());
}

pub(crate) async fn state_of_an_unknown_device_is_refused(store: &dyn Store) {
    let missing = DeviceId::new();
    assert!(
        store
            .put_device_settings(missing, &GateSettings::default())
            .await
            .is_err()
    );
    let status = ReportedStatus {
        status: DeviceStatus::offline(),
        received_at: at(1),
    };
    assert!(store.record_device_status(missing, &status).await.is_err());
}

pub(crate) async fn the_last_frame_of_each_device_is_listed_per_owner(store: &dyn Store) {
    let alice = user(store).await;
    let kitchen = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let _silent = device_at(store, &alice, "silent", 2).await;
    let bob = user(store).await;
    let attic = device(store, &bob).await;
    assert!(store.last_frames_of(alice.id).await.unwrap().is_empty());

    // Sent out of order: the highest seq is the last frame, not the last insert.
    let newest = frame(&kitchen, 7, 70, vec![]);
    insert(store, &newest).await;
    insert(store, &frame(&kitchen, 3, 30, vec![])).await;
    let hall_only = frame(&hall, 1, 10, vec![det("cup", 0.9, [1.0, 2.0, 3.0, 4.0])]);
    insert(store, &hall_only).await;
    let bobs = frame(&attic, 1, 10, vec![]);
    insert(store, &bobs).await;

    let mut alices = store.last_frames_of(alice.id).await.unwrap();
    alices.sort_by_key(|(device, _)| *device == hall.id);
    assert_eq!(
        alices,
        vec![(kitchen.id, newest.id), (hall.id, hall_only.id)]
    );
    assert_eq!(
        store.last_frames_of(bob.id).await.unwrap(),
        vec![(attic.id, bobs.id)]
    );
}
