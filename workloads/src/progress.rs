//! The progress bar on stderr while the run goes: redrawn in place on a
//! terminal, a plain line every few seconds otherwise (CI logs).

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::fleet::DeviceHandle;
use crate::stats::Recorder;

const BAR_WIDTH: usize = 30;

/// What one progress line shows.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub elapsed_secs: f64,
    pub duration_secs: f64,
    pub started: usize,
    pub devices: usize,
    pub acked: u64,
    pub acked_per_sec: f64,
    pub p99_ms: f64,
    pub spooled: u64,
}

/// `[#####-----]  12/30 s  devices 40/50  acked 1234 (98/s)  p99 230 ms  in spools 12`
pub fn line(s: &Snapshot) -> String {
    let done = (s.elapsed_secs / s.duration_secs).clamp(0.0, 1.0);
    let filled = (done * BAR_WIDTH as f64).round() as usize;
    format!(
        "[{}{}] {:>4.0}/{:.0} s  devices {}/{}  acked {} ({:.0}/s)  p99 {:.0} ms  in spools {}",
        "#".repeat(filled),
        "-".repeat(BAR_WIDTH - filled),
        s.elapsed_secs,
        s.duration_secs,
        s.started,
        s.devices,
        s.acked,
        s.acked_per_sec,
        s.p99_ms,
        s.spooled
    )
}

/// Draws until the task is aborted.
pub async fn run(
    devices: Arc<Vec<DeviceHandleView>>,
    recorder: Arc<Mutex<Recorder>>,
    start: Instant,
    duration_secs: f64,
) {
    let terminal = std::io::stderr().is_terminal();
    let every = if terminal {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(every);
    let mut last_acked = 0;
    loop {
        tick.tick().await;
        let (acked, p99_ms) = match recorder.lock() {
            Ok(recorder) => (recorder.acked(), recorder.latency_p99_ms()),
            Err(_) => return,
        };
        let snapshot = Snapshot {
            elapsed_secs: start.elapsed().as_secs_f64(),
            duration_secs,
            started: devices.iter().filter(|d| d.started()).count(),
            devices: devices.len(),
            acked,
            acked_per_sec: (acked - last_acked) as f64 / every.as_secs_f64(),
            p99_ms,
            spooled: devices.iter().map(|d| d.spooled()).sum(),
        };
        last_acked = acked;
        let mut stderr = std::io::stderr().lock();
        if terminal {
            let _ = write!(stderr, "\r{}\x1b[K", line(&snapshot));
        } else {
            let _ = writeln!(stderr, "{}", line(&snapshot));
        }
        let _ = stderr.flush();
    }
}

/// Ends the in-place line so the summary starts on a fresh one.
pub fn finish() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// The parts of a [`DeviceHandle`] the progress bar reads.
pub struct DeviceHandleView {
    started: Arc<std::sync::atomic::AtomicBool>,
    spool: Arc<lastseen_agent::spool::SharedSpool>,
}

impl DeviceHandleView {
    pub fn of(device: &DeviceHandle) -> Self {
        Self {
            started: device.started.clone(),
            spool: device.spool.clone(),
        }
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Relaxed)
    }

    fn spooled(&self) -> u64 {
        self.spool.gauge().frames.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_how_far_the_run_is() {
        let text = line(&Snapshot {
            elapsed_secs: 15.0,
            duration_secs: 30.0,
            started: 40,
            devices: 50,
            acked: 1234,
            acked_per_sec: 98.0,
            p99_ms: 230.4,
            spooled: 12,
        });
        assert!(
            text.starts_with(&format!("[{}{}]", "#".repeat(15), "-".repeat(15))),
            "{text}"
        );
        assert!(text.contains("devices 40/50"), "{text}");
        assert!(text.contains("acked 1234 (98/s)"), "{text}");
        assert!(text.contains("p99 230 ms"), "{text}");
        // Past the end (draining) the bar stays full.
        let draining = line(&Snapshot {
            elapsed_secs: 45.0,
            duration_secs: 30.0,
            started: 50,
            devices: 50,
            acked: 0,
            acked_per_sec: 0.0,
            p99_ms: 0.0,
            spooled: 0,
        });
        assert!(draining.starts_with(&format!("[{}]", "#".repeat(BAR_WIDTH))));
    }
}
