//! The `last_seen` index.

use super::*;

pub(crate) async fn last_seen_moves_forward_but_never_back(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let cup = label("cup");
    let old = frame(&cam, 1, 100, vec![det("cup", 0.6, [1.0, 1.0, 2.0, 2.0])]);
    let new = frame(&cam, 2, 200, vec![det("cup", 0.5, [3.0, 3.0, 4.0, 4.0])]);
    // Sent late from the device's spool: older than `new`, but with a label never seen.
    let late = frame(
        &cam,
        3,
        150,
        vec![
            det("cup", 0.99, [5.0, 5.0, 6.0, 6.0]),
            det("book", 0.4, [7.0, 7.0, 8.0, 8.0]),
        ],
    );

    insert(store, &old).await;
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        vec![sighting_of(&cam, &old, &old.detections[0])]
    );
    insert(store, &new).await;
    let newest_cup = vec![sighting_of(&cam, &new, &new.detections[0])];
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        newest_cup
    );
    insert(store, &late).await;
    assert_eq!(
        store.last_seen(alice.id, Some(&cup)).await.unwrap(),
        newest_cup
    );
    assert_eq!(
        store
            .last_seen(alice.id, Some(&label("book")))
            .await
            .unwrap(),
        vec![sighting_of(&cam, &late, &late.detections[1])]
    );
}

pub(crate) async fn last_seen_keeps_the_best_detection_of_a_label_in_a_frame(store: &dyn Store) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let shot = frame(
        &cam,
        1,
        10,
        vec![
            det("cup", 0.4, [1.0, 1.0, 2.0, 2.0]),
            det("cup", 0.9, [3.0, 3.0, 4.0, 4.0]),
            det("cup", 0.6, [5.0, 5.0, 6.0, 6.0]),
        ],
    );
    insert(store, &shot).await;
    assert_eq!(
        store
            .last_seen(alice.id, Some(&label("cup")))
            .await
            .unwrap(),
        vec![sighting_of(&cam, &shot, &shot.detections[1])]
    );
}

pub(crate) async fn last_seen_of_all_labels_is_the_newest_per_label_newest_first(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let kitchen = device_at(store, &alice, "kitchen", 0).await;
    let hall = device_at(store, &alice, "hall", 1).await;
    let k1 = frame(
        &kitchen,
        1,
        10,
        vec![
            det("cup", 0.7, [1.0, 1.0, 2.0, 2.0]),
            det("book", 0.6, [3.0, 3.0, 4.0, 4.0]),
        ],
    );
    let h1 = frame(&hall, 1, 20, vec![det("cup", 0.5, [5.0, 5.0, 6.0, 6.0])]);
    let k2 = frame(
        &kitchen,
        2,
        30,
        vec![det("person", 0.8, [7.0, 7.0, 8.0, 8.0])],
    );
    for f in [&k1, &h1, &k2] {
        insert(store, f).await;
    }

    assert_eq!(
        store.last_seen(alice.id, None).await.unwrap(),
        vec![
            sighting_of(&kitchen, &k2, &k2.detections[0]),
            sighting_of(&hall, &h1, &h1.detections[0]),
            sighting_of(&kitchen, &k1, &k1.detections[1]),
        ]
    );
    assert_eq!(
        store
            .last_seen(alice.id, Some(&label("cup")))
            .await
            .unwrap(),
        vec![sighting_of(&hall, &h1, &h1.detections[0])]
    );
    assert!(
        store
            .last_seen(alice.id, Some(&label("dog")))
            .await
            .unwrap()
            .is_empty()
    );
}
