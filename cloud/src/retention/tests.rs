//! The maintenance task against real storage: each test runs on SQLite and on
//! PostgreSQL, with the images on the test S3 server, and checks that the
//! images are really gone from (or still on) the server.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use lastseen_shared::{BBox, Detection, DeviceId, FrameId, Label, UserId};

use super::{MaintenanceSettings, OrphanReport, Retention, RetentionReport};
use crate::blob::{BlobError, BlobKey, BlobStore};
use crate::store::{DeviceRecord, InsertOutcome, NewFrame, RetentionLimits, Store, UserRecord};

/// One test body per name, run on both SQL backends with S3 images.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_and_s3 {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = crate::store::testing::fresh_sqlite().await;
                let (blobs, ()) = crate::blob::fresh_s3().await;
                super::$name(std::sync::Arc::new(store), std::sync::Arc::new(blobs)).await;
            }
        )*}
        mod postgres_and_s3 {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = crate::store::testing::fresh_postgres().await;
                let (blobs, ()) = crate::blob::fresh_s3().await;
                super::$name(std::sync::Arc::new(store), std::sync::Arc::new(blobs)).await;
            }
        )*}
    };
}

on_both_backends!(
    retention_by_age_deletes_old_frames_with_their_images_per_user_limits,
    retention_by_bytes_keeps_the_newest_frames_within_the_budget,
    orphan_sweep_deletes_old_images_without_frames_only,
);

struct Fixture {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    now: DateTime<Utc>,
}

impl Fixture {
    async fn user(&self) -> UserId {
        let id = UserId::new();
        self.store
            .create_user(&UserRecord {
                id,
                username: format!("user-{id}"),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                created_at: self.now,
                tokens_valid_after: self.now,
            })
            .await
            .unwrap();
        id
    }

    async fn device(&self, owner: UserId) -> DeviceRecord {
        let device = DeviceRecord {
            id: DeviceId::new(),
            owner,
            name: "kitchen".into(),
            kind: "camera".into(),
            created_at: self.now,
            tokens_valid_after: self.now,
            revoked_at: None,
        };
        self.store.create_device(&device).await.unwrap();
        device
    }

    /// A frame captured `days_ago`, with a cup, and its image (of `bytes`
    /// bytes) on the server; or pointing at `shares`' image.
    async fn frame(
        &self,
        device: &DeviceRecord,
        seq: u64,
        days_ago: i64,
        bytes: u64,
        shares: Option<&NewFrame>,
    ) -> NewFrame {
        let key = BlobKey::for_frame(device.id, seq, &crate::store::ImageDigest::of(b"jpeg"));
        let captured_at = self.now - TimeDelta::days(days_ago);
        let mut frame = NewFrame {
            id: FrameId::new(),
            device: device.id,
            owner: device.owner,
            seq,
            captured_at,
            received_at: captured_at,
            blob_key: key.as_str().to_owned(),
            bytes,
            width: 640,
            height: 480,
            detections: vec![Detection {
                label: Label::parse("cup").unwrap(),
                score: 0.9,
                bbox: BBox::from([1.0, 2.0, 30.0, 40.0]),
            }],
            shares_image: false,
            clock_skewed: false,
            image_sha256: None,
        };
        match shares {
            Some(image) => {
                frame.blob_key = image.blob_key.clone();
                frame.bytes = image.bytes;
                frame.shares_image = true;
            }
            None => {
                let data = vec![seq as u8; bytes as usize];
                self.blobs.put(&key, Bytes::from(data)).await.unwrap();
            }
        }
        assert_eq!(
            self.store.insert_frame(&frame).await.unwrap(),
            InsertOutcome::Inserted
        );
        frame
    }

    fn retention(&self, defaults: RetentionLimits) -> Retention {
        Retention::new(
            self.store.clone(),
            self.blobs.clone(),
            MaintenanceSettings {
                defaults,
                // Small batches, so the tests cross batch boundaries.
                batch: 2,
                orphan_grace: Duration::from_secs(3600),
            },
        )
    }

