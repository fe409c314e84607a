//! Replays the images of a directory in name order.

use std::path::{Path, PathBuf};

use super::{FrameSource, SourceError, decode};
use crate::config::SourceConfig;
use crate::frame::Frame;

/// The files of `dir` whose extension (any case) is one of `extensions`
/// (lowercase, without the dot), in name order.
pub fn files_in_name_order(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| extensions.contains(&ext.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

pub struct DirSource {
    files: Vec<PathBuf>,
    next: usize,
    looping: bool,
    max_frames: u64,
    delivered: u64,
}

impl DirSource {
    pub fn open(config: &SourceConfig) -> Result<Self, SourceError> {
        let dir = config
            .path
            .clone()
            .ok_or_else(|| SourceError::Config("source.path is required".to_owned()))?;
        let error = |message: String| SourceError::File {
            path: dir.display().to_string(),
            message,
        };
        let files =
            files_in_name_order(&dir, &["jpg", "jpeg", "png"]).map_err(|e| error(e.to_string()))?;
        if files.is_empty() {
            return Err(error("no .jpg, .jpeg or .png files".to_owned()));
        }
        Ok(Self {
            files,
            next: 0,
            looping: config.looping,
            max_frames: config.max_frames,
            delivered: 0,
        })
    }
}

impl FrameSource for DirSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.max_frames > 0 && self.delivered >= self.max_frames {
            return Ok(None);
        }
        if self.next == self.files.len() {
            if !self.looping {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = &self.files[self.next];
        self.next += 1;
        self.delivered += 1;
        let bytes = std::fs::read(path).map_err(|e| SourceError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        decode(bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;

    fn config(path: PathBuf, looping: bool, max_frames: u64) -> SourceConfig {
        SourceConfig {
            kind: SourceKind::Dir,
            path: Some(path),
            looping,
            max_frames,
            ..SourceConfig::default()
        }
    }

    #[test]
    fn replays_the_trace_in_order_and_keeps_the_jpeg_bytes() {
        let trace = crate::gate::testing::trace_dir();
        let mut source = DirSource::open(&config(trace.clone(), false, 3)).unwrap();
        let first = source.next_frame().unwrap().unwrap();
        assert_eq!(first.image.dimensions(), (640, 360));
        assert_eq!(
            first.jpeg.as_deref(),
            Some(
                std::fs::read(trace.join("frame_0000.jpg"))
                    .unwrap()
                    .as_slice()
            )
        );
        assert!(source.next_frame().unwrap().is_some());
        assert!(source.next_frame().unwrap().is_some());
        assert!(source.next_frame().unwrap().is_none(), "max_frames = 3");
    }

    #[test]
    fn loops_when_asked_and_reports_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DirSource::open(&config(dir.path().to_path_buf(), true, 0)).is_err());
        let trace = crate::gate::testing::trace_dir();
        std::fs::copy(trace.join("frame_0000.jpg"), dir.path().join("a.jpg")).unwrap();
        let mut source = DirSource::open(&config(dir.path().to_path_buf(), true, 0)).unwrap();
        for _ in 0..3 {
            assert!(source.next_frame().unwrap().is_some());
        }
    }
}
