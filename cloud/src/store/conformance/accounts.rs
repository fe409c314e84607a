//! Users and devices.

use super::*;

pub(crate) async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}

pub(crate) async fn users_are_found_by_name_and_by_id(store: &dyn Store) {
    let alice = user(store).await;
    assert_eq!(
        store.user_by_username(&alice.username).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .user_by_username(&format!("{}x", alice.username))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.user_by_id(UserId::new()).await.unwrap(), None);
}

pub(crate) async fn taken_username_is_a_conflict(store: &dyn Store) {
    let first = user(store).await;
    let second = UserRecord {
        id: UserId::new(),
        ..first.clone()
    };
    let error = store.create_user(&second).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict("username")),
        "{error:?}"
    );
    assert_eq!(
        store.user_by_username(&first.username).await.unwrap(),
        Some(first)
    );
    assert_eq!(store.user_by_id(second.id).await.unwrap(), None);
}

pub(crate) async fn hostile_usernames_are_matched_literally(store: &dyn Store) {
    let tag = UserId::new();
    let mut users = Vec::new();
    for hostile in ["' OR 1=1 --", "%", "_", "\"; DROP TABLE users; --", "\\"] {
        users.push(user_named(store, format!("{hostile}{tag}")).await);
    }
    for user in &users {
        assert_eq!(
            store
                .user_by_username(&user.username)
                .await
                .unwrap()
                .as_ref(),
            Some(user)
        );
    }
    // Each of these matches some name above if the lookup were a pattern or spliced into SQL.
    for probe in [
        "' OR 1=1 --",
        "%",
        "_",
        &format!("x{tag}"),
        &tag.to_string(),
        "' OR '1'='1",
    ] {
        assert_eq!(
            store.user_by_username(probe).await.unwrap(),
            None,
            "{probe:?}"
        );
    }
    let owner = &users[0];
    let hostile_device = device_at(store, owner, "'); DELETE FROM devices; --", 0).await;
    assert_eq!(
        store.devices_of(owner.id).await.unwrap(),
        vec![hostile_device]
    );
}

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

pub(crate) async fn token_and_revocation_fields_round_trip(store: &dyn Store) {
    let alice = UserRecord {
        id: UserId::new(),
        username: format!("user-{}", UserId::new()),
        password_hash: "hash".into(),
        created_at: at(0),
        tokens_valid_after: at(5),
    };
    store.create_user(&alice).await.unwrap();
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap().as_ref(),
        Some(&alice)
    );
    assert_eq!(
        store.user_by_username(&alice.username).await.unwrap(),
        Some(alice.clone())
    );

    let revoked = DeviceRecord {
        id: DeviceId::new(),
        owner: alice.id,
        name: "visor".into(),
        kind: "hololens".into(),
        created_at: at(1),
        tokens_valid_after: at(7),
        revoked_at: Some(at(9)),
    };
    store.create_device(&revoked).await.unwrap();
    let camera = device_at(store, &alice, "kitchen", 2).await;
    assert_eq!(
        store.device(revoked.id).await.unwrap().as_ref(),
        Some(&revoked)
    );
    assert_eq!(
        store.device(camera.id).await.unwrap().as_ref(),
        Some(&camera)
    );
    assert_eq!(
        store.devices_of(alice.id).await.unwrap(),
        vec![revoked, camera]
    );
}