    async fn image_exists(&self, key: &str) -> bool {
        match self.blobs.get(&BlobKey::from_stored(key.to_owned())).await {
            Ok(_) => true,
            Err(BlobError::NotFound(_)) => false,
            Err(error) => panic!("get {key}: {error}"),
        }
    }

    /// Which of `frames` still have their row, and their image on the server.
    async fn kept(&self, frames: &[&NewFrame]) -> Vec<(bool, bool)> {
        let mut kept = Vec::new();
        for frame in frames {
            let row = self
                .store
                .frame_of_owner(frame.owner, frame.id)
                .await
                .unwrap()
                .is_some();
            kept.push((row, self.image_exists(&frame.blob_key).await));
        }
        kept
    }
}

const KEPT: (bool, bool) = (true, true);
const GONE: (bool, bool) = (false, false);
/// The row is gone, but the image stays for a later frame that shares it.
const ROW_GONE: (bool, bool) = (false, true);

async fn retention_by_age_deletes_old_frames_with_their_images_per_user_limits(
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
) {
    let f = Fixture {
        store,
        blobs,
        now: Utc::now(),
    };
    // Alice keeps 3 days; Bob set "no limit", which the server's 7 days
    // still bound; Carol has the server's 7 days.
    let (alice, bob, carol) = (f.user().await, f.user().await, f.user().await);
    let three_days = RetentionLimits {
        max_age_days: Some(3),
        max_bytes: None,
    };
    f.store
        .set_retention_of(alice, Some(three_days))
        .await
        .unwrap();
    f.store
        .set_retention_of(bob, Some(RetentionLimits::default()))
        .await
        .unwrap();
    let (cam_a, cam_b, cam_c) = (
        f.device(alice).await,
        f.device(bob).await,
        f.device(carol).await,
    );
    let a1 = f.frame(&cam_a, 1, 10, 100, None).await;
    let a2 = f.frame(&cam_a, 2, 5, 100, None).await;
    let a3 = f.frame(&cam_a, 3, 4, 100, Some(&a2)).await;
    let a4 = f.frame(&cam_a, 4, 2, 100, Some(&a2)).await;
    let a5 = f.frame(&cam_a, 5, 1, 100, None).await;
    let b1 = f.frame(&cam_b, 1, 400, 100, None).await;
    let c1 = f.frame(&cam_c, 1, 10, 100, None).await;
    let c2 = f.frame(&cam_c, 2, 5, 100, None).await;

    let retention = f.retention(RetentionLimits {
        max_age_days: Some(7),
        max_bytes: None,
    });
    let report = retention.enforce(f.now).await.unwrap();
    assert_eq!(
        report,
        RetentionReport {
            frames_deleted: 5,
            images_deleted: 3,
        }
    );
    assert_eq!(
        f.kept(&[&a1, &a2, &a3, &a4, &a5]).await,
        [GONE, ROW_GONE, ROW_GONE, KEPT, KEPT]
    );
    assert_eq!(f.kept(&[&b1, &c1, &c2]).await, [GONE, GONE, KEPT]);
    // "Last seen" names a frame that still exists.
    let cup = Label::parse("cup").unwrap();
    let sightings = f.store.last_seen(alice, Some(&cup)).await.unwrap();
    assert_eq!(sightings[0].frame, a5.id);

    // Nothing more to do on a second run; then once a4 ages out, its shared
    // image goes with it.
    assert_eq!(
        retention.enforce(f.now).await.unwrap(),
        RetentionReport::default()
    );
    let later = f.now + TimeDelta::hours(36);
    let report = retention.enforce(later).await.unwrap();
    assert_eq!(
        report,
        RetentionReport {
            frames_deleted: 1,
            images_deleted: 1,
        }
    );
    assert_eq!(
        f.kept(&[&a2, &a4, &a5, &c2]).await,
        [GONE, GONE, KEPT, KEPT]
    );
}

