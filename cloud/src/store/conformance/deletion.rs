//! Deleting a user or a device with everything that hangs off it.

use super::*;

pub(crate) async fn deleting_a_user_removes_all_their_rows_and_returns_their_blob_keys(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let spare = device_at(store, &alice, "spare", 2).await;
    let a1 = frame(
        &cam,
        1,
        100,
        vec![
            det("cup", 0.9, [1.0, 1.0, 5.0, 5.0]),
            det("person", 0.8, [0.0, 0.0, 9.0, 9.0]),
        ],
    );
    let a2 = frame(&cam, 2, 200, vec![det("cup", 0.7, [2.0, 2.0, 6.0, 6.0])]);
    let a3 = frame(&hall, 1, 150, vec![det("dog", 0.6, [3.0, 3.0, 7.0, 7.0])]);
    let a4 = frame(&hall, 2, 160, Vec::new());

    // Bob shares labels, seqs and times with alice.
    let bob = user(store).await;
    let attic = device_at(store, &bob, "attic", 0).await;
    let b1 = frame(&attic, 1, 100, vec![det("cup", 0.5, [1.0, 1.0, 5.0, 5.0])]);
    let b2 = frame(
        &attic,
        2,
        250,
        vec![det("person", 0.4, [0.0, 0.0, 3.0, 3.0])],
    );

    for frame in [&a1, &a2, &a3, &a4, &b1, &b2] {
        insert(store, frame).await;
    }
    let alice_frames = [&a1, &a2, &a3, &a4];
    let bobs_before = snapshot(store, &bob, &[&attic], &[&b1, &b2]).await;
    assert_eq!(bobs_before.detections.len(), 2);
    assert_eq!(bobs_before.last_seen.len(), 2);

    let keys = store
        .delete_user(alice.id)
        .await
        .unwrap()
        .expect("alice exists");
    assert_eq!(sorted(keys), sorted_keys(&alice_frames));

    assert_eq!(
        snapshot(store, &alice, &[&cam, &hall, &spare], &alice_frames).await,
        Snapshot::gone(3, 4)
    );
    assert_eq!(
        snapshot(store, &bob, &[&attic], &[&b1, &b2]).await,
        bobs_before
    );

    assert_eq!(store.delete_user(alice.id).await.unwrap(), None);
    assert_eq!(store.delete_user(UserId::new()).await.unwrap(), None);

    // No row is left to collide with: the name, the devices' ids and their
    // (device, seq) pairs are all free again.
    let again = user_named(store, alice.username.clone()).await;
    let reborn = DeviceRecord {
        owner: again.id,
        ..cam.clone()
    };
    store.create_device(&reborn).await.unwrap();
    insert(store, &frame(&reborn, 1, 100, Vec::new())).await;
    assert_eq!(store.devices_of(again.id).await.unwrap(), vec![reborn]);
}

pub(crate) async fn deleting_a_user_without_devices_returns_no_keys(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;
    let attic = device(store, &bob).await;
    let b1 = frame(&attic, 1, 100, vec![det("cup", 0.5, [1.0, 1.0, 5.0, 5.0])]);
    insert(store, &b1).await;
    let bobs_before = snapshot(store, &bob, &[&attic], &[&b1]).await;

    assert_eq!(store.delete_user(alice.id).await.unwrap(), Some(Vec::new()));
    assert_eq!(
        snapshot(store, &alice, &[], &[]).await,
        Snapshot::gone(0, 0)
    );
    assert_eq!(snapshot(store, &bob, &[&attic], &[&b1]).await, bobs_before);
}

pub(crate) async fn deleting_a_device_removes_its_history_and_nothing_else(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let spare = device_at(store, &alice, "spare", 2).await;
    let cup_on_hall = det("cup", 0.6, [3.0, 3.0, 7.0, 7.0]);
    let dog_on_hall = det("dog", 0.5, [0.0, 0.0, 2.0, 2.0]);
    let c1 = frame(&cam, 1, 100, vec![det("cup", 0.9, [1.0, 1.0, 5.0, 5.0])]);
    let c2 = frame(
        &cam,
        2,
        300,
        vec![
            det("cup", 0.8, [1.0, 1.0, 5.0, 5.0]),
            det("dog", 0.7, [2.0, 2.0, 4.0, 4.0]),
        ],
    );
    let h1 = frame(&hall, 1, 200, vec![cup_on_hall.clone()]);
    let h2 = frame(&hall, 2, 50, vec![dog_on_hall.clone()]);

    let bob = user(store).await;
    let attic = device(store, &bob).await;
    let b1 = frame(&attic, 1, 400, vec![det("cup", 0.5, [1.0, 1.0, 5.0, 5.0])]);

    for frame in [&c1, &c2, &h1, &h2, &b1] {
        insert(store, frame).await;
    }
    let before = snapshot(store, &alice, &[&cam, &hall, &spare], &[&c1, &c2, &h1, &h2]).await;
    let bobs_before = snapshot(store, &bob, &[&attic], &[&b1]).await;
    // The kitchen camera holds alice's newest cup and dog before the delete.
    assert!(before.last_seen.iter().all(|s| s.device == cam.id));

    let keys = store
        .delete_device(alice.id, cam.id)
        .await
        .unwrap()
        .expect("alice owns the camera");
    assert_eq!(sorted(keys), sorted_keys(&[&c1, &c2]));

    let after = snapshot(store, &alice, &[&cam, &hall, &spare], &[&c1, &c2, &h1, &h2]).await;
    let hall_rows: Vec<DetectionRow> = before
        .detections
        .iter()
        .filter(|row| row.device == hall.id)
        .cloned()
        .collect();
    assert_eq!(
        after,
        Snapshot {
            devices: vec![hall.clone(), spare.clone()],
            device_count: 2,
            each_device: vec![None, Some(hall.clone()), Some(spare.clone())],
            frames_of_owner: vec![
                None,
                None,
                Some(expected(&hall, &h1)),
                Some(expected(&hall, &h2)),
            ],
            frames_by_seq: vec![
                None,
                None,
                Some(expected(&hall, &h1)),
                Some(expected(&hall, &h2)),
            ],
            // What "last seen" remembers of the hall camera comes back.
            last_seen: vec![
                sighting_of(&hall, &h1, &cup_on_hall),
                sighting_of(&hall, &h2, &dog_on_hall),
            ],
            detections: hall_rows,
            ..before
        }
    );
    assert_eq!(snapshot(store, &bob, &[&attic], &[&b1]).await, bobs_before);

    assert_eq!(store.delete_device(alice.id, cam.id).await.unwrap(), None);
    assert_eq!(
        store.delete_device(alice.id, spare.id).await.unwrap(),
        Some(Vec::new())
    );
    assert_eq!(store.devices_of(alice.id).await.unwrap(), vec![hall]);
}
