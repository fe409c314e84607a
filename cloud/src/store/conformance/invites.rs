//! Invite codes ([`crate::store::InviteStore`]).

use super::*;
use crate::store::{InviteRecord, InvitedOutcome};

/// A distinct hash per call (the shape the domain stores: 64 hex digits).
fn hash() -> String {
    format!("{:032x}{:032x}", UserId::new().as_uuid().as_u128(), 7u128)
}

/// An unused invite made at `at(created)`, expiring at `at(expires)`.
fn invite(created_by: Option<&UserRecord>, created: i64, expires: i64) -> InviteRecord {
    InviteRecord {
        code_hash: hash(),
        created_by: created_by.map(|u| u.id),
        created_at: at(created),
        expires_at: at(expires),
        used_at: None,
        used_by: None,
    }
}

/// A user record that is not stored yet.
fn newcomer() -> UserRecord {
    UserRecord {
        id: UserId::new(),
        username: format!("new-{}", UserId::new()),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: at(10),
        tokens_valid_after: at(10),
    }
}

async fn stored(store: &dyn Store, invite: &InviteRecord) {
    assert!(store.create_invite(invite, None).await.unwrap());
}

pub(crate) async fn invites_round_trip_and_are_usable_until_they_expire(store: &dyn Store) {
    let alice = user(store).await;
    let by_operator = invite(None, 0, 100);
    let by_alice = invite(Some(&alice), 0, 100);
    stored(store, &by_operator).await;
    stored(store, &by_alice).await;
    assert_eq!(
        store.invite(&by_operator.code_hash).await.unwrap(),
        Some(by_operator.clone())
    );
    assert_eq!(
        store.invite(&by_alice.code_hash).await.unwrap(),
        Some(by_alice.clone())
    );
    assert_eq!(store.invite(&hash()).await.unwrap(), None);

    let code = &by_operator.code_hash;
    assert!(store.invite_is_usable(code, at(0)).await.unwrap());
    assert!(store.invite_is_usable(code, at(99)).await.unwrap());
    // `expires_at` itself is too late.
    assert!(!store.invite_is_usable(code, at(100)).await.unwrap());
    assert!(!store.invite_is_usable(&hash(), at(0)).await.unwrap());
}

pub(crate) async fn an_invite_admits_one_account(store: &dyn Store) {
    let code = invite(None, 0, 100);
    stored(store, &code).await;
    let first = newcomer();
    assert_eq!(
        store
            .create_user_with_invite(&first, &code.code_hash, at(10))
            .await
            .unwrap(),
        InvitedOutcome::Created
    );
    assert_eq!(
        store.user_by_id(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.invite(&code.code_hash).await.unwrap(),
        Some(InviteRecord {
            used_at: Some(at(10)),
            used_by: Some(first.id),
            ..code.clone()
        })
    );
    assert!(
        !store
            .invite_is_usable(&code.code_hash, at(11))
            .await
            .unwrap()
    );

    let second = newcomer();
    assert_eq!(
        store
            .create_user_with_invite(&second, &code.code_hash, at(11))
            .await
            .unwrap(),
        InvitedOutcome::InviteInvalid
    );
    assert_eq!(store.user_by_id(second.id).await.unwrap(), None);
    // An unknown code admits nobody either.
    assert_eq!(
        store
            .create_user_with_invite(&second, &hash(), at(11))
            .await
            .unwrap(),
        InvitedOutcome::InviteInvalid
    );
    assert_eq!(
        store.user_by_username(&second.username).await.unwrap(),
        None
    );
}

pub(crate) async fn an_expired_invite_admits_nobody(store: &dyn Store) {
    let code = invite(None, 0, 100);
    stored(store, &code).await;
    let late = newcomer();
    assert_eq!(
        store
            .create_user_with_invite(&late, &code.code_hash, at(100))
            .await
            .unwrap(),
        InvitedOutcome::InviteInvalid
    );
    assert_eq!(store.user_by_id(late.id).await.unwrap(), None);
    assert_eq!(store.invite(&code.code_hash).await.unwrap(), Some(code));
}

pub(crate) async fn a_taken_username_leaves_the_invite_unused(store: &dyn Store) {
    let alice = user(store).await;
    let code = invite(None, 0, 100);
    stored(store, &code).await;
    let copycat = UserRecord {
        username: alice.username.clone(),
        ..newcomer()
    };
    let error = store
        .create_user_with_invite(&copycat, &code.code_hash, at(10))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict("username")),
        "{error:?}"
    );
    assert_eq!(store.user_by_id(copycat.id).await.unwrap(), None);
    assert_eq!(
        store.invite(&code.code_hash).await.unwrap(),
        Some(code.clone())
    );
    // The code still works for a free name.
    assert_eq!(
        store
            .create_user_with_invite(&newcomer(), &code.code_hash, at(11))
            .await
            .unwrap(),
        InvitedOutcome::Created
    );
}

