use super::*;
use crate::blob::conformance::blob_conformance_tests;
use lastseen_shared::DeviceId;
use uuid::Uuid;

/// The S3 server the tests run against; `scripts/test` starts one
/// (`scripts/s3-server`) and exports these.
struct TestServer {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

const ENDPOINT: &str = "LASTSEEN_TEST_S3_ENDPOINT";
const ACCESS_KEY: &str = "LASTSEEN_TEST_S3_ACCESS_KEY";
const SECRET_KEY: &str = "LASTSEEN_TEST_S3_SECRET_KEY";

/// Panics when no server is configured: a skipped S3 suite would pass
/// while testing nothing.
fn server() -> TestServer {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let (Some(endpoint), Some(access_key), Some(secret_key)) =
        (var(ENDPOINT), var(ACCESS_KEY), var(SECRET_KEY))
    {
        return TestServer {
            endpoint,
            access_key,
            secret_key,
        };
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "CI has no S3 server for the S3 blob store tests: {ENDPOINT}, {ACCESS_KEY} and \
             {SECRET_KEY} must be set; scripts/test starts one with scripts/s3-server"
        );
    }
    panic!(
        "no S3 server for the S3 blob store tests ({ENDPOINT}, {ACCESS_KEY}, {SECRET_KEY} \
         unset): run scripts/test (it starts the S3 server), or \
         `eval \"$(scripts/s3-server start)\"` before cargo test"
    );
}

fn fresh_bucket() -> String {
    format!("lastseen-test-{}", Uuid::now_v7().simple())
}

fn settings(server: &TestServer, bucket: &str, create_bucket: bool) -> S3Settings {
    S3Settings {
        bucket: bucket.to_owned(),
        endpoint: Some(server.endpoint.clone()),
        region: "us-east-1".to_owned(),
        access_key_id: server.access_key.clone(),
        secret_access_key: Secret::new(server.secret_key.clone()),
        path_style: true,
        create_bucket,
    }
}

/// A store on a bucket of its own; the server's temporary root (removed
/// by `scripts/s3-server stop`) takes the buckets away.
pub(crate) async fn fresh() -> (S3BlobStore, ()) {
    let server = server();
    let store = S3BlobStore::open(settings(&server, &fresh_bucket(), true))
        .await
        .unwrap();
    (store, ())
}

blob_conformance_tests!(fresh);

/// A second client, configured here rather than by `client_config`, with
/// the SDK's default checksums: it sees what is really on the server.
fn independent_client(server: &TestServer) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&server.endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(
            &server.access_key,
            &server.secret_key,
            None,
            None,
            "test",
        ))
        .build();
    Client::from_conf(config)
}

fn backend_message(error: BlobError) -> String {
    match error {
        BlobError::Backend(message) => message,
        other => panic!("expected a backend error, got {other:?}"),
    }
}

#[tokio::test]
async fn blobs_land_on_the_server_under_their_key() {
    let server = server();
    let (store, ()) = fresh().await;
    let key = BlobKey::for_frame(DeviceId::new(), 42, &crate::store::ImageDigest::of(b"jpeg"));
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    store.put(&key, Bytes::from(data.clone())).await.unwrap();

    let raw = independent_client(&server);
    let object = raw
        .get_object()
        .bucket(&store.bucket)
        .key(key.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(object.content_type(), Some(CONTENT_TYPE));
    let body = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(body, data);

    store.delete(&key).await.unwrap();
    let head = raw
        .head_object()
        .bucket(&store.bucket)
        .key(key.as_str())
        .send()
        .await
        .unwrap_err();
    assert!(
        head.as_service_error().is_some_and(|e| e.is_not_found()),
        "{head:?}"
    );
}

#[tokio::test]
async fn a_second_store_on_an_existing_bucket_sees_the_same_blobs() {
    let server = server();
    let bucket = fresh_bucket();
    let first = S3BlobStore::open(settings(&server, &bucket, true))
        .await
        .unwrap();
    let key = BlobKey::for_frame(DeviceId::new(), 1, &crate::store::ImageDigest::of(b"jpeg"));
    first.put(&key, Bytes::from_static(b"jpeg")).await.unwrap();
    // Opening an existing bucket needs no create permission.
    let second = S3BlobStore::open(settings(&server, &bucket, false))
        .await
        .unwrap();
    assert_eq!(second.get(&key).await.unwrap(), Bytes::from_static(b"jpeg"));
}

#[tokio::test]
async fn a_missing_bucket_without_create_permission_is_a_clear_error() {
    let server = server();
    let bucket = fresh_bucket();
    let error = S3BlobStore::open(settings(&server, &bucket, false))
        .await
        .unwrap_err();
    let message = backend_message(error);
    assert!(
        message.contains(&format!("`{bucket}` does not exist")),
        "{message}"
    );
    assert!(message.contains("s3_create_bucket"), "{message}");
    assert!(message.contains(&server.endpoint), "{message}");
    // And nothing was created behind the operator's back.
    let head = independent_client(&server)
        .head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_err();
    assert!(
        head.as_service_error().is_some_and(|e| e.is_not_found()),
        "{head:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_clear_error_without_the_secret() {
    let server = server();
    let bucket = fresh_bucket();
    S3BlobStore::open(settings(&server, &bucket, true))
        .await
        .unwrap();
    let wrong_secret = "wrong-secret-9f8e7d6c5b4a";
    let wrong = S3Settings {
        secret_access_key: Secret::new(wrong_secret),
        ..settings(&server, &bucket, true)
    };
    let message = backend_message(S3BlobStore::open(wrong).await.unwrap_err());
    assert!(message.contains("HTTP 403"), "{message}");
    assert!(message.contains("s3_secret_access_key"), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");
    assert!(!message.contains(&server.secret_key), "{message}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    // Port 1 (tcpmux) is not served here; the connection is refused.
    let unreachable = S3Settings {
        bucket: "lastseen-unreachable".to_owned(),
        endpoint: Some("http://127.0.0.1:1".to_owned()),
        region: "us-east-1".to_owned(),
        access_key_id: "key".to_owned(),
        secret_access_key: Secret::new("secret-not-shown"),
        path_style: true,
        create_bucket: true,
    };
    let message = backend_message(S3BlobStore::open(unreachable).await.unwrap_err());
    assert!(
        message.contains("check bucket s3://lastseen-unreachable"),
        "{message}"
    );
    assert!(message.contains("http://127.0.0.1:1"), "{message}");
    assert!(!message.contains("secret-not-shown"), "{message}");
}
