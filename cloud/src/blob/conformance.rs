//! Behaviour every [`BlobStore`] backend must show, written once.
//!
//! A backend runs the whole suite with
//! `crate::blob::conformance::blob_conformance_tests!(fresh);` inside its test
//! module, where `async fn fresh() -> (impl BlobStore, Guard)` opens an empty
//! store and `Guard` is dropped when the test ends. Bodies use fresh keys, so
//! they also pass when several share one bucket.

use std::collections::BTreeSet;

use bytes::Bytes;
use chrono::{Duration, Utc};
use lastseen_shared::DeviceId;

use super::{BlobError, BlobKey, BlobStore, FRAMES_PREFIX};
use crate::store::ImageDigest;

/// One `#[tokio::test]` per body below; see the module docs.
macro_rules! blob_conformance_tests {
    ($fresh:path) => {
        $crate::blob::conformance::blob_conformance_tests!(@each $fresh;
            put_then_get_returns_the_same_bytes,
            empty_blob_round_trips,
            put_overwrites_the_previous_blob,
            missing_blob_is_not_found,
            deleted_blob_is_not_found,
            deleting_a_missing_blob_is_fine,
            invalid_keys_are_rejected_by_every_operation,
            concurrent_puts_of_one_key_leave_one_whole_blob,
            listing_pages_cover_a_folder_once_in_order,
            listing_shows_sizes_and_write_times,
            deleted_blobs_leave_the_listing,
            listing_an_empty_or_missing_folder_is_empty,
            invalid_listing_prefixes_are_rejected,
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (store, _guard) = $fresh().await;
            $crate::blob::conformance::$name(&store).await;
        }
    )*};
}
pub(crate) use blob_conformance_tests;

fn fresh_key() -> BlobKey {
    BlobKey::for_frame(DeviceId::new(), 7, &ImageDigest::of(b"jpeg"))
}

pub(crate) async fn put_then_get_returns_the_same_bytes(store: &dyn BlobStore) {
    let key = fresh_key();
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    store.put(&key, Bytes::from(data.clone())).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), data);
}

pub(crate) async fn empty_blob_round_trips(store: &dyn BlobStore) {
    let key = fresh_key();
    store.put(&key, Bytes::new()).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_empty());
}

pub(crate) async fn put_overwrites_the_previous_blob(store: &dyn BlobStore) {
    let key = fresh_key();
    store
        .put(&key, Bytes::from_static(b"a much longer first version"))
        .await
        .unwrap();
    store
        .put(&key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap(),
        Bytes::from_static(b"second")
    );
}

pub(crate) async fn missing_blob_is_not_found(store: &dyn BlobStore) {
    let error = store.get(&fresh_key()).await.unwrap_err();
    assert!(matches!(error, BlobError::NotFound(_)), "{error:?}");
}

pub(crate) async fn deleted_blob_is_not_found(store: &dyn BlobStore) {
    let key = fresh_key();
    let other = fresh_key();
    store.put(&key, Bytes::from_static(b"jpeg")).await.unwrap();
    store
        .put(&other, Bytes::from_static(b"kept"))
        .await
        .unwrap();
    store.delete(&key).await.unwrap();
    let error = store.get(&key).await.unwrap_err();
    assert!(matches!(error, BlobError::NotFound(_)), "{error:?}");
    assert_eq!(
        store.get(&other).await.unwrap(),
        Bytes::from_static(b"kept")
    );
}

pub(crate) async fn deleting_a_missing_blob_is_fine(store: &dyn BlobStore) {
    let key = fresh_key();
    store.delete(&key).await.unwrap();
    store.put(&key, Bytes::from_static(b"x")).await.unwrap();
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
}

pub(crate) async fn invalid_keys_are_rejected_by_every_operation(store: &dyn BlobStore) {
    let bad = [
        "",
        "/etc/passwd",
        "..",
        "../escape.jpg",
        "frames/../../escape.jpg",
        "frames/./x.jpg",
        "frames//x.jpg",
        "frames/",
        ".hidden",
        "frames\\x.jpg",
        "..\\escape.jpg",
        "frames/caf\u{e9}.jpg",
        "frames/a\0b.jpg",
        "frames/a b.jpg",
    ];
    for key in bad {
        let key = BlobKey::from_stored(key.to_owned());
        let put = store.put(&key, Bytes::from_static(b"x")).await;
        assert!(
            matches!(put, Err(BlobError::InvalidKey(_))),
            "put {key:?}: {put:?}"
        );
        let get = store.get(&key).await;
        assert!(
            matches!(get, Err(BlobError::InvalidKey(_))),
            "get {key:?}: {get:?}"
        );
        let delete = store.delete(&key).await;
        assert!(
            matches!(delete, Err(BlobError::InvalidKey(_))),
            "delete {key:?}: {delete:?}"
        );
    }
}

pub(crate) async fn concurrent_puts_of_one_key_leave_one_whole_blob(store: &dyn BlobStore) {
    const LEN: usize = 2 << 20;
    let key = fresh_key();
    for _round in 0..3 {
        let (a, b, c, d) = tokio::join!(
            store.put(&key, Bytes::from(vec![1u8; LEN])),
            store.put(&key, Bytes::from(vec![2u8; LEN])),
            store.put(&key, Bytes::from(vec![3u8; LEN])),
            store.put(&key, Bytes::from(vec![4u8; LEN])),
        );
        for put in [a, b, c, d] {
            put.unwrap();
        }
        let stored = store.get(&key).await.unwrap();
        assert_eq!(stored.len(), LEN);
        assert!(stored.iter().all(|&b| b == stored[0]), "blob mixes writers");
    }
}

