//! Devices: listing and counting per owner, the owner's changes to one
//! device (rename, token rotation, revocation, deletion), and the same calls
//! made by someone who does not own it.

use super::*;

pub(crate) async fn devices_are_listed_oldest_first_and_counted_per_owner(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;
    let newest = device_at(store, &alice, "hall", 30).await;
    let oldest = device_at(store, &alice, "kitchen", 10).await;
    let middle = device_at(store, &alice, "garage", 20).await;
    let bobs = device_at(store, &bob, "attic", 5).await;

    assert_eq!(
        store.devices_of(alice.id).await.unwrap(),
        vec![oldest, middle, newest.clone()]
    );
    assert_eq!(store.count_devices_of(alice.id).await.unwrap(), 3);
    assert_eq!(store.devices_of(bob.id).await.unwrap(), vec![bobs]);
    assert_eq!(store.count_devices_of(bob.id).await.unwrap(), 1);
    assert_eq!(store.device(newest.id).await.unwrap(), Some(newest));
    assert_eq!(store.device(DeviceId::new()).await.unwrap(), None);

    let nobody = user(store).await;
    assert!(store.devices_of(nobody.id).await.unwrap().is_empty());
    assert_eq!(store.count_devices_of(nobody.id).await.unwrap(), 0);
}

pub(crate) async fn device_changes_return_the_device_as_it_is_afterwards(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;

    let renamed = DeviceRecord {
        name: "porch".into(),
        ..cam.clone()
    };
    assert_eq!(
        store
            .rename_device(alice.id, cam.id, "porch")
            .await
            .unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(store.device(cam.id).await.unwrap().as_ref(), Some(&renamed));

    let rotated = DeviceRecord {
        tokens_valid_after: at(50),
        ..renamed
    };
    assert_eq!(
        store
            .set_device_tokens_valid_after(alice.id, cam.id, at(50))
            .await
            .unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(store.device(cam.id).await.unwrap().as_ref(), Some(&rotated));

    let revoked = DeviceRecord {
        revoked_at: Some(at(60)),
        tokens_valid_after: at(60),
        ..rotated
    };
    assert_eq!(
        store.revoke_device(alice.id, cam.id, at(60)).await.unwrap(),
        Some(revoked.clone())
    );
    assert_eq!(
        store.devices_of(alice.id).await.unwrap(),
        vec![revoked, hall]
    );
}

pub(crate) async fn revoking_keeps_the_first_revoked_at_and_voids_tokens_again(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let old = frame(&cam, 1, 10, vec![det("cup", 0.8, [1.0, 1.0, 5.0, 5.0])]);
    insert(store, &old).await;

    let first = store
        .revoke_device(alice.id, cam.id, at(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.revoked_at, first.tokens_valid_after),
        (Some(at(60)), at(60))
    );

    let again = store
        .revoke_device(alice.id, cam.id, at(90))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.revoked_at, again.tokens_valid_after),
        (Some(at(60)), at(90))
    );

    // An earlier instant moves neither.
    let earlier = store
        .revoke_device(alice.id, cam.id, at(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(earlier, again);
    assert_eq!(store.device(cam.id).await.unwrap(), Some(again));

    // History stays.
    assert_eq!(
        store.frame_of_owner(alice.id, old.id).await.unwrap(),
        Some(expected(&cam, &old))
    );
    assert_eq!(store.last_seen(alice.id, None).await.unwrap().len(), 1);
}

pub(crate) async fn device_tokens_valid_after_moves_forward_only(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let moved = DeviceRecord {
        tokens_valid_after: at(50),
        ..cam.clone()
    };
    for at_ in [at(50), at(40), at(-10)] {
        assert_eq!(
            store
                .set_device_tokens_valid_after(alice.id, cam.id, at_)
                .await
                .unwrap()
                .as_ref(),
            Some(&moved),
            "{at_}"
        );
    }
    assert_eq!(store.device(cam.id).await.unwrap(), Some(moved));
}

pub(crate) async fn another_owners_device_is_neither_changed_nor_deleted(store: &dyn Store) {
    let alice = user(store).await;
    let mallory = user(store).await;
    let mallorys = device_at(store, &mallory, "own", 0).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let new = frame(&cam, 1, 10, vec![det("cup", 0.8, [1.0, 1.0, 5.0, 5.0])]);
    insert(store, &new).await;
    let before = snapshot(store, &alice, &[&cam], &[&new]).await;
    let mallory_before = snapshot(store, &mallory, &[&mallorys], &[]).await;

    // Someone else's device, and a device that does not exist at all.
    for (owner, id) in [
        (mallory.id, cam.id),
        (alice.id, mallorys.id),
        (alice.id, DeviceId::new()),
    ] {
        let case = format!("{owner} on {id}");
        assert_eq!(
            store.rename_device(owner, id, "pwned").await.unwrap(),
            None,
            "{case}"
        );
        assert_eq!(
            store
                .set_device_tokens_valid_after(owner, id, at(500))
                .await
                .unwrap(),
            None,
            "{case}"
        );
        assert_eq!(
            store.revoke_device(owner, id, at(500)).await.unwrap(),
            None,
            "{case}"
        );
        assert_eq!(
            store.delete_device(owner, id).await.unwrap(),
            None,
            "{case}"
        );
    }

    assert_eq!(snapshot(store, &alice, &[&cam], &[&new]).await, before);
    assert_eq!(
        snapshot(store, &mallory, &[&mallorys], &[]).await,
        mallory_before
    );
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
