//! The owner's changes to one device: rename, token rotation, revocation, and
//! the same calls made by someone who does not own it.

use super::*;

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
