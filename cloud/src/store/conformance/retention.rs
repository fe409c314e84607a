//! Retention: per-user limits, the oldest frames, deleting frames with the
//! `last_seen` repair, shared images and their references.

use super::*;
use crate::store::{AgedFrame, RetentionLimits};

fn sized(mut frame: NewFrame, bytes: u64) -> NewFrame {
    frame.bytes = bytes;
    frame
}

fn aged(frame: &NewFrame, blob_refs: u64) -> AgedFrame {
    AgedFrame {
        id: frame.id,
        received_at: frame.received_at,
        blob_key: frame.blob_key.clone(),
        bytes: frame.bytes,
        blob_refs,
    }
}

async fn all_subjects(store: &dyn Store, page: u32) -> Vec<(UserId, Option<RetentionLimits>)> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let subjects = store.retention_subjects(after, page).await.unwrap();
        let Some(last) = subjects.last() else {
            return found;
        };
        assert!(subjects.len() <= page as usize);
        after = Some(last.user);
        found.extend(subjects.into_iter().map(|s| (s.user, s.limits)));
    }
}

pub(crate) async fn retention_limits_are_set_replaced_and_cleared_per_user(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;
    assert_eq!(store.retention_of(alice.id).await.unwrap(), None);

    let days = RetentionLimits {
        max_age_days: Some(30),
        max_bytes: None,
    };
    assert!(store.set_retention_of(alice.id, Some(days)).await.unwrap());
    assert_eq!(store.retention_of(alice.id).await.unwrap(), Some(days));
    let bytes = RetentionLimits {
        max_age_days: None,
        max_bytes: Some(i64::MAX as u64),
    };
    assert!(store.set_retention_of(alice.id, Some(bytes)).await.unwrap());
    assert_eq!(store.retention_of(alice.id).await.unwrap(), Some(bytes));
    // No limit at all is a setting of its own, not the defaults.
    let none = RetentionLimits::default();
    assert!(store.set_retention_of(bob.id, Some(none)).await.unwrap());
    assert_eq!(store.retention_of(bob.id).await.unwrap(), Some(none));

    let subjects = all_subjects(store, 1).await;
    assert!(subjects.contains(&(alice.id, Some(bytes))), "{subjects:?}");
    assert!(subjects.contains(&(bob.id, Some(none))), "{subjects:?}");
    let ids: Vec<UserId> = subjects.iter().map(|s| s.0).collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort_by_key(|id| id.as_uuid());
    sorted_ids.dedup();
    assert_eq!(ids, sorted_ids, "pages overlap or are out of order");

    assert!(store.set_retention_of(alice.id, None).await.unwrap());
    assert_eq!(store.retention_of(alice.id).await.unwrap(), None);
    assert!(all_subjects(store, 100).await.contains(&(alice.id, None)));
    // Clearing twice is fine; a missing user is told apart.
    assert!(store.set_retention_of(alice.id, None).await.unwrap());
    let ghost = UserId::new();
    assert!(!store.set_retention_of(ghost, Some(days)).await.unwrap());
    assert!(!store.set_retention_of(ghost, None).await.unwrap());
    assert_eq!(store.retention_of(ghost).await.unwrap(), None);

    // Deleting the user takes their limits along.
    store.delete_user(bob.id).await.unwrap();
    assert_eq!(store.retention_of(bob.id).await.unwrap(), None);
    assert!(!all_subjects(store, 100).await.iter().any(|s| s.0 == bob.id));
}