async fn retention_by_bytes_keeps_the_newest_frames_within_the_budget(
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
) {
    let f = Fixture {
        store,
        blobs,
        now: Utc::now(),
    };
    let (alice, bob) = (f.user().await, f.user().await);
    let (cam, attic) = (f.device(alice).await, f.device(bob).await);
    let f1 = f.frame(&cam, 1, 9, 1_000, None).await;
    let f2 = f.frame(&cam, 2, 8, 1_000, None).await;
    let f3 = f.frame(&cam, 3, 7, 1_000, None).await;
    let f4 = f.frame(&cam, 4, 6, 1_000, Some(&f3)).await;
    let f5 = f.frame(&cam, 5, 5, 1_000, None).await;
    let b1 = f.frame(&attic, 1, 30, 900, None).await;
    assert_eq!(f.store.stored_bytes(alice).await.unwrap(), 4_000);

    // 2,500 bytes by default: f1 and f2 go, 2,000 bytes stay.
    let retention = f.retention(RetentionLimits {
        max_age_days: None,
        max_bytes: Some(2_500),
    });
    let report = retention.enforce(f.now).await.unwrap();
    assert_eq!(
        report,
        RetentionReport {
            frames_deleted: 2,
            images_deleted: 2,
        }
    );
    assert_eq!(
        f.kept(&[&f1, &f2, &f3, &f4, &f5]).await,
        [GONE, GONE, KEPT, KEPT, KEPT]
    );
    assert_eq!(f.store.stored_bytes(alice).await.unwrap(), 2_000);

    // Alice lowers hers to 1,500: f3 alone frees nothing (f4 shows its
    // image), so f3 and f4 both go.
    let tighter = RetentionLimits {
        max_age_days: None,
        max_bytes: Some(1_500),
    };
    f.store
        .set_retention_of(alice, Some(tighter))
        .await
        .unwrap();
    let report = retention.enforce(f.now).await.unwrap();
    assert_eq!(
        report,
        RetentionReport {
            frames_deleted: 2,
            images_deleted: 1,
        }
    );
    assert_eq!(f.kept(&[&f3, &f4, &f5]).await, [GONE, GONE, KEPT]);
    assert_eq!(f.store.stored_bytes(alice).await.unwrap(), 1_000);
    // Bob is within the default budget.
    assert_eq!(f.kept(&[&b1]).await, [KEPT]);
}

async fn orphan_sweep_deletes_old_images_without_frames_only(
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
) {
    let f = Fixture {
        store,
        blobs,
        now: Utc::now(),
    };
    let alice = f.user().await;
    let cam = f.device(alice).await;
    let stored = f.frame(&cam, 1, 0, 10, None).await;
    let shared = f.frame(&cam, 2, 0, 10, Some(&stored)).await;
    // Images whose rows never came: a crash between the put and the insert.
    let mut orphans = Vec::new();
    for seq in 3..8 {
        let key = BlobKey::for_frame(cam.id, seq, &crate::store::ImageDigest::of(b"jpeg"));
        f.blobs
            .put(&key, Bytes::from_static(b"jpeg"))
            .await
            .unwrap();
        orphans.push(key);
    }
    // Outside `frames/`: not the sweep's to touch.
    let elsewhere = BlobKey::from_stored("exports/report.jpg".to_owned());
    f.blobs
        .put(&elsewhere, Bytes::from_static(b"x"))
        .await
        .unwrap();
    let retention = f.retention(RetentionLimits::default());

    // Everything was written just now, within the grace period.
    let report = retention.sweep_orphans(Utc::now()).await.unwrap();
    assert_eq!(
        report,
        OrphanReport {
            listed: 6,
            deleted: 0
        }
    );
    assert!(f.image_exists(orphans[0].as_str()).await);

    // Two hours on, the orphans are old enough.
    let later = Utc::now() + TimeDelta::hours(2);
    let report = retention.sweep_orphans(later).await.unwrap();
    assert_eq!(
        report,
        OrphanReport {
            listed: 6,
            deleted: 5
        }
    );
    for key in &orphans {
        assert!(!f.image_exists(key.as_str()).await, "{key:?}");
    }
    assert_eq!(f.kept(&[&stored, &shared]).await, [KEPT, KEPT]);
    assert!(f.image_exists(elsewhere.as_str()).await);
}
