//! Finding `libonnxruntime` for the person gate (`ort`'s `load-dynamic`), the
//! way the cloud does: the configured path, else `ORT_DYLIB_PATH`, else a
//! `.venv` in the working directory or one of its parents (or beside the
//! executable), else the system library directories.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::person::PersonError;

/// ONNX Runtime allows one environment per process; every agent in it shares this one.
static LOADED: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads the library once per process; later calls get the first outcome.
pub(crate) fn ensure_loaded(
    configured: Option<&Path>,
) -> Result<ort::environment::Environment, PersonError> {
    let outcome = LOADED.get_or_init(|| {
        let path = locate(configured)?;
        let failed = |e: &dyn std::fmt::Display| {
            format!("cannot load ONNX Runtime from {}: {e}", path.display())
        };
        ort::init_from(&path)
            .map_err(|e| failed(&e))?
            .with_name("lastseen-agent")
            .build()
            .map_err(|e| failed(&e))
    });
    outcome.clone().map_err(PersonError::Runtime)
}

fn locate(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(format!(
                "person.onnxruntime_lib {} does not exist",
                path.display()
            ))
        };
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from)
        && path.is_file()
    {
        return Ok(path);
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    let venvs = roots.iter().filter_map(|root| {
        let lib = root.join(".venv/lib");
        std::fs::read_dir(&lib)
            .ok()?
            .filter_map(Result::ok)
            .find_map(|entry| {
                let name = entry.file_name();
                name.to_string_lossy()
                    .starts_with("python3")
                    .then(|| {
                        newest_library_in(&entry.path().join("site-packages/onnxruntime/capi"))
                    })
                    .flatten()
            })
    });
    let system = [
        "/usr/local/lib",
        "/usr/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ]
    .into_iter()
    .filter_map(|dir| newest_library_in(Path::new(dir)));
    venvs.chain(system).next().ok_or_else(|| {
        "ONNX Runtime library not found (set person.onnxruntime_lib or ORT_DYLIB_PATH, or run scripts/setup)"
            .to_owned()
    })
}

/// The PyPI wheel ships only the versioned file (`libonnxruntime.so.1.32.0`).
fn newest_library_in(dir: &Path) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("libonnxruntime.so"))
                && path.is_file()
        })
        .collect();
    candidates.sort();
    candidates.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_library_that_does_not_exist_is_named_in_the_error() {
        let err = locate(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        assert!(err.contains("/nonexistent/libonnxruntime.so"), "{err}");
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
