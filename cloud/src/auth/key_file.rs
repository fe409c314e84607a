//! Keys kept in files: an operator's key file, and the token key the
//! embedded defaults generate once and keep in the data dir.

use std::path::Path;

use rand::RngCore;

/// Shorter keys make HS256 guessable offline from any captured token.
pub(super) const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot keep a generated token key in {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("the key in {0} is shorter than {MIN_KEY_BYTES} bytes")]
    TooShort(String),
    #[error(
        "no token key: set jwt_secret or jwt_secret_file (LASTSEEN_JWT_SECRET_FILE); a key is only generated for the embedded defaults"
    )]
    Missing,
}

/// A key kept in a file: its trimmed contents, at least [`MIN_KEY_BYTES`].
pub(super) fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let key = text.trim();
    if key.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort(path.display().to_string()));
    }
    Ok(key.as_bytes().to_vec())
}

/// The key in `path`, made (32 random bytes, as hex) when there is none yet.
pub(super) fn read_or_generate_key(path: &Path) -> Result<Vec<u8>, KeyError> {
    if path.exists() {
        return read_key_file(path);
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, hex.as_bytes()).map_err(|source| KeyError::Write {
        path: path.display().to_string(),
        source,
    })?;
    tracing::info!(path = %path.display(), "generated a token signing key");
    Ok(hex.into_bytes())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
