//! Behaviour every [`BlobStore`] backend must show, written once.
//!
//! A backend runs the whole suite with
//! `crate::blob::conformance::blob_conformance_tests!(fresh);` inside its test
//! module, where `async fn fresh() -> (impl BlobStore, Guard)` opens an empty
//! store and `Guard` is dropped when the test ends. Bodies use fresh keys, so
//! they also pass when several share one bucket.

use bytes::Bytes;
use lastseen_shared::DeviceId;

use super::{BlobError, BlobKey, BlobStore};

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
    BlobKey::for_frame(DeviceId::new(), 7)
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
