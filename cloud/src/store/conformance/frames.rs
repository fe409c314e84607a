//! Storing frames: read-back, idempotence, limits, and the image an
//! unchanged scene is compared with.

use super::*;

pub(crate) async fn stored_frame_is_read_back_by_seq_and_by_its_owner_only(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let new = frame(
        &cam,
        7,
        100,
        vec![
            det("cup", 0.55, [1.0, 2.0, 3.0, 4.0]),
            det("person", 0.91, [10.5, 20.25, 300.0, 350.0]),
            det("book", 0.3, [0.0, 0.0, 640.0, 360.0]),
        ],
    );
    insert(store, &new).await;
    let want = expected(&cam, &new);

    assert_eq!(
        store.frame_by_seq(cam.id, 7).await.unwrap(),
        Some(want.clone())
    );
    assert_eq!(
        store.frame_of_owner(alice.id, new.id).await.unwrap(),
        Some(want)
    );
    assert_eq!(store.frame_by_seq(cam.id, 8).await.unwrap(), None);
    assert_eq!(store.frame_by_seq(DeviceId::new(), 7).await.unwrap(), None);
    assert_eq!(
        store
            .frame_of_owner(alice.id, FrameId::new())
            .await
            .unwrap(),
        None
    );

    let mallory = user(store).await;
    assert_eq!(
        store.frame_of_owner(mallory.id, new.id).await.unwrap(),
        None
    );
}

pub(crate) async fn frame_without_detections_is_stored(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let empty = frame(&cam, 1, 10, Vec::new());
    insert(store, &empty).await;
    assert_eq!(
        store.frame_of_owner(alice.id, empty.id).await.unwrap(),
        Some(expected(&cam, &empty))
    );
    assert!(store.last_seen(alice.id, None).await.unwrap().is_empty());
    assert!(store.detections(&query(&alice)).await.unwrap().is_empty());
}

pub(crate) async fn duplicate_seq_is_stored_once(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let first = frame(&cam, 42, 100, vec![det("cup", 0.8, [1.0, 1.0, 5.0, 5.0])]);
    insert(store, &first).await;

    // A resend: same (device, seq), but a new id, newer time and other detections.
    let mut resent = frame(
        &cam,
        42,
        500,
        vec![
            det("cup", 0.9, [2.0, 2.0, 6.0, 6.0]),
            det("dog", 0.7, [0.0, 0.0, 1.0, 1.0]),
        ],
    );
    resent.blob_key = "frames/other.jpg".into();
    assert_eq!(
        store.insert_frame(&resent).await.unwrap(),
        InsertOutcome::Duplicate(first.id)
    );
    assert_eq!(
        store.insert_frame(&first).await.unwrap(),
        InsertOutcome::Duplicate(first.id)
    );

    assert_eq!(
        store.frame_by_seq(cam.id, 42).await.unwrap(),
        Some(expected(&cam, &first))
    );
    assert_eq!(
        store.frame_of_owner(alice.id, resent.id).await.unwrap(),
        None
    );
    assert_eq!(store.detections(&query(&alice)).await.unwrap().len(), 1);
    assert_eq!(
        store.last_seen(alice.id, None).await.unwrap(),
        vec![sighting_of(&cam, &first, &first.detections[0])]
    );
}

pub(crate) async fn identity_of_a_stored_seq_and_the_highest_seq_are_read_back(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let other = device_at(store, &alice, "hall", 1).await;
    assert_eq!(store.highest_seq(cam.id).await.unwrap(), None);

    let digest = ImageDigest::of(b"a jpeg");
    let with_digest = NewFrame {
        image_sha256: Some(digest),
        ..frame(&cam, 3, 100, Vec::new())
    };
    insert(store, &with_digest).await;
    // As stored before digests were kept.
    let without = frame(&cam, 9, 50, Vec::new());
    insert(store, &without).await;
    insert(store, &frame(&other, 20, 70, Vec::new())).await;

    assert_eq!(
        store.frame_identity(cam.id, 3).await.unwrap(),
        Some(FrameIdentity {
            captured_at: at(100),
            image_sha256: Some(digest),
        })
    );
    assert_eq!(
        store.frame_identity(cam.id, 9).await.unwrap(),
        Some(FrameIdentity {
            captured_at: at(50),
            image_sha256: None,
        })
    );
    assert_eq!(store.frame_identity(cam.id, 4).await.unwrap(), None);
    assert_eq!(store.frame_identity(cam.id, u64::MAX).await.unwrap(), None);
    assert_eq!(store.frame_identity(other.id, 3).await.unwrap(), None);

    // The highest, not the newest: seq 9 was captured before seq 3.
    assert_eq!(store.highest_seq(cam.id).await.unwrap(), Some(9));
    assert_eq!(store.highest_seq(other.id).await.unwrap(), Some(20));
    assert_eq!(store.highest_seq(DeviceId::new()).await.unwrap(), None);
}