pub(crate) async fn oldest_frames_come_oldest_first_with_their_image_references(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let cup = || vec![det("cup", 0.9, [1.0, 1.0, 5.0, 5.0])];
    let c1 = frame(&cam, 1, 300, cup());
    let c2 = sharing(&c1, 2, 400, cup());
    let c3 = sharing(&c1, 3, 100, cup());
    let h1 = frame(&hall, 1, 200, Vec::new());
    // Same time as h1: the id breaks the tie.
    let h2 = frame(&hall, 2, 200, Vec::new());
    let bob = user(store).await;
    let attic = device(store, &bob).await;
    let b1 = frame(&attic, 1, 50, Vec::new());
    for f in [&c1, &c2, &c3, &h1, &h2, &b1] {
        insert(store, f).await;
    }
    let (first_tie, second_tie) = if h1.id.as_uuid() < h2.id.as_uuid() {
        (&h1, &h2)
    } else {
        (&h2, &h1)
    };
    let everything = vec![
        aged(&c3, 3),
        aged(first_tie, 1),
        aged(second_tie, 1),
        aged(&c1, 3),
        aged(&c2, 3),
    ];
    assert_eq!(
        store.oldest_frames(alice.id, None, 100).await.unwrap(),
        everything
    );
    assert_eq!(
        store.oldest_frames(alice.id, None, 2).await.unwrap(),
        everything[..2]
    );
    // Strictly before: c1, captured at 300, is not.
    assert_eq!(
        store
            .oldest_frames(alice.id, Some(at(300)), 100)
            .await
            .unwrap(),
        everything[..3]
    );
    assert!(
        store
            .oldest_frames(alice.id, Some(at(100)), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.oldest_frames(bob.id, None, 100).await.unwrap(),
        vec![aged(&b1, 1)]
    );
}

/// A device clock stuck in 1970 (a Pi without a real-time clock before NTP)
/// must not make its frames the oldest: retention goes by `received_at`.
/// The flag the ingest sets on such a frame reads back as stored.
pub(crate) async fn oldest_frames_go_by_arrival_not_by_the_device_clock(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let early = frame(&cam, 1, 100, Vec::new());
    let epoch = DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(10);
    let skewed = NewFrame {
        captured_at: epoch,
        received_at: at(500),
        clock_skewed: true,
        ..frame(&cam, 2, 0, Vec::new())
    };
    let late = frame(&cam, 3, 900, Vec::new());
    for f in [&early, &skewed, &late] {
        insert(store, f).await;
    }
    assert_eq!(
        store.oldest_frames(alice.id, None, 100).await.unwrap(),
        vec![aged(&early, 1), aged(&skewed, 1), aged(&late, 1)]
    );
    // Captured in 1970, received at 500: not older than a cutoff at 400.
    assert_eq!(
        store
            .oldest_frames(alice.id, Some(at(400)), 100)
            .await
            .unwrap(),
        vec![aged(&early, 1)]
    );
    let read = store.frame_by_seq(cam.id, 2).await.unwrap().unwrap();
    assert!(read.frame.clock_skewed);
    assert_eq!(read.frame.captured_at, epoch);
    let read = store.frame_by_seq(cam.id, 1).await.unwrap().unwrap();
    assert!(!read.frame.clock_skewed);
}

pub(crate) async fn stored_bytes_count_each_image_once(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    assert_eq!(store.stored_bytes(alice.id).await.unwrap(), 0);
    let f1 = sized(frame(&cam, 1, 100, Vec::new()), 1_000);
    let f2 = sharing(&f1, 2, 200, Vec::new());
    let f3 = sized(frame(&cam, 3, 300, Vec::new()), 250);
    let bob = user(store).await;
    let attic = device(store, &bob).await;
    let b1 = sized(frame(&attic, 1, 100, Vec::new()), 7);
    for f in [&f1, &f2, &f3, &b1] {
        insert(store, f).await;
    }
    assert_eq!(store.stored_bytes(alice.id).await.unwrap(), 1_250);
    assert_eq!(store.stored_bytes(bob.id).await.unwrap(), 7);
}

pub(crate) async fn deleting_frames_repairs_last_seen_and_returns_the_images_left_unused(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let old_cup = det("cup", 0.9, [1.0, 1.0, 5.0, 5.0]);
    let weak_cup = det("cup", 0.3, [2.0, 2.0, 5.0, 5.0]);
    let strong_cup = det("cup", 0.8, [3.0, 3.0, 5.0, 5.0]);
    let dog = det("dog", 0.7, [2.0, 2.0, 4.0, 4.0]);
    let f1 = frame(&cam, 1, 100, vec![old_cup.clone()]);
    // Two frames at 150, the first with the weaker cup.
    let f2 = frame(&cam, 2, 150, vec![weak_cup.clone()]);
    let f3 = frame(&cam, 3, 150, vec![strong_cup.clone()]);
    let f4 = frame(&cam, 4, 300, vec![old_cup.clone(), dog.clone()]);
    let f5 = sharing(&f4, 5, 310, vec![old_cup.clone(), dog.clone()]);
    let h1 = frame(&hall, 1, 200, vec![det("cup", 0.5, [0.0, 0.0, 1.0, 1.0])]);
    let bob = user(store).await;
    let attic = device(store, &bob).await;
    let b1 = frame(&attic, 1, 100, vec![det("cup", 0.5, [1.0, 1.0, 5.0, 5.0])]);
    for f in [&f1, &f2, &f3, &f4, &f5, &h1, &b1] {
        insert(store, f).await;
    }
    let bobs_before = snapshot(store, &bob, &[&attic], &[&b1]).await;
    let cup = label("cup");
    let dog_label = label("dog");
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&cam, &f5, &old_cup)]
    );

    // f5 shares f4's image: deleting it alone frees nothing. The sighting
    // moves back to f4.
    assert_eq!(
        store.delete_frames(alice.id, &[f5.id]).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&cam, &f4, &old_cup)]
    );

    // Now f4's image has no frame left; the kitchen's newest cup is the
    // stronger of the two at 150, and its dog is gone; hall's cup at 200
    // is now the owner's newest.
    assert_eq!(
        store.delete_frames(alice.id, &[f4.id]).await.unwrap(),
        vec![f4.blob_key.clone()]
    );
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&hall, &h1, &h1.detections[0])]
    );
    assert_eq!(
        store.last_seen(alice.id, Some(&dog_label)).await.unwrap(),
        Vec::new()
    );
    let hall_gone = store.delete_frames(alice.id, &[h1.id]).await.unwrap();
    assert_eq!(hall_gone, vec![h1.blob_key.clone()]);
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&cam, &f3, &strong_cup)]
    );

    // Another owner's frame and unknown ids are left alone; several at once.
    let keys = store
        .delete_frames(alice.id, &[f2.id, f3.id, b1.id, FrameId::new()])
        .await
        .unwrap();
    assert_eq!(sorted(keys), sorted_keys(&[&f2, &f3]));
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&cam, &f1, &old_cup)]
    );
    assert_eq!(
        store.delete_frames(alice.id, &[]).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.delete_frames(alice.id, &[f1.id]).await.unwrap(),
        vec![f1.blob_key.clone()]
    );
    assert_eq!(store.last_seen(alice.id, None).await.unwrap(), Vec::new());
    assert!(store.detections(&query(&alice)).await.unwrap().is_empty());
    for f in [&f1, &f2, &f3, &f4, &f5, &h1] {
        assert_eq!(store.frame_of_owner(alice.id, f.id).await.unwrap(), None);
    }
    assert_eq!(snapshot(store, &bob, &[&attic], &[&b1]).await, bobs_before);
}