/// A folder no other test writes to, and its keys for seqs `0..count`.
fn fresh_folder(count: u64) -> (String, Vec<BlobKey>) {
    let device = DeviceId::new();
    let keys = (0..count)
        .map(|seq| BlobKey::for_frame(device, seq, &ImageDigest::of(b"jpeg")))
        .collect();
    (format!("{FRAMES_PREFIX}{device}/"), keys)
}

/// Every page of `prefix`, `page` keys at a time.
async fn list_all(store: &dyn BlobStore, prefix: &str, page: usize) -> Vec<Vec<BlobKey>> {
    let mut pages = Vec::new();
    let mut after: Option<BlobKey> = None;
    loop {
        let entries = store.list(prefix, after.as_ref(), page).await.unwrap();
        let Some(last) = entries.last() else {
            return pages;
        };
        assert!(
            entries.len() <= page,
            "{} entries in a page of {page}",
            entries.len()
        );
        after = Some(last.key.clone());
        pages.push(entries.into_iter().map(|entry| entry.key).collect());
        assert!(pages.len() < 100, "listing does not end");
    }
}

pub(crate) async fn listing_pages_cover_a_folder_once_in_order(store: &dyn BlobStore) {
    let (folder, keys) = fresh_folder(7);
    let (_, elsewhere) = fresh_folder(2);
    for key in keys.iter().chain(&elsewhere) {
        store.put(key, Bytes::from_static(b"jpeg")).await.unwrap();
    }
    let pages = list_all(store, &folder, 3).await;
    let listed: Vec<BlobKey> = pages.into_iter().flatten().collect();
    // Seqs are zero-padded, so key order is seq order on every backend.
    assert_eq!(listed, keys);

    // A wider prefix holds both folders; each key still comes once.
    let everything: Vec<BlobKey> = list_all(store, FRAMES_PREFIX, 4)
        .await
        .into_iter()
        .flatten()
        .collect();
    let distinct: BTreeSet<&str> = everything.iter().map(BlobKey::as_str).collect();
    assert_eq!(distinct.len(), everything.len(), "a key was listed twice");
    for key in keys.iter().chain(&elsewhere) {
        assert!(distinct.contains(key.as_str()), "{key:?} missing");
    }
}

pub(crate) async fn listing_shows_sizes_and_write_times(store: &dyn BlobStore) {
    let (folder, keys) = fresh_folder(2);
    let before = Utc::now() - Duration::minutes(5);
    store
        .put(&keys[0], Bytes::from(vec![7u8; 1234]))
        .await
        .unwrap();
    store.put(&keys[1], Bytes::new()).await.unwrap();
    let after = Utc::now() + Duration::minutes(5);
    let entries = store.list(&folder, None, 10).await.unwrap();
    let sizes: Vec<(BlobKey, u64)> = entries.iter().map(|e| (e.key.clone(), e.bytes)).collect();
    assert_eq!(sizes, vec![(keys[0].clone(), 1234), (keys[1].clone(), 0)]);
    for entry in &entries {
        // Clock skew and second-granular S3 times aside, "just now".
        assert!(
            entry.modified > before && entry.modified < after,
            "{entry:?} was not written just now"
        );
    }
}

pub(crate) async fn deleted_blobs_leave_the_listing(store: &dyn BlobStore) {
    let (folder, keys) = fresh_folder(3);
    for key in &keys {
        store.put(key, Bytes::from_static(b"jpeg")).await.unwrap();
    }
    store.delete(&keys[1]).await.unwrap();
    let listed: Vec<BlobKey> = store
        .list(&folder, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(listed, vec![keys[0].clone(), keys[2].clone()]);
    // Resuming after a key that is gone goes on from where it was.
    let rest: Vec<BlobKey> = store
        .list(&folder, Some(&keys[1]), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.key)
        .collect();
    assert_eq!(rest, vec![keys[2].clone()]);
}

pub(crate) async fn listing_an_empty_or_missing_folder_is_empty(store: &dyn BlobStore) {
    let (folder, keys) = fresh_folder(1);
    assert!(store.list(&folder, None, 10).await.unwrap().is_empty());
    store.put(&keys[0], Bytes::from_static(b"x")).await.unwrap();
    store.delete(&keys[0]).await.unwrap();
    assert!(store.list(&folder, None, 10).await.unwrap().is_empty());
    // After the last key there is nothing more.
    store.put(&keys[0], Bytes::from_static(b"x")).await.unwrap();
    assert!(
        store
            .list(&folder, Some(&keys[0]), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn invalid_listing_prefixes_are_rejected(store: &dyn BlobStore) {
    for prefix in [
        "frames",
        "/",
        "../",
        "frames/../",
        ".hidden/",
        "frames//",
        "a b/",
    ] {
        let listed = store.list(prefix, None, 10).await;
        assert!(
            matches!(listed, Err(BlobError::InvalidKey(_))),
            "{prefix:?}: {listed:?}"
        );
    }
}
