//! Users: lookups, conflicts, credentials (password changes, the user token
//! cut-off, the deny list of single revoked tokens) and account deletion.

use uuid::Uuid;

use super::*;

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

pub(crate) async fn password_update_replaces_the_hash_and_moves_tokens_valid_after(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let bob = user(store).await;

    assert!(
        store
            .update_password(alice.id, "$argon2id$new", at(100))
            .await
            .unwrap()
    );
    let changed = UserRecord {
        password_hash: "$argon2id$new".into(),
        tokens_valid_after: at(100),
        ..alice.clone()
    };
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap().as_ref(),
        Some(&changed)
    );
    assert_eq!(
        store.user_by_username(&alice.username).await.unwrap(),
        Some(changed)
    );
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), Some(bob));

    let nobody = UserId::new();
    assert!(
        !store
            .update_password(nobody, "$argon2id$new", at(100))
            .await
            .unwrap()
    );
    assert_eq!(store.user_by_id(nobody).await.unwrap(), None);
}

/// An earlier instant than the stored one (clock stepped back, racing
/// requests) must not bring voided tokens back.
pub(crate) async fn user_tokens_valid_after_moves_forward_only(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;

    assert!(
        store
            .set_user_tokens_valid_after(alice.id, at(100))
            .await
            .unwrap()
    );
    let moved = UserRecord {
        tokens_valid_after: at(100),
        ..alice.clone()
    };
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap().as_ref(),
        Some(&moved)
    );

    // Still true: the user exists, the call just leaves the later instant.
    assert!(
        store
            .set_user_tokens_valid_after(alice.id, at(50))
            .await
            .unwrap()
    );
    assert!(
        store
            .update_password(alice.id, "$argon2id$other", at(60))
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_by_id(alice.id).await.unwrap(),
        Some(UserRecord {
            password_hash: "$argon2id$other".into(),
            ..moved
        })
    );

    assert!(
        !store
            .set_user_tokens_valid_after(UserId::new(), at(100))
            .await
            .unwrap()
    );
    assert_eq!(store.user_by_id(bob.id).await.unwrap(), Some(bob));
}

/// The only body that touches the deny list, so the purge counts are exact
/// even when bodies share one database.
pub(crate) async fn revoked_tokens_are_remembered_until_purged_after_expiry(store: &dyn Store) {
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    store.revoke_token(a, at(100)).await.unwrap();
    store.revoke_token(b, at(200)).await.unwrap();
    store.revoke_token(c, at(300)).await.unwrap();
    // Revoking again is harmless and never shortens the memory.
    store.revoke_token(a, at(10)).await.unwrap();
    store.revoke_token(b, at(400)).await.unwrap();

    let revoked = async |jti| store.is_token_revoked(jti).await.unwrap();
    assert!(revoked(a).await && revoked(b).await && revoked(c).await);
    assert!(!revoked(Uuid::now_v7()).await);
    // Expired or not, a revocation holds until it is purged.
    assert!(revoked(a).await);

    // A token expiring exactly now may still be accepted: it stays.
    assert_eq!(store.purge_expired_revocations(at(100)).await.unwrap(), 0);
    assert!(revoked(a).await);
    assert_eq!(store.purge_expired_revocations(at(150)).await.unwrap(), 1);
    assert!(!revoked(a).await);
    assert!(revoked(b).await && revoked(c).await);

    // b's second revocation moved its expiry from 200 to 400.
    assert_eq!(store.purge_expired_revocations(at(350)).await.unwrap(), 1);
    assert!(!revoked(c).await);
    assert!(revoked(b).await);

    assert_eq!(store.purge_expired_revocations(at(1_000)).await.unwrap(), 1);
    assert!(!revoked(b).await);
    assert_eq!(store.purge_expired_revocations(at(1_000)).await.unwrap(), 0);

    // A purged token can be revoked again.
    store.revoke_token(a, at(2_000)).await.unwrap();
    assert!(revoked(a).await);
    assert_eq!(store.purge_expired_revocations(at(3_000)).await.unwrap(), 1);
}

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

pub(crate) async fn only_a_taken_username_is_a_username_conflict(store: &dyn Store) {
    let alice = user(store).await;
    let mut same_name = alice.clone();
    same_name.id = UserId::new();
    let error = store.create_user(&same_name).await.unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict("username")),
        "{error:?}"
    );
    // The same id under a free name violates the primary key instead.
    let same_id = UserRecord {
        username: format!("user-{}", UserId::new()),
        ..alice
    };
    let error = store.create_user(&same_id).await.unwrap_err();
    assert!(matches!(error, StoreError::Database(_)), "{error:?}");
}

/// A device of `owner` with `frames` frames, each seeing a cup and a dog.
async fn device_with_frames(store: &dyn Store, owner: &UserRecord, frames: u64) -> DeviceRecord {
    let device = device(store, owner).await;
    let b = [0.0, 0.0, 1.0, 1.0];
    for seq in 0..frames {
        let captured = i64::try_from(seq).unwrap();
        insert(
            store,
            &frame(
                &device,
                seq,
                captured,
                vec![det("cup", 0.5, b), det("dog", 0.5, b)],
            ),
        )
        .await;
    }
    device
}

/// Rows per table that belong to one owner.
const OWNER_ROWS: [(&str, &str); 5] = [
    ("users", "id"),
    ("devices", "owner_id"),
    ("frames", "owner_id"),
    ("detections", "owner_id"),
    ("last_seen", "owner_id"),
];

/// Rows per table that belong to one device.
const DEVICE_ROWS: [(&str, &str); 4] = [
    ("devices", "id"),
    ("frames", "device_id"),
    ("detections", "device_id"),
    ("last_seen", "device_id"),
];

async fn counts(store: &impl RowCounts, tables: &[(&str, &str)], id: Uuid) -> Vec<i64> {
    let mut counts = Vec::new();
    for (table, column) in tables {
        counts.push(store.count_rows(table, Some((column, id))).await);
    }
    counts
}

/// Counts the whole `revoked_tokens` table, so it needs a store of its own,
/// as every backend's `fresh` gives.
pub(crate) async fn deletions_leave_no_row_behind_in_any_table(store: &(impl Store + RowCounts)) {
    let alice = user(store).await;
    let cam = device_with_frames(store, &alice, 3).await;
    let hall = device_with_frames(store, &alice, 2).await;
    let bob = user(store).await;
    device_with_frames(store, &bob, 2).await;
    store.revoke_token(Uuid::now_v7(), at(0)).await.unwrap();

    let hall_before = counts(store, &DEVICE_ROWS, hall.id.as_uuid()).await;
    assert_eq!(hall_before, [1, 2, 4, 2]);
    let bob_before = counts(store, &OWNER_ROWS, bob.id.as_uuid()).await;
    assert_eq!(bob_before, [1, 1, 2, 4, 2]);

    let keys = store
        .delete_device(alice.id, cam.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(counts(store, &DEVICE_ROWS, cam.id.as_uuid()).await, [0; 4]);
    assert_eq!(
        counts(store, &DEVICE_ROWS, hall.id.as_uuid()).await,
        hall_before
    );

    let keys = store.delete_user(alice.id).await.unwrap().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(counts(store, &OWNER_ROWS, alice.id.as_uuid()).await, [0; 5]);
    assert_eq!(
        counts(store, &OWNER_ROWS, bob.id.as_uuid()).await,
        bob_before
    );
    assert_eq!(store.count_rows("revoked_tokens", None).await, 1);
}