pub(crate) async fn concurrent_inserts_of_one_seq_store_one_frame(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let same: Vec<NewFrame> = (0..3)
        .map(|_| frame(&cam, 9, 90, vec![det("cup", 0.5, [0.0, 0.0, 1.0, 1.0])]))
        .collect();
    let other: Vec<NewFrame> = (10..13)
        .map(|seq| frame(&cam, seq, 100, vec![det("cup", 0.5, [0.0, 0.0, 1.0, 1.0])]))
        .collect();
    let (a, b, c, x, y, z) = tokio::join!(
        store.insert_frame(&same[0]),
        store.insert_frame(&same[1]),
        store.insert_frame(&same[2]),
        store.insert_frame(&other[0]),
        store.insert_frame(&other[1]),
        store.insert_frame(&other[2]),
    );
    for outcome in [x, y, z] {
        assert_eq!(outcome.unwrap(), InsertOutcome::Inserted);
    }
    let outcomes = [a.unwrap(), b.unwrap(), c.unwrap()];
    let stored = store
        .frame_by_seq(cam.id, 9)
        .await
        .unwrap()
        .unwrap()
        .frame
        .id;
    let inserted = outcomes
        .iter()
        .filter(|o| **o == InsertOutcome::Inserted)
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    for (outcome, frame) in outcomes.iter().zip(&same) {
        let want = if frame.id == stored {
            InsertOutcome::Inserted
        } else {
            InsertOutcome::Duplicate(stored)
        };
        assert_eq!(*outcome, want);
    }
    assert_eq!(store.detections(&query(&alice)).await.unwrap().len(), 4);
}

pub(crate) async fn seq_beyond_i64_max_is_refused_and_i64_max_round_trips(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let too_big = frame(
        &cam,
        u64::MAX,
        10,
        vec![det("cup", 0.5, [0.0, 0.0, 1.0, 1.0])],
    );
    assert!(store.insert_frame(&too_big).await.is_err());
    assert_eq!(store.frame_by_seq(cam.id, u64::MAX).await.unwrap(), None);
    assert!(store.detections(&query(&alice)).await.unwrap().is_empty());

    let largest = i64::MAX.unsigned_abs();
    let last = frame(&cam, largest, 10, Vec::new());
    insert(store, &last).await;
    assert_eq!(
        store.frame_by_seq(cam.id, largest).await.unwrap(),
        Some(expected(&cam, &last))
    );
}

pub(crate) async fn frame_with_thousands_of_detections_is_stored_whole(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    // More rows than one statement may bind on SQLite (32766 / 10 per row).
    let many: Vec<Detection> = (0..7_000u16)
        .map(|i| {
            det(
                if i % 2 == 0 { "cup" } else { "book" },
                f32::from(i) / 7_000.0,
                [0.0, 0.0, 1.0, 1.0],
            )
        })
        .collect();
    let big = frame(&cam, 1, 10, many);
    insert(store, &big).await;
    let stored = store.frame_by_seq(cam.id, 1).await.unwrap().unwrap();
    assert_eq!(stored, expected(&cam, &big));
    let sightings = store.last_seen(alice.id, None).await.unwrap();
    let best: Vec<(String, f32)> = sightings
        .iter()
        .map(|s| (s.label.to_string(), s.score))
        .collect();
    assert_eq!(best.len(), 2);
    assert!(
        best.contains(&("book".into(), 6_999.0 / 7_000.0)),
        "{best:?}"
    );
    assert!(
        best.contains(&("cup".into(), 6_998.0 / 7_000.0)),
        "{best:?}"
    );
}

pub(crate) async fn previous_image_is_the_first_frame_showing_the_previous_frames_image(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let cam = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    assert_eq!(store.previous_image(cam.id, 1).await.unwrap(), None);
    let f1 = frame(&cam, 1, 100, vec![det("cup", 0.9, [1.0, 1.0, 5.0, 5.0])]);
    let f2 = sharing(&f1, 2, 200, vec![det("cup", 0.8, [1.5, 1.0, 5.0, 5.0])]);
    let f4 = frame(&cam, 4, 400, vec![det("dog", 0.7, [2.0, 2.0, 4.0, 4.0])]);
    let h9 = frame(&hall, 9, 50, Vec::new());
    for f in [&f1, &f2, &f4, &h9] {
        insert(store, f).await;
    }
    assert_eq!(store.previous_image(cam.id, 1).await.unwrap(), None);
    assert_eq!(
        store.previous_image(cam.id, 2).await.unwrap(),
        Some(expected(&cam, &f1))
    );
    // f2 shows f1's image, so f1 is what a new frame is compared with.
    assert_eq!(
        store.previous_image(cam.id, 3).await.unwrap(),
        Some(expected(&cam, &f1))
    );
    assert_eq!(
        store.previous_image(cam.id, 4).await.unwrap(),
        Some(expected(&cam, &f1))
    );
    for seq in [5, i64::MAX as u64, u64::MAX] {
        assert_eq!(
            store.previous_image(cam.id, seq).await.unwrap(),
            Some(expected(&cam, &f4))
        );
    }
    // Once f1 is gone, f2 is the first frame showing that image.
    store.delete_frames(alice.id, &[f1.id]).await.unwrap();
    assert_eq!(
        store.previous_image(cam.id, 3).await.unwrap(),
        Some(expected(&cam, &f2))
    );
    assert_eq!(
        store.previous_image(hall.id, 10).await.unwrap(),
        Some(expected(&hall, &h9))
    );
}
