//! The owner's reads: the `last_seen` index, detection listings, a device's
//! frames, and owner isolation across every read.

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

pub(crate) async fn detections_are_filtered_by_label_device_and_time_window(store: &dyn Store) {
    let alice = user(store).await;
    let d1 = device_at(store, &alice, "kitchen", 0).await;
    let d2 = device_at(store, &alice, "hall", 1).await;
    let b = [0.0, 0.0, 1.0, 1.0];
    let f11 = frame(&d1, 1, 10, vec![det("cup", 0.5, b), det("person", 0.6, b)]);
    let f12 = frame(&d1, 2, 20, vec![det("cup", 0.7, b)]);
    let f21 = frame(&d2, 1, 20, vec![det("book", 0.8, b), det("cup", 0.9, b)]);
    let f22 = frame(&d2, 2, 30, vec![det("person", 0.4, b)]);
    for f in [&f11, &f12, &f21, &f22] {
        insert(store, f).await;
    }
    let fl = |f: &NewFrame, l: &str| (f.id, l.to_owned());
    let run = |q: DetectionQuery| async move { store.detections(&q).await.unwrap() };

    let all = run(query(&alice)).await;
    assert_eq!(
        frames_and_labels(&all),
        vec![
            fl(&f22, "person"),
            fl(&f21, "cup"),
            fl(&f21, "book"),
            fl(&f12, "cup"),
            fl(&f11, "person"),
            fl(&f11, "cup"),
        ]
    );
    assert_eq!(
        all[0],
        DetectionRow {
            id: all[0].id,
            frame: f22.id,
            device: d2.id,
            device_name: "hall".into(),
            captured_at: f22.captured_at,
            detection: f22.detections[0].clone(),
        }
    );

    let cups = run(DetectionQuery {
        label: Some(label("cup")),
        ..query(&alice)
    })
    .await;
    assert_eq!(
        frames_and_labels(&cups),
        vec![fl(&f21, "cup"), fl(&f12, "cup"), fl(&f11, "cup")]
    );

    let on_d2 = run(DetectionQuery {
        device: Some(d2.id),
        ..query(&alice)
    })
    .await;
    assert_eq!(
        frames_and_labels(&on_d2),
        vec![fl(&f22, "person"), fl(&f21, "cup"), fl(&f21, "book")]
    );

    let d1_people = run(DetectionQuery {
        label: Some(label("person")),
        device: Some(d1.id),
        ..query(&alice)
    })
    .await;
    assert_eq!(frames_and_labels(&d1_people), vec![fl(&f11, "person")]);

    // since is inclusive, until exclusive.
    let window = run(DetectionQuery {
        since: Some(at(20)),
        until: Some(at(30)),
        ..query(&alice)
    })
    .await;
    assert_eq!(
        frames_and_labels(&window),
        vec![fl(&f21, "cup"), fl(&f21, "book"), fl(&f12, "cup")]
    );
    assert!(
        run(DetectionQuery {
            until: Some(at(10)),
            ..query(&alice)
        })
        .await
        .is_empty()
    );
    assert_eq!(
        run(DetectionQuery {
            since: Some(at(30)),
            ..query(&alice)
        })
        .await
        .len(),
        1
    );

    assert!(
        run(DetectionQuery {
            limit: 0,
            ..query(&alice)
        })
        .await
        .is_empty()
    );
    assert_eq!(
        run(DetectionQuery {
            limit: 2,
            ..query(&alice)
        })
        .await,
        all[..2].to_vec()
    );
}

pub(crate) async fn detection_pages_neither_lose_nor_repeat_rows_when_times_tie(store: &dyn Store) {
    let alice = user(store).await;
    let d1 = device_at(store, &alice, "kitchen", 0).await;
    let d2 = device_at(store, &alice, "hall", 1).await;
    let b = [0.0, 0.0, 1.0, 1.0];
    // Seven frames over three instants: many rows share a captured_at.
    for (seq, (cam, time)) in [
        (&d1, 10),
        (&d2, 10),
        (&d1, 10),
        (&d2, 20),
        (&d1, 20),
        (&d1, 30),
        (&d2, 30),
    ]
    .into_iter()
    .enumerate()
    {
        let seq = u64::try_from(seq).unwrap();
        let dets = vec![det("cup", 0.5, b), det("cup", 0.6, b), det("book", 0.7, b)];
        insert(store, &frame(cam, seq, time, dets)).await;
    }

    for (filter, page_size, total) in [(None, 8, 21), (Some(label("cup")), 5, 14)] {
        let base = DetectionQuery {
            label: filter,
            ..query(&alice)
        };
        let everything = store.detections(&base).await.unwrap();
        assert_eq!(everything.len(), total);
        for pair in everything.windows(2) {
            assert!(
                (pair[0].captured_at, pair[0].id) > (pair[1].captured_at, pair[1].id),
                "not strictly newest first: {pair:?}"
            );
        }

        let mut paged = Vec::new();
        let mut pages = 0;
        let mut after = None;
        loop {
            let page = store
                .detections(&DetectionQuery {
                    after,
                    limit: page_size,
                    ..base.clone()
                })
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(cursor_after(last));
            pages += 1;
            paged.extend(page);
        }
        assert_eq!(pages, 3);
        assert_eq!(paged, everything);
    }
}

