//! What the run measures: confirmed frames per device (for the ledger),
//! refusals by reason, capture-to-visible latency, query latency, and both
//! per second of the run (for the chart).

use std::collections::BTreeMap;

use lastseen_agent::delivery::{Delivery, DeliveryOutcome};
use serde::Serialize;

/// p50/p95/p99/max of a set of samples, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// Nearest-rank percentiles; all zero without samples.
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Self {
            count: sorted.len(),
            mean_ms: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50_ms: rank(50.0),
            p95_ms: rank(95.0),
            p99_ms: rank(99.0),
            max_ms: sorted[sorted.len() - 1],
        }
    }
}

/// One second of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the start of the run.
    pub t: u64,
    pub acked: u64,
    pub rejected: u64,
    /// Capture-to-visible latency of the frames confirmed in this second.
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub queries: u64,
}

/// Confirmed frames of one device.
#[derive(Clone, Debug, Default)]
pub struct DeviceDeliveries {
    pub acked: Vec<u64>,
    pub rejected: Vec<u64>,
}

/// Everything recorded while the run goes; fed by one task.
#[derive(Debug, Default)]
pub struct Recorder {
    pub devices: BTreeMap<usize, DeviceDeliveries>,
    pub rejected_by_code: BTreeMap<String, u64>,
    latencies: Vec<f64>,
    /// `(second, latency ms)` of every acked frame.
    timeline: Vec<(u64, f64)>,
    rejected_at: Vec<u64>,
    queries: BTreeMap<String, QueryRecord>,
}

#[derive(Clone, Debug, Default)]
struct QueryRecord {
    latencies: Vec<f64>,
    seconds: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// Query latency and failures of one kind of request.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QuerySummary {
    pub latency: Summary,
    /// Answers other than the expected ones, by status (or `network`).
    pub errors: BTreeMap<String, u64>,
}

impl Recorder {
    /// `started` is when the run began, in the agents' clock (UTC).
    pub fn delivery(
        &mut self,
        device: usize,
        delivery: &Delivery,
        started: chrono::DateTime<chrono::Utc>,
    ) {
        let second = (delivery.confirmed_at - started).num_seconds().max(0) as u64;
        let entry = self.devices.entry(device).or_default();
        match &delivery.outcome {
            DeliveryOutcome::Acked => {
                entry.acked.push(delivery.seq);
                let latency = (delivery.confirmed_at - delivery.captured_at)
                    .num_microseconds()
                    .unwrap_or(i64::MAX) as f64
                    / 1000.0;
                self.latencies.push(latency);
                self.timeline.push((second, latency));
            }
            DeliveryOutcome::Rejected { code } => {
                entry.rejected.push(delivery.seq);
                *self.rejected_by_code.entry(code.clone()).or_default() += 1;
                self.rejected_at.push(second);
            }
        }
    }

    /// One query answered (`error` = None when it was an expected answer).
    pub fn query(&mut self, kind: &str, second: u64, latency_ms: f64, error: Option<String>) {
        let record = self.queries.entry(kind.to_owned()).or_default();
        record.latencies.push(latency_ms);
        record.seconds.push(second);
        if let Some(error) = error {
            *record.errors.entry(error).or_default() += 1;
        }
    }

    pub fn acked(&self) -> u64 {
        self.latencies.len() as u64
    }

    pub fn rejected(&self) -> u64 {
        self.rejected_at.len() as u64
    }

    pub fn latency(&self) -> Summary {
        Summary::of(&self.latencies)
    }

    /// p99 of the frames acked so far, for the progress line.
    pub fn latency_p99_ms(&self) -> f64 {
        Summary::of(&self.latencies).p99_ms
    }

    pub fn queries(&self) -> BTreeMap<String, QuerySummary> {
        self.queries
            .iter()
            .map(|(kind, record)| {
                (
                    kind.clone(),
                    QuerySummary {
                        latency: Summary::of(&record.latencies),
                        errors: record.errors.clone(),
                    },
                )
            })
            .collect()
    }

    /// Second by second, from 0 to the last second anything happened.
    pub fn seconds(&self) -> Vec<Second> {
        let last = self
            .timeline
            .iter()
            .map(|(s, _)| *s)
            .chain(self.rejected_at.iter().copied())
            .chain(
                self.queries
                    .values()
                    .flat_map(|q| q.seconds.iter().copied()),
            )
            .max();
        let Some(last) = last else {
            return Vec::new();
        };
        let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); last as usize + 1];
        for (second, latency) in &self.timeline {
            latencies[*second as usize].push(*latency);
        }
        let mut out: Vec<Second> = latencies
            .iter()
            .enumerate()
            .map(|(t, samples)| {
                let summary = Summary::of(samples);
                Second {
                    t: t as u64,
                    acked: samples.len() as u64,
                    rejected: 0,
                    latency_p50_ms: summary.p50_ms,
                    latency_p99_ms: summary.p99_ms,
                    queries: 0,
                }
            })
            .collect();
        for second in &self.rejected_at {
            out[*second as usize].rejected += 1;
        }
        for record in self.queries.values() {
            for second in &record.seconds {
                out[*second as usize].queries += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = Summary::of(&samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p95_ms, 95.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summary.mean_ms, 50.5);
        assert_eq!(Summary::of(&[7.0]).p99_ms, 7.0);
        assert_eq!(Summary::of(&[]), Summary::default());
    }

    #[test]
    fn deliveries_are_counted_per_device_per_second_and_by_reason() {
        let start = Utc::now();
        let delivery = |seq, captured_ms: i64, confirmed_ms: i64, outcome| Delivery {
            seq,
            captured_at: start + Duration::milliseconds(captured_ms),
            confirmed_at: start + Duration::milliseconds(confirmed_ms),
            outcome,
        };
        let mut recorder = Recorder::default();
        recorder.delivery(0, &delivery(0, 100, 300, DeliveryOutcome::Acked), start);
        recorder.delivery(0, &delivery(1, 900, 1_400, DeliveryOutcome::Acked), start);
        recorder.delivery(
            1,
            &delivery(
                0,
                1_000,
                2_100,
                DeliveryOutcome::Rejected {
                    code: "unprocessable_image".into(),
                },
            ),
            start,
        );
        recorder.query("last_seen", 2, 3.0, None);
        recorder.query("last_seen", 2, 5.0, Some("500".into()));

        assert_eq!(recorder.acked(), 2);
        assert_eq!(recorder.rejected(), 1);
        assert_eq!(recorder.devices[&0].acked, [0, 1]);
        assert_eq!(recorder.devices[&1].rejected, [0]);
        assert_eq!(recorder.rejected_by_code["unprocessable_image"], 1);
        assert_eq!(recorder.latency().max_ms, 500.0);
        let seconds = recorder.seconds();
        assert_eq!(seconds.len(), 3);
        assert_eq!((seconds[0].acked, seconds[0].latency_p99_ms), (1, 200.0));
        assert_eq!((seconds[1].acked, seconds[1].latency_p99_ms), (1, 500.0));
        assert_eq!((seconds[2].rejected, seconds[2].queries), (1, 2));
        let queries = recorder.queries();
        assert_eq!(queries["last_seen"].latency.count, 2);
        assert_eq!(queries["last_seen"].errors["500"], 1);
    }
}
