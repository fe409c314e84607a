//! The agent's running totals: one atomic per counter, readable at any time
//! (by `/metrics`, the status message, or a load tool running many agents).
//! Every metric and counter name is spelled here once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($(#[doc = $help:literal] $field:ident),* $(,)?) => {
        /// Totals since the agent started.
        #[derive(Debug, Default)]
        pub struct Counters {
            $(#[doc = $help] pub $field: AtomicU64,)*
        }

        impl Counters {
            /// Every counter by name, e.g. `captured`, `dropped_light`.
            pub fn snapshot(&self) -> BTreeMap<String, u64> {
                let mut all = BTreeMap::new();
                $(all.insert(stringify!($field).to_owned(), self.$field.load(Ordering::Relaxed));)*
                all
            }

            /// `(name, help)` of every counter, for the Prometheus text.
            pub fn help() -> &'static [(&'static str, &'static str)] {
                const HELP: &[(&str, &str)] =
                    &[$((stringify!($field), $help.trim_ascii()),)*];
                HELP
            }
        }
    };
}

counters! {
    /// Frames taken from the source.
    captured,
    /// Frames the source failed to deliver (unreadable file, HTTP error ...).
    capture_errors,
    /// Frames dropped by the light gate (too dark or blown out).
    dropped_light,
    /// Frames dropped by the change gate (nothing changed).
    dropped_change,
    /// Frames dropped by the person gate (nobody seen).
    dropped_person,
    /// Frames sent because the heartbeat was due although a gate said no.
    heartbeats,
    /// Times the change gate rebuilt its background after a sudden global change.
    recalibrations,
    /// Frames written to the spool.
    spooled,
    /// Frames that passed the gates but could not be encoded or spooled (disk full ...).
    spool_errors,
    /// Frames dropped from a full spool (oldest first).
    spool_dropped,
    /// Spool files found unreadable at startup and removed.
    spool_corrupt,
    /// Spool files that kept failing to read (I/O errors), moved to `quarantine/`.
    spool_quarantined,
    /// Frames refused as `seq_conflict` (another frame has the seq), sent again under a new seq.
    renumbered,
    /// Camera snapshots larger than `source.max_snapshot_bytes`, not read.
    snapshots_too_large,
    /// Frames handed to the transport (resends included).
    sent,
    /// Frames the cloud confirmed as stored.
    acked,
    /// Frames the cloud refused for good (removed from the spool).
    rejected,
    /// JPEG bytes handed to the transport.
    bytes_sent,
    /// Transport failures (connection errors, timeouts, 5xx).
    transport_errors,
    /// Frames refused for now because the account's storage quota is full (HTTPS 507); kept in the spool.
    quota_refusals,
    /// Gate settings applied from the cloud.
    settings_applied,
    /// MQTT acks and settings ignored because they did not verify with the device key.
    unverified_messages,
    /// Seqs in MQTT acks ignored: not published in this run, or settled already.
    acks_ignored,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Prefix of every exported metric name.
pub const METRIC_PREFIX: &str = "lastseen_agent";

/// The counters and the spool depth in the Prometheus text format.
pub fn prometheus_text(counters: &Counters, spool_depth: u64, spool_bytes: u64) -> String {
    use std::fmt::Write;
    let values = counters.snapshot();
    let mut out = String::with_capacity(2048);
    for (name, help) in Counters::help() {
        let value = values.get(*name).copied().unwrap_or(0);
        let _ = writeln!(out, "# HELP {METRIC_PREFIX}_{name}_total {help}");
        let _ = writeln!(out, "# TYPE {METRIC_PREFIX}_{name}_total counter");
        let _ = writeln!(out, "{METRIC_PREFIX}_{name}_total {value}");
    }
    let _ = writeln!(
        out,
        "# HELP {METRIC_PREFIX}_spool_depth Frames waiting in the spool."
    );
    let _ = writeln!(out, "# TYPE {METRIC_PREFIX}_spool_depth gauge");
    let _ = writeln!(out, "{METRIC_PREFIX}_spool_depth {spool_depth}");
    let _ = writeln!(
        out,
        "# HELP {METRIC_PREFIX}_spool_bytes Bytes of the frames waiting in the spool."
    );
    let _ = writeln!(out, "# TYPE {METRIC_PREFIX}_spool_bytes gauge");
    let _ = writeln!(out, "{METRIC_PREFIX}_spool_bytes {spool_bytes}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_text_name_every_counter() {
        let counters = Counters::default();
        Counters::add(&counters.dropped_change, 3);
        let snapshot = counters.snapshot();
        assert_eq!(snapshot["dropped_change"], 3);
        assert_eq!(snapshot.len(), Counters::help().len());
        let text = prometheus_text(&counters, 7, 1000);
        assert!(
            text.contains("lastseen_agent_dropped_change_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP lastseen_agent_captured_total Frames taken from the source.\n")
        );
        assert!(text.contains("lastseen_agent_spool_depth 7\n"));
    }
}
