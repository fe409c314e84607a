//! Image storage behind one small trait.
//!
//! Keys are built only from ids ([`BlobKey::for_frame`]), never from user
//! input, so no request can steer a write outside the store.

mod config;
#[cfg(test)]
mod conformance;
mod dir;
mod s3;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use lastseen_shared::DeviceId;

use crate::store::ImageDigest;

pub use config::BlobConfig;
pub use dir::DirBlobStore;
pub use s3::{S3BlobStore, S3Settings};

/// A store on a fresh bucket of the test S3 server, for tests outside this module.
#[cfg(test)]
pub(crate) use s3::tests::fresh as fresh_s3;

/// Where one object lives inside a blob store: `/`-separated, ASCII, no `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

/// The folder every frame image is under ([`BlobKey::for_frame`]); the
/// orphan sweep lists only this, never the rest of a shared bucket.
pub const FRAMES_PREFIX: &str = "frames/";

impl BlobKey {
    /// A resent frame maps to the same key, so a retried write overwrites
    /// rather than leaving a second copy behind; another image under the
    /// same seq (a conflict racing the first frame) gets another key, so it
    /// never overwrites a stored frame's image. The key holds the first 8
    /// bytes of the image's SHA-256, in hex. (Keys stored before 0006 have
    /// no digest part; they are read back as stored.)
    pub fn for_frame(device: DeviceId, seq: u64, image: &ImageDigest) -> Self {
        let tag: String = image.as_bytes()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self(format!("frames/{device}/{seq:020}-{tag}.jpg"))
    }

    /// Re-reads a key that this module produced and the store kept.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every backend checks this before using a key: `/`-separated segments,
    /// each non-empty, printable ASCII without `\`, not starting with `.`
    /// (so no `..`, and no clash with a store's temporary files).
    ///
    /// Keys are built from ids, so this only ever fails on a bug or a
    /// tampered database; it is checked anyway because the key becomes a
    /// path or an object name.
    pub fn validate(&self) -> BlobResult<()> {
        let valid_segment = |segment: &str| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        };
        if self.0.split('/').all(valid_segment) {
            Ok(())
        } else {
            Err(BlobError::InvalidKey(self.0.clone()))
        }
    }
}

/// Checks a listing prefix: empty (everything), or valid key segments
/// followed by `/` (one folder).
fn validate_prefix(prefix: &str) -> BlobResult<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    match prefix.strip_suffix('/') {
        Some(folder) => BlobKey::from_stored(folder.to_owned())
            .validate()
            .map_err(|_| BlobError::InvalidKey(prefix.to_owned())),
        None => Err(BlobError::InvalidKey(prefix.to_owned())),
    }
}

/// One blob as a listing shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobEntry {
    pub key: BlobKey,
    pub bytes: u64,
    /// When the blob was last written: the orphan sweep leaves young blobs
    /// alone, since their rows may still be on the way.
    pub modified: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("blob key {0} is not a key this store writes")]
    InvalidKey(String),
    #[error("blob store i/o failed")]
    Io(#[from] std::io::Error),
    /// A remote store (S3) failed or refused; the message names the
    /// operation and the server's answer, never a credential.
    #[error("{0}")]
    Backend(String),
}

pub type BlobResult<T> = Result<T, BlobError>;

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Durable when it returns: the caller acknowledges the frame after this.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()>;
    async fn get(&self, key: &BlobKey) -> BlobResult<Bytes>;
    /// Deleting a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> BlobResult<()>;
    /// One page of the blobs under `prefix` (empty, or a folder ending in
    /// `/`): at most `limit` of them, in the store's key order, after `after`
    /// when given (the last key of the previous page). An empty page is the
    /// end. Blobs written or deleted meanwhile may or may not show; every
    /// blob that stays is listed exactly once.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<Vec<BlobEntry>>;
}
