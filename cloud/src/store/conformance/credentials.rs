//! User credentials: password changes, the user token cut-off, and the deny
//! list of single revoked tokens.

use uuid::Uuid;

use super::*;

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
