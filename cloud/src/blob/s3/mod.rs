//! Blobs as objects in one S3 bucket (production: MinIO, Garage, AWS, any
//! S3-compatible server).
//!
//! Invariants:
//! - A key names the object `<bucket>/<key>`. Keys are validated with the same
//!   rule as the directory store ([`BlobKey::validate`]) before any request.
//! - `put` is one `PutObject`: S3 shows readers the previous object or the
//!   whole new one, and it returns once the server has stored the object.
//! - Error messages name the operation, the object and the server's answer,
//!   never a credential (the secret only ever reaches the request signer).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;
use chrono::DateTime;
use lastseen_shared::Secret;

use super::{BlobEntry, BlobError, BlobKey, BlobResult, BlobStore, validate_prefix};

/// Content type of every object: the store only keeps JPEG frames.
const CONTENT_TYPE: &str = "image/jpeg";
/// S3 answers at most this many keys per `ListObjectsV2`.
const MAX_KEYS_PER_LIST: usize = 1000;
/// A server that does not accept a connection in this time is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt of one request (a frame is at most a few MB); the SDK retries
/// a timed-out attempt like any other transient failure.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the bucket is and how to reach it (see the `s3_*` settings).
#[derive(Clone, Debug)]
pub struct S3Settings {
    pub bucket: String,
    /// `None` means AWS itself, addressed by `region`.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// `http://host/bucket/key` rather than `http://bucket.host/key`; most
    /// self-hosted servers (MinIO, Garage) want path style.
    pub path_style: bool,
    /// Create the bucket on `open` when it does not exist.
    pub create_bucket: bool,
}

/// A [`BlobStore`] in one S3 bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    /// The endpoint (or AWS region) for error messages.
    server: String,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// Connects and checks the bucket (`HeadBucket`); a missing bucket is
    /// created when `create_bucket` allows it, else it is an error that says
    /// what to do.
    pub async fn open(settings: S3Settings) -> BlobResult<Self> {
        let server = match &settings.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("AWS {}", settings.region),
        };
        let store = Self {
            client: Client::from_conf(client_config(&settings)),
            bucket: settings.bucket.clone(),
            server,
        };
        store
            .ensure_bucket(settings.create_bucket, &settings.region)
            .await?;
        Ok(store)
    }

    async fn ensure_bucket(&self, create: bool, region: &str) -> BlobResult<()> {
        let error = match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        // HEAD answers have no body, so a missing bucket is only a 404.
        if http_status(&error) != Some(404) {
            return Err(self.error("check bucket", None, &error));
        }
        if !create {
            return Err(BlobError::Backend(format!(
                "S3 bucket `{}` does not exist at {}: create it, or set s3_create_bucket = true \
                 to let lastseen create it",
                self.bucket, self.server
            )));
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the one region that must not be named here.
        if region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, server = %self.server, "created the S3 bucket");
                Ok(())
            }
            // Another node created it in the meantime.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(())
            }
            Err(error) => Err(self.error("create bucket", None, &error)),
        }
    }

    /// A [`BlobError::Backend`] naming the action, the object and the
    /// server's answer; an [`SdkError`]'s own display says only "service error".
    fn error<E>(&self, action: &str, key: Option<&BlobKey>, error: &SdkError<E>) -> BlobError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let object = match key {
            Some(key) => format!("s3://{}/{}", self.bucket, key.as_str()),
            None => format!("s3://{}", self.bucket),
        };
        let status = http_status(error);
        let answer = match (error.as_service_error(), status) {
            (Some(service), Some(status)) => {
                let mut answer = format!("HTTP {status}");
                if let Some(code) = service.code() {
                    answer.push_str(&format!(" {code}"));
                }
                if let Some(message) = service.message() {
                    answer.push_str(&format!(": {message}"));
                }
                answer
            }
            _ => causes(error),
        };
        let hint = match status {
            Some(401 | 403) => {
                "; check s3_access_key_id, s3_secret_access_key and the bucket's policy"
            }
            Some(301 | 307) => "; check s3_region (the bucket is in another region)",
            _ => "",
        };
        BlobError::Backend(format!(
            "S3 {action} {object} at {} failed: {answer}{hint}",
            self.server
        ))
    }
}

fn client_config(settings: &S3Settings) -> aws_sdk_s3::Config {
    let credentials = Credentials::new(
        &settings.access_key_id,
        settings.secret_access_key.expose(),
        None,
        None,
        "lastseen-config",
    );
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .force_path_style(settings.path_style)
        // Checksums only where S3 requires them: several S3-compatible servers
        // reject or mishandle the newer default (CRC32 on every upload).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        );
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    config.build()
}

/// `error: its source: ...`, the whole chain on one line; an SDK error's own
/// display stops at the first link ("dispatch failure").
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn http_status<E>(error: &SdkError<E>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        key.validate()?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(CONTENT_TYPE)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| self.error("put", Some(key), &error))?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        key.validate()?;
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Err(BlobError::NotFound(key.as_str().to_owned()));
            }
            Err(error) => return Err(self.error("get", Some(key), &error)),
        };
        let body = output.body.collect().await.map_err(|error| {
            BlobError::Backend(format!(
                "S3 get s3://{}/{} at {} failed while reading the body: {}",
                self.bucket,
                key.as_str(),
                self.server,
                causes(&error)
            ))
        })?;
        Ok(body.into_bytes())
    }

    async fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        key.validate()?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // S3 answers 204 for a missing key; a few compatible servers say 404.
            Err(error) if http_status(&error) == Some(404) && error.code() == Some("NoSuchKey") => {
                Ok(())
            }
            Err(error) => Err(self.error("delete", Some(key), &error)),
        }
    }

    /// `ListObjectsV2` in S3 key order (UTF-8 bytes): a page holds at most
    /// 1,000 keys whatever `limit` says. Objects whose names are not keys
    /// this store writes are skipped (not ours to sweep); a page of only
    /// those is followed by the next, so an empty page is still the end.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<Vec<BlobEntry>> {
        validate_prefix(prefix)?;
        let max_keys = i32::try_from(limit.clamp(1, MAX_KEYS_PER_LIST)).unwrap_or(1);
        let mut start_after = after.map(|key| key.as_str().to_owned());
        let mut entries = Vec::new();
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(max_keys)
                .set_start_after(start_after.take())
                .send()
                .await
                .map_err(|error| self.error("list", None, &error))?;
            for object in output.contents() {
                let Some(name) = object.key() else { continue };
                start_after = Some(name.to_owned());
                let key = BlobKey::from_stored(name.to_owned());
                if key.validate().is_err() {
                    continue;
                }
                let modified = object
                    .last_modified()
                    .and_then(|at| DateTime::from_timestamp(at.secs(), at.subsec_nanos()))
                    .ok_or_else(|| {
                        BlobError::Backend(format!(
                            "S3 list s3://{}/{name} at {}: the object has no valid LastModified",
                            self.bucket, self.server
                        ))
                    })?;
                entries.push(BlobEntry {
                    key,
                    bytes: object
                        .size()
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0),
                    modified,
                });
            }
            if !entries.is_empty()
                || !output.is_truncated().unwrap_or(false)
                || start_after.is_none()
            {
                break;
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
pub(crate) mod tests;