pub(crate) async fn no_read_crosses_owners(store: &dyn Store) {
    let alice = user(store).await;
    let bob = user(store).await;
    let a_cam = device(store, &alice).await;
    let b_cam = device(store, &bob).await;
    let b = [0.0, 0.0, 1.0, 1.0];
    let a_frame = frame(&a_cam, 1, 50, vec![det("cup", 0.9, b), det("book", 0.8, b)]);
    let b_frame = frame(&b_cam, 1, 10, vec![det("cup", 0.3, b)]);
    insert(store, &a_frame).await;
    insert(store, &b_frame).await;

    // A frame that names the wrong owner for its device is refused outright.
    let forged = NewFrame {
        owner: bob.id,
        ..frame(&a_cam, 2, 60, vec![det("dog", 0.9, b)])
    };
    assert!(store.insert_frame(&forged).await.is_err());

    assert_eq!(store.devices_of(bob.id).await.unwrap(), vec![b_cam.clone()]);
    assert_eq!(store.count_devices_of(bob.id).await.unwrap(), 1);
    assert_eq!(
        store.frame_of_owner(bob.id, a_frame.id).await.unwrap(),
        None
    );
    assert_eq!(store.frame_of_owner(bob.id, forged.id).await.unwrap(), None);
    assert_eq!(
        store.last_seen(bob.id, None).await.unwrap(),
        vec![sighting_of(&b_cam, &b_frame, &b_frame.detections[0])]
    );
    assert_eq!(
        store
            .last_seen(bob.id, Some(&label("cup")))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .last_seen(bob.id, Some(&label("book")))
            .await
            .unwrap()
            .is_empty()
    );

    let bobs = store.detections(&query(&bob)).await.unwrap();
    assert_eq!(
        frames_and_labels(&bobs),
        vec![(b_frame.id, "cup".to_owned())]
    );
    let through_alices_device = DetectionQuery {
        device: Some(a_cam.id),
        ..query(&bob)
    };
    assert!(
        store
            .detections(&through_alices_device)
            .await
            .unwrap()
            .is_empty()
    );
    let by_label = DetectionQuery {
        label: Some(label("book")),
        ..query(&bob)
    };
    assert!(store.detections(&by_label).await.unwrap().is_empty());

    assert_eq!(store.detections(&query(&alice)).await.unwrap().len(), 2);
    assert_eq!(store.last_seen(alice.id, None).await.unwrap().len(), 2);
}

pub(crate) async fn frames_of_a_device_are_listed_in_seq_order_for_its_owner_only(
    store: &dyn Store,
) {
    let alice = user(store).await;
    let cam = device(store, &alice).await;
    let other_cam = device_at(store, &alice, "hall", 1).await;
    // Inserted out of order, with a gap at 3, and a frame of another device between them.
    let mut frames = Vec::new();
    for seq in [5, 0, 2, 1, 4] {
        let new = frame(&cam, seq, 100 + seq as i64, Vec::new());
        insert(store, &new).await;
        frames.push(new);
    }
    insert(store, &frame(&other_cam, 3, 50, Vec::new())).await;
    frames.sort_by_key(|f| f.seq);
    let want: Vec<FrameRecord> = frames.iter().map(|f| expected(&cam, f).frame).collect();

    let all = store
        .frames_of_device(alice.id, cam.id, None, 100)
        .await
        .unwrap();
    assert_eq!(all, want);

    // Pages strictly after a seq neither lose nor repeat a frame.
    let first = store
        .frames_of_device(alice.id, cam.id, None, 2)
        .await
        .unwrap();
    assert_eq!(first, want[..2]);
    let second = store
        .frames_of_device(alice.id, cam.id, Some(1), 2)
        .await
        .unwrap();
    assert_eq!(second, want[2..4]);
    let last = store
        .frames_of_device(alice.id, cam.id, Some(4), 2)
        .await
        .unwrap();
    assert_eq!(last, want[4..]);
    for after in [5, i64::MAX as u64, u64::MAX] {
        assert!(
            store
                .frames_of_device(alice.id, cam.id, Some(after), 10)
                .await
                .unwrap()
                .is_empty(),
            "after {after}"
        );
    }

    let mallory = user(store).await;
    assert!(
        store
            .frames_of_device(mallory.id, cam.id, None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .frames_of_device(alice.id, DeviceId::new(), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}
