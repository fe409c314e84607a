//! Locating and loading `libonnxruntime` at run time (`ort`'s `load-dynamic`).
//!
//! The library ships inside the PyPI wheel `onnxruntime`; the project's
//! `scripts/setup` installs it into a `.venv`, where [`locate`] finds it, so a
//! user never has to export a path by hand.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The loaded library and the process's one ONNX Runtime environment.
#[derive(Clone)]
pub struct OnnxRuntime {
    pub library: PathBuf,
    pub(super) environment: ort::environment::Environment,
}

impl std::fmt::Debug for OnnxRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxRuntime")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("ONNX Runtime library not found (looked in: {searched})")]
    NotFound { searched: String },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Load { path: PathBuf, message: String },
}

/// ONNX Runtime allows one environment per process; every session shares it
/// (a load tool runs many agents, and tests many servers, in one process).
static LOADED: OnceLock<Result<OnnxRuntime, RuntimeError>> = OnceLock::new();

/// Loads the library once. Later calls return the first outcome, whatever path they pass.
pub fn ensure_loaded(configured: Option<&Path>) -> Result<OnnxRuntime, RuntimeError> {
    LOADED
        .get_or_init(|| {
            let path = locate(configured)?;
            let failed = |message: String| RuntimeError::Load {
                path: path.clone(),
                message,
            };
            let environment = ort::init_from(&path)
                .map_err(|e| failed(e.to_string()))?
                .with_name("lastseen")
                .build()
                .map_err(|e| failed(e.to_string()))?;
            Ok(OnnxRuntime {
                library: path,
                environment,
            })
        })
        .clone()
}

/// The configured path, else `ORT_DYLIB_PATH`, else a `.venv` in the working
/// directory or one of its parents (or the executable's), else system library dirs.
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(RuntimeError::NotFound {
                searched: path.display().to_string(),
            })
        };
    }
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from) {
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    for root in roots {
        let venv_lib = root.join(".venv").join("lib");
        if let Some(found) = find_in_venv(&venv_lib) {
            return Ok(found);
        }
        searched.push(venv_lib);
    }
    for dir in [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ] {
        if let Some(found) = newest_library_in(Path::new(dir)) {
            return Ok(found);
        }
        searched.push(PathBuf::from(dir));
    }
    let searched = searched
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(RuntimeError::NotFound { searched })
}

/// `.venv/lib/python3.X/site-packages/onnxruntime/capi/libonnxruntime.so.*`
fn find_in_venv(venv_lib: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(venv_lib).ok()?;
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .find_map(|entry| newest_library_in(&entry.path().join("site-packages/onnxruntime/capi")))
}

/// The wheel ships only the versioned file (`libonnxruntime.so.1.32.0`).
fn newest_library_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with("libonnxruntime.so") || name == "libonnxruntime.dylib"
                })
        })
        .filter(|path| path.is_file())
        .collect();
    candidates.sort();
    candidates.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_that_does_not_exist_is_reported() {
        let err = locate(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/libonnxruntime.so"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_versioned_library_inside_a_venv() {
        let venv = tempfile::tempdir().unwrap();
        let capi = venv
            .path()
            .join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime.so.1.32.0"), b"").unwrap();
        std::fs::write(capi.join("onnxruntime_pybind11_state.so"), b"").unwrap();
        let found = find_in_venv(&venv.path().join("lib")).unwrap();
        assert!(found.ends_with("libonnxruntime.so.1.32.0"), "{found:?}");
    }

    #[test]
    fn picks_the_newest_versioned_library_in_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "libonnxruntime.so.1.31.0",
            "libonnxruntime.so.1.32.0",
            "other.so",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let found = newest_library_in(dir.path()).unwrap();
        assert!(found.ends_with("libonnxruntime.so.1.32.0"), "{found:?}");
    }
}
