//! Blobs as files under one root directory (the embedded default).
//!
//! Invariants:
//! - A key names the file `root/<key>`. Keys are validated before any file
//!   system call, so no key can reach outside `root` or name one of the
//!   store's temporary files (their names start with `.`, which no key segment may).
//! - `put` is atomic: a reader sees the previous file or the whole new one,
//!   never a prefix, even with concurrent writers of the same key.
//! - `put` is durable when it returns: the file's data and every directory
//!   entry leading to it have been fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use super::{BlobError, BlobKey, BlobResult, BlobStore};

/// A [`BlobStore`] on the local file system.
#[derive(Clone, Debug)]
pub struct DirBlobStore {
    root: PathBuf,
}

impl DirBlobStore {
    /// Uses `root`, creating it (and its parents) if missing.
    pub async fn open(root: PathBuf) -> BlobResult<Self> {
        tokio::fs::create_dir_all(&root).await?;
        Ok(Self { root })
    }

    fn path_of(&self, key: &BlobKey) -> BlobResult<PathBuf> {
        key.validate()?;
        Ok(self.root.join(key.as_str()))
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> BlobResult<()> {
        let path = self.path_of(key)?;
        // Several blocking fsyncs in a row: keep them off the async workers.
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> BlobResult<Bytes> {
        match tokio::fs::read(self.path_of(key)?).await {
            Ok(data) => Ok(Bytes::from(data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(key.as_str().to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &BlobKey) -> BlobResult<()> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Writes a uniquely named temporary file beside `path`, syncs it, renames it
/// over `path` and syncs the directory, so the rename itself survives a crash.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!(
            "{} has no parent or name",
            path.display()
        )));
    };
    create_dir_durably(dir)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        Uuid::now_v7().simple()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        // Best effort: the write already failed, and after a successful rename
        // the temporary name is gone anyway.
        let _ = fs::remove_file(&temp);
    }
    result
}

/// `create_dir_all`, plus an fsync of each parent that gained an entry.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Err(io::Error::other(format!("{} has no parent", dir.display())));
    };
    create_dir_durably(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        // A concurrent put created it; sync anyway, that put may not have yet.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    sync_dir(parent)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // POSIX makes a directory entry durable by fsyncing the directory; Windows
    // cannot open a directory as a file and journals renames itself.
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::conformance::blob_conformance_tests;
    use tempfile::TempDir;

    async fn fresh() -> (DirBlobStore, TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = DirBlobStore::open(dir.path().join("blobs")).await.unwrap();
        (store, dir)
    }

    blob_conformance_tests!(fresh);

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
        found
    }

    #[tokio::test]
    async fn put_leaves_only_the_final_file_behind() {
        let (store, dir) = fresh().await;
        let key = BlobKey::from_stored("frames/a/0001.jpg".into());
        for round in 0..3u8 {
            store
                .put(&key, Bytes::from(vec![round; 1000]))
                .await
                .unwrap();
        }
        assert_eq!(
            files_under(&dir.path().join("blobs")),
            vec![dir.path().join("blobs/frames/a/0001.jpg")]
        );
    }

    #[tokio::test]
    async fn escaping_keys_touch_nothing_outside_the_root() {
        let (store, dir) = fresh().await;
        for key in ["../outside.jpg", "a/../../outside.jpg"] {
            let key = BlobKey::from_stored(key.into());
            assert!(matches!(
                store.put(&key, Bytes::from_static(b"x")).await,
                Err(BlobError::InvalidKey(_))
            ));
        }
        assert!(!dir.path().join("outside.jpg").exists());
        assert!(files_under(&dir.path().join("blobs")).is_empty());
    }
}