pub(crate) async fn concurrent_uses_of_one_invite_admit_one_account(store: &dyn Store) {
    let code = invite(None, 0, 100);
    stored(store, &code).await;
    let people: Vec<UserRecord> = (0..4).map(|_| newcomer()).collect();
    let (a, b, c, d) = tokio::join!(
        store.create_user_with_invite(&people[0], &code.code_hash, at(10)),
        store.create_user_with_invite(&people[1], &code.code_hash, at(10)),
        store.create_user_with_invite(&people[2], &code.code_hash, at(10)),
        store.create_user_with_invite(&people[3], &code.code_hash, at(10)),
    );
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    let created: Vec<&UserRecord> = people
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| *outcome == InvitedOutcome::Created)
        .map(|(person, _)| person)
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    let mut existing = 0;
    for person in &people {
        existing += usize::from(store.user_by_id(person.id).await.unwrap().is_some());
    }
    assert_eq!(existing, 1);
    assert_eq!(
        store
            .invite(&code.code_hash)
            .await
            .unwrap()
            .unwrap()
            .used_by,
        Some(created[0].id)
    );
}

pub(crate) async fn the_cap_counts_only_the_makers_open_invites(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;
    let cap = Some(2);
    // Expired by the time the next ones are made: not counted.
    assert!(
        store
            .create_invite(&invite(Some(&alice), 0, 10), cap)
            .await
            .unwrap()
    );
    let used = invite(Some(&alice), 10, 100);
    assert!(store.create_invite(&used, cap).await.unwrap());
    assert_eq!(
        store
            .create_user_with_invite(&newcomer(), &used.code_hash, at(15))
            .await
            .unwrap(),
        InvitedOutcome::Created
    );
    // Open: these two reach the cap.
    assert!(
        store
            .create_invite(&invite(Some(&alice), 20, 100), cap)
            .await
            .unwrap()
    );
    assert!(
        store
            .create_invite(&invite(Some(&alice), 20, 100), cap)
            .await
            .unwrap()
    );
    let refused = invite(Some(&alice), 20, 100);
    assert!(!store.create_invite(&refused, cap).await.unwrap());
    assert_eq!(store.invite(&refused.code_hash).await.unwrap(), None);
    // Another maker, the operator, and no cap at all are not affected.
    assert!(
        store
            .create_invite(&invite(Some(&bob), 20, 100), cap)
            .await
            .unwrap()
    );
    assert!(
        store
            .create_invite(&invite(None, 20, 100), cap)
            .await
            .unwrap()
    );
    assert!(
        store
            .create_invite(&invite(Some(&alice), 20, 100), None)
            .await
            .unwrap()
    );
    // Concurrent requests cannot pass the cap together.
    let carol = user(store).await;
    let tries: Vec<InviteRecord> = (0..4).map(|_| invite(Some(&carol), 20, 100)).collect();
    let (a, b, c, d) = tokio::join!(
        store.create_invite(&tries[0], cap),
        store.create_invite(&tries[1], cap),
        store.create_invite(&tries[2], cap),
        store.create_invite(&tries[3], cap),
    );
    let made = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    assert_eq!(made.iter().filter(|made| **made).count(), 2, "{made:?}");
}

pub(crate) async fn an_existing_hash_is_a_conflict(store: &dyn Store) {
    let first = invite(None, 0, 100);
    stored(store, &first).await;
    let again = InviteRecord {
        expires_at: at(200),
        ..first.clone()
    };
    let error = store.create_invite(&again, None).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict("invite")), "{error:?}");
    assert_eq!(store.invite(&first.code_hash).await.unwrap(), Some(first));
}

pub(crate) async fn invites_go_with_their_maker_and_outlive_their_account(store: &dyn Store) {
    let alice = user(store).await;
    let hers = invite(Some(&alice), 0, 100);
    stored(store, &hers).await;
    let operators = invite(None, 0, 100);
    stored(store, &operators).await;
    let newcomer = newcomer();
    assert_eq!(
        store
            .create_user_with_invite(&newcomer, &operators.code_hash, at(10))
            .await
            .unwrap(),
        InvitedOutcome::Created
    );

    assert!(store.delete_user(alice.id).await.unwrap().is_some());
    assert_eq!(store.invite(&hers.code_hash).await.unwrap(), None);

    // Deleting the account a code made keeps the code, used, without the name.
    assert!(store.delete_user(newcomer.id).await.unwrap().is_some());
    assert_eq!(
        store.invite(&operators.code_hash).await.unwrap(),
        Some(InviteRecord {
            used_at: Some(at(10)),
            used_by: None,
            ..operators
        })
    );
}
