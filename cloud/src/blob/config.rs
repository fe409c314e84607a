//! Where the images go: a local directory, or an S3 bucket.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lastseen_shared::{Problems, Secret};
use serde::{Deserialize, Serialize};

use super::{BlobError, BlobStore, DirBlobStore, S3BlobStore, S3Settings};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlobConfig {
    /// Directory of the local blob store; default `<data_dir>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// S3 bucket for the images; when set, blobs go there instead of `blob_dir`.
    pub s3_bucket: Option<String>,
    /// S3 server URL, e.g. `http://127.0.0.1:9000` for MinIO; unset means AWS
    /// (addressed by `s3_region`).
    pub s3_endpoint: Option<String>,
    /// S3 region: signs the requests, and picks the AWS endpoint.
    pub s3_region: String,
    /// S3 access key id; required with `s3_bucket`.
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key; required with `s3_bucket`.
    pub s3_secret_access_key: Option<Secret>,
    /// Path-style requests (`<endpoint>/<bucket>/<key>`), which MinIO and
    /// Garage expect; false for virtual-hosted style (`<bucket>.<endpoint>/<key>`).
    pub s3_path_style: bool,
    /// Create `s3_bucket` at startup when it does not exist (else that is an
    /// error).
    pub s3_create_bucket: bool,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            blob_dir: None,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_path_style: true,
            s3_create_bucket: false,
        }
    }
}

/// S3's bucket naming rule, short of the IP-address and prefix exceptions.
fn is_bucket_name(name: &str) -> bool {
    let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (3..=63).contains(&name.len())
        && edge(name.as_bytes().first())
        && edge(name.as_bytes().last())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

impl BlobConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.s3_bucket.as_deref().is_none_or(is_bucket_name),
            "s3_bucket must be 3 to 63 lowercase letters, digits, `-` or `.`",
        );
        if self.s3_bucket.is_some() {
            problems.check(
                self.s3_access_key_id
                    .as_deref()
                    .is_some_and(|id| !id.is_empty()),
                "s3_access_key_id is required with s3_bucket",
            );
            problems.check(
                self.s3_secret_access_key
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty()),
                "s3_secret_access_key is required with s3_bucket",
            );
        }
        problems.check(
            self.s3_endpoint
                .as_deref()
                .is_none_or(|url| url.starts_with("http://") || url.starts_with("https://")),
            "s3_endpoint must be an http:// or https:// URL",
        );
        problems.check(!self.s3_region.is_empty(), "s3_region must not be empty");
    }

    /// The local store's directory: `blob_dir`, else `<data_dir>/blobs`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        self.blob_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("blobs"))
    }

    /// S3 when `s3_bucket` is set, else the local directory.
    pub async fn open(&self, data_dir: &Path) -> Result<Arc<dyn BlobStore>, BlobError> {
        let Some(bucket) = &self.s3_bucket else {
            return Ok(Arc::new(DirBlobStore::open(self.dir(data_dir)).await?));
        };
        // `check` requires both keys with a bucket; this covers a config
        // built in code without it.
        let (Some(access_key_id), Some(secret_access_key)) =
            (&self.s3_access_key_id, &self.s3_secret_access_key)
        else {
            return Err(BlobError::Backend(
                "s3_access_key_id and s3_secret_access_key are required with s3_bucket".to_owned(),
            ));
        };
        let store = S3BlobStore::open(S3Settings {
            bucket: bucket.clone(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: access_key_id.clone(),
            secret_access_key: secret_access_key.clone(),
            path_style: self.s3_path_style,
            create_bucket: self.s3_create_bucket,
        })
        .await?;
        tracing::info!(bucket = %bucket, "images are stored in S3");
        Ok(Arc::new(store))
    }
}
