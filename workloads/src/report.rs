//! The run's results: `report.json` (everything), `chart.svg` (throughput
//! and latency over time) and a summary on the terminal.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ledger::Ledger;
use crate::scenario::Scenario;
use crate::stats::{QuerySummary, Second, Summary};

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Seconds from the start until the spools drained (or the drain gave up).
    pub elapsed_secs: f64,
    /// Every spool was empty at the end.
    pub drained: bool,
    pub devices: DeviceTotals,
    pub frames: FrameTotals,
    /// Frames acked per second over the capture window (`duration_secs`).
    pub acked_per_sec: f64,
    /// Capture to "stored and queryable": the agent's confirmation comes after the
    /// cloud has persisted the frame, so this is capture-to-visible.
    pub latency: Summary,
    pub queries: BTreeMap<String, QuerySummary>,
    pub per_second: Vec<Second>,
    pub ledger: Ledger,
    /// Agents or the cloud that stopped with an error.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct DeviceTotals {
    pub active: u32,
    pub idle: u32,
}

/// The agents' counters, added up over all devices.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FrameTotals {
    pub captured: u64,
    pub dropped_by_gates: u64,
    pub spooled: u64,
    /// Handed to the transport, resends included.
    pub sent: u64,
    pub acked: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub transport_errors: u64,
    pub spool_dropped: u64,
}

impl Report {
    /// Writes `report.json` and `chart.svg` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join("report.json");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&json, text)?;
        let chart = dir.join("chart.svg");
        std::fs::write(
            &chart,
            crate::chart::svg(&self.scenario.name, &self.per_second),
        )?;
        Ok((json, chart))
    }

    /// The summary for people.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let f = &self.frames;
        let l = &self.latency;
        let _ = writeln!(
            out,
            "scenario {:?}: {} devices ({} idle) over {:?} for {} s at {} fps",
            self.scenario.name,
            self.devices.active,
            self.devices.idle,
            self.scenario.fleet.transport,
            self.scenario.duration_secs,
            self.scenario.fleet.fps
        );
        let _ = writeln!(
            out,
            "frames: captured {}, dropped by gates {}, sent {} (resends included), acked {}, rejected {}{}",
            f.captured,
            f.dropped_by_gates,
            f.sent,
            f.acked,
            f.rejected,
            if f.rejected_by_reason.is_empty() {
                String::new()
            } else {
                format!(" {:?}", f.rejected_by_reason)
            }
        );
        let _ = writeln!(
            out,
            "throughput: {:.1} frames/s acked; transport errors {}; spools drained: {}",
            self.acked_per_sec, f.transport_errors, self.drained
        );
        let _ = writeln!(
            out,
            "capture-to-visible latency: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} frames)",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
        );
        for (kind, query) in &self.queries {
            let q = &query.latency;
            let _ = writeln!(
                out,
                "query {kind}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} calls, errors {:?})",
                q.p50_ms, q.p99_ms, q.max_ms, q.count, query.errors
            );
        }
        let g = &self.ledger;
        let _ = writeln!(
            out,
            "ledger {}: {} devices, {} acked, {} stored, {} missing, {} duplicates, {} gaps, {} stored but unconfirmed",
            if g.passed { "PASSED" } else { "FAILED" },
            g.devices,
            g.acked,
            g.stored,
            g.missing,
            g.duplicates,
            g.gaps,
            g.stored_unconfirmed
        );
        for error in &self.errors {
            let _ = writeln!(out, "error: {error}");
        }
        out
    }
}