pub(crate) async fn a_frame_sharing_an_image_is_stored_only_while_the_image_has_frames(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let f1 = frame(&cam, 1, 100, Vec::new());
    let f2 = sharing(&f1, 2, 200, Vec::new());
    insert(store, &f1).await;
    insert(store, &f2).await;
    assert_eq!(
        store.frame_by_seq(cam.id, 2).await.unwrap(),
        Some(expected(&cam, &f2))
    );
    // f2 still points at the image, so f3 may share it after f1 is gone.
    assert_eq!(
        store.delete_frames(alice.id, &[f1.id]).await.unwrap(),
        Vec::<String>::new()
    );
    let f3 = sharing(&f1, 3, 300, Vec::new());
    insert(store, &f3).await;
    assert_eq!(
        store
            .delete_frames(alice.id, &[f2.id, f3.id])
            .await
            .unwrap(),
        vec![f1.blob_key.clone()]
    );
    // The image is on its way out: nothing is stored.
    let f4 = sharing(&f1, 4, 400, vec![det("cup", 0.5, [1.0, 1.0, 2.0, 2.0])]);
    assert_eq!(
        store.insert_frame(&f4).await.unwrap(),
        InsertOutcome::ImageGone
    );
    assert_eq!(store.frame_by_seq(cam.id, 4).await.unwrap(), None);
    assert!(store.detections(&query(&alice)).await.unwrap().is_empty());
    // A resend of a stored seq is a duplicate before anything else.
    let f5 = frame(&cam, 5, 500, Vec::new());
    insert(store, &f5).await;
    let resent = sharing(&f1, 5, 500, Vec::new());
    assert_eq!(
        store.insert_frame(&resent).await.unwrap(),
        InsertOutcome::Duplicate(f5.id)
    );
    // Another device's frames do not keep an image alive for this one.
    let hall = device_at(store, &alice, "hall", 1).await;
    let mut foreign = frame(&hall, 1, 600, Vec::new());
    foreign.blob_key = f5.blob_key.clone();
    insert(store, &foreign).await;
    store.delete_frames(alice.id, &[f5.id]).await.unwrap();
    assert_eq!(
        store
            .insert_frame(&sharing(&f5, 6, 600, Vec::new()))
            .await
            .unwrap(),
        InsertOutcome::ImageGone
    );
}

pub(crate) async fn unreferenced_blob_keys_are_those_no_frame_points_at(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let f1 = frame(&cam, 1, 100, Vec::new());
    let f2 = sharing(&f1, 2, 200, Vec::new());
    insert(store, &f1).await;
    insert(store, &f2).await;
    let orphan = format!("frames/{}/{:020}.jpg", cam.id, 9);
    let other = format!("frames/{}/{:020}.jpg", DeviceId::new(), 1);
    let asked = vec![
        f1.blob_key.clone(),
        orphan.clone(),
        other.clone(),
        orphan.clone(),
    ];
    assert_eq!(
        sorted(store.unreferenced_blob_keys(&asked).await.unwrap()),
        sorted(vec![orphan, other])
    );
    assert!(store.unreferenced_blob_keys(&[]).await.unwrap().is_empty());
}
