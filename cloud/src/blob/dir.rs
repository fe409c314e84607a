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
//! - `list` walks the tree depth first with each directory's names sorted, so
//!   its key order is segment by segment; a page re-reads the directories on
//!   the path to where the previous page stopped, and skips names that are
//!   not key segments (temporary files among them).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use std::cmp::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{BlobEntry, BlobError, BlobKey, BlobResult, BlobStore, validate_prefix};

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

    async fn list(
        &self,
        prefix: &str,
        after: Option<&BlobKey>,
        limit: usize,
    ) -> BlobResult<Vec<BlobEntry>> {
        validate_prefix(prefix)?;
        // The segments of `after` below `prefix` say where to resume; an
        // `after` outside the prefix is before all of it or after all of it.
        let resume: Option<Vec<String>> = match after {
            None => None,
            Some(after) => match after.as_str().strip_prefix(prefix) {
                Some(rest) => Some(rest.split('/').map(str::to_owned).collect()),
                None if after.as_str() < prefix => None,
                None => return Ok(Vec::new()),
            },
        };
        let root = self.root.join(prefix);
        let prefix = prefix.to_owned();
        let entries = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            walk(&root, &prefix, resume.as_deref(), limit, &mut found).map(|()| found)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(entries)
    }
}

/// Appends the blobs under `dir` (whose keys start with `key_prefix`) to
/// `found`, in key order, strictly after the path `after` (relative to `dir`)
/// when given, until `found` holds `limit`.
fn walk(
    dir: &Path,
    key_prefix: &str,
    after: Option<&[String]>,
    limit: usize,
    found: &mut Vec<BlobEntry>,
) -> io::Result<()> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            let key = BlobKey::from_stored(format!("{key_prefix}{name}"));
            if !name.contains('/') && key.validate().is_ok() {
                names.push((name, entry));
            }
        }
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, entry) in names {
        if found.len() >= limit {
            break;
        }
        let below = match after {
            Some([first, rest @ ..]) => match name.as_str().cmp(first.as_str()) {
                Ordering::Less => continue,
                // `after` itself, or a file where `after` had a folder: both sort first.
                Ordering::Equal if rest.is_empty() => continue,
                Ordering::Equal => Some(rest),
                Ordering::Greater => None,
            },
            _ => None,
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(
                &entry.path(),
                &format!("{key_prefix}{name}/"),
                below,
                limit,
                found,
            )?;
        } else if kind.is_file() && below.is_none() {
            let metadata = entry.metadata()?;
            found.push(BlobEntry {
                key: BlobKey::from_stored(format!("{key_prefix}{name}")),
                bytes: metadata.len(),
                modified: DateTime::<Utc>::from(metadata.modified()?),
            });
        }
    }
    Ok(())
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
