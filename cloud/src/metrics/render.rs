//! The Prometheus text exposition (format 0.0.4) of [`Metrics`]: every
//! family with its `# HELP` and `# TYPE` lines, then its samples.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ConnectionClose, Gauges, Metrics, MqttDenial, Transport};

impl Metrics {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(4096);
        let per_transport = |out: &mut String, name: &str, help: &str, values: &[AtomicU64; 2]| {
            header(out, name, "counter", help);
            for transport in [Transport::Http, Transport::Mqtt] {
                let value = values[transport as usize].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{transport=\"{}\"}} {value}",
                    transport.as_str()
                );
            }
        };
        per_transport(
            &mut out,
            "lastseen_frames_received_total",
            "Frames that reached ingest, by transport.",
            &self.received,
        );
        per_transport(
            &mut out,
            "lastseen_frames_stored_total",
            "Frames stored for the first time.",
            &self.stored,
        );
        per_transport(
            &mut out,
            "lastseen_frames_resent_total",
            "Frames that had been stored before (answered from the store).",
            &self.resent,
        );
        labelled(
            &mut out,
            "lastseen_frames_rejected_total",
            "Frames refused for good, by REST error code.",
            &self.rejected,
        );
        labelled(
            &mut out,
            "lastseen_frames_dropped_total",
            "Frames not taken now (no MQTT ack, or HTTP 5xx); the device sends them again, except forged ones.",
            &self.dropped,
        );
        counter(
            &mut out,
            "lastseen_mqtt_acks_sent_total",
            "Ack messages published to devices.",
            &self.acks_sent,
        );
        counter(
            &mut out,
            "lastseen_mqtt_statuses_total",
            "Device statuses recorded from MQTT.",
            &self.statuses,
        );
        counter(
            &mut out,
            "lastseen_mqtt_statuses_dropped_total",
            "MQTT status messages dropped (unknown or revoked device, not a DeviceStatus).",
            &self.statuses_dropped,
        );
        counter(
            &mut out,
            "lastseen_mqtt_statuses_superseded_total",
            "MQTT statuses not recorded because a newer one of the same device replaced them while they waited.",
            &self.statuses_superseded,
        );
        counter(
            &mut out,
            "lastseen_mqtt_statuses_queue_full_total",
            "MQTT statuses dropped because mqtt_status_queue devices already had one waiting.",
            &self.statuses_queue_full,
        );
        for (name, help, value) in [
            (
                "lastseen_mqtt_statuses_waiting",
                "Devices with an MQTT status waiting to be recorded (bounded by mqtt_status_queue), now.",
                &self.statuses_waiting,
            ),
            (
                "lastseen_mqtt_statuses_waiting_peak",
                "Devices with an MQTT status waiting to be recorded, at most at once so far.",
                &self.statuses_waiting_peak,
            ),
        ] {
            gauge(&mut out, name, help, value);
        }
        counter(
            &mut out,
            "lastseen_mqtt_configs_published_total",
            "Gate settings published (retained) on device config topics.",
            &self.configs_published,
        );
        header(
            &mut out,
            "lastseen_mqtt_denied_total",
            "counter",
            "Device packets the embedded broker's guard refused (a failed login, a publish or subscribe outside the device's own topics).",
        );
        for action in MqttDenial::ALL {
            let value = self.mqtt_denied[action as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "lastseen_mqtt_denied_total{{action=\"{}\"}} {value}",
                action.as_str()
            );
        }
        counter(
            &mut out,
            "lastseen_mqtt_kicked_total",
            "Device sessions the embedded broker's guard ended because their token stopped verifying (revoked, rotated, deleted, expired).",
            &self.mqtt_kicked,
        );
        gauge(
            &mut out,
            "lastseen_mqtt_device_sessions",
            "Device sessions live through the embedded broker's guard.",
            &self.mqtt_device_sessions,
        );
        gauge(
            &mut out,
            "lastseen_http_connections_open",
            "HTTP connections open now (WebSockets included), at most http_max_connections per listener.",
            &self.http_connections_open,
        );
        counter(
            &mut out,
            "lastseen_http_connections_refused_total",
            "HTTP connections closed at once because http_max_connections were open.",
            &self.http_connections_refused,
        );
        header(
            &mut out,
            "lastseen_http_connections_timed_out_total",
            "counter",
            "HTTP connections the server closed on a timer: header, idle, send (the client stopped reading), body (below http_min_body_bytes_per_sec).",
        );
        for reason in ConnectionClose::ALL {
            let value = self.http_connections_timed_out[reason as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "lastseen_http_connections_timed_out_total{{reason=\"{}\"}} {value}",
                reason.as_str()
            );
        }
        header(
            &mut out,
            "lastseen_detect_queue_depth",
            "gauge",
            "Frames waiting for a detector.",
        );
        let _ = writeln!(out, "lastseen_detect_queue_depth {}", gauges.queue_depth);
        header(
            &mut out,
            "lastseen_detect_queue_capacity",
            "gauge",
            "Frames the detection queue holds before ingest refuses more.",
        );
        let _ = writeln!(
            out,
            "lastseen_detect_queue_capacity {}",
            gauges.queue_capacity
        );
        gauges.detection_seconds.render(
            &mut out,
            "lastseen_detection_seconds",
            "Time to decode a frame and run the detector on it.",
        );
        work_load(
            &mut out,
            "lastseen_password_hashes",
            "Argon2 hashes being computed (bounded by argon2_max_concurrent)",
            gauges.password_hashing,
        );
        work_load(
            &mut out,
            "lastseen_renders",
            "images being drawn or shrunk for GET /frames/{id}/image (bounded by render_max_concurrent)",
            gauges.renders,
        );
        let cache = gauges.thumbnail_cache;
        for (name, kind, help, value) in [
            (
                "lastseen_thumbnail_cache_hits_total",
                "counter",
                "Drawn or shrunk images served from the thumbnail cache.",
                cache.hits,
            ),
            (
                "lastseen_thumbnail_cache_misses_total",
                "counter",
                "Drawn or shrunk images made because the thumbnail cache did not have them.",
                cache.misses,
            ),
            (
                "lastseen_thumbnail_cache_bytes",
                "gauge",
                "Bytes the thumbnail cache holds now.",
                cache.bytes,
            ),
            (
                "lastseen_thumbnail_cache_capacity_bytes",
                "gauge",
                "Bytes the thumbnail cache may hold (thumbnail_cache_bytes).",
                cache.capacity,
            ),
        ] {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// `{name}_in_flight` and `{name}_in_flight_peak` of bounded work.
fn work_load(out: &mut String, name: &str, what: &str, load: crate::bounded::WorkLoad) {
    let now = format!("{name}_in_flight");
    header(out, &now, "gauge", &format!("{what}, now."));
    let _ = writeln!(out, "{now} {}", load.in_flight);
    let peak = format!("{name}_in_flight_peak");
    header(
        out,
        &peak,
        "gauge",
        &format!("{what}, at most at once so far."),
    );
    let _ = writeln!(out, "{peak} {}", load.peak);
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

fn gauge(out: &mut String, name: &str, help: &str, value: &AtomicU64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    map: &Mutex<BTreeMap<(Transport, &'static str), u64>>,
) {
    header(out, name, "counter", help);
    let map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for ((transport, reason), value) in map.iter() {
        let _ = writeln!(
            out,
            "{name}{{transport=\"{}\",reason=\"{reason}\"}} {value}",
            transport.as_str()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{FrameOutcome, Histogram};

    #[test]
    fn renders_every_family_with_its_counts() {
        let metrics = Metrics::new();
        metrics.frame(Transport::Http, FrameOutcome::Stored);
        metrics.frame(Transport::Mqtt, FrameOutcome::Resent);
        metrics.frame(
            Transport::Mqtt,
            FrameOutcome::Rejected("unprocessable_image"),
        );
        metrics.frame(Transport::Mqtt, FrameOutcome::Dropped("forged_token"));
        metrics.frame(Transport::Mqtt, FrameOutcome::Dropped("forged_token"));
        metrics.ack_sent();
        metrics.mqtt_denied(MqttDenial::Subscribe);
        metrics.mqtt_denied(MqttDenial::Subscribe);
        metrics.mqtt_kicked();
        metrics.set_mqtt_device_sessions(5);
        metrics.http_connection_opened();
        metrics.http_connection_opened();
        metrics.http_connection_closed();
        metrics.http_connection_refused();
        metrics.http_connection_timed_out(ConnectionClose::Body);
        let histogram = Histogram::new();
        histogram.observe(std::time::Duration::from_millis(20));
        let text = metrics.render(&Gauges {
            queue_depth: 3,
            queue_capacity: 64,
            detection_seconds: &histogram,
            password_hashing: crate::bounded::WorkLoad {
                in_flight: 0,
                peak: 2,
            },
            renders: crate::bounded::WorkLoad {
                in_flight: 1,
                peak: 3,
            },
            thumbnail_cache: crate::metrics::CacheStats {
                hits: 7,
                misses: 2,
                bytes: 1000,
                capacity: 4096,
            },
        });
        for line in [
            "lastseen_frames_received_total{transport=\"http\"} 1",
            "lastseen_frames_received_total{transport=\"mqtt\"} 4",
            "lastseen_frames_stored_total{transport=\"http\"} 1",
            "lastseen_frames_resent_total{transport=\"mqtt\"} 1",
            "lastseen_frames_rejected_total{transport=\"mqtt\",reason=\"unprocessable_image\"} 1",
            "lastseen_frames_dropped_total{transport=\"mqtt\",reason=\"forged_token\"} 2",
            "lastseen_mqtt_acks_sent_total 1",
            "lastseen_mqtt_denied_total{action=\"connect\"} 0",
            "lastseen_mqtt_denied_total{action=\"subscribe\"} 2",
            "lastseen_mqtt_kicked_total 1",
            "lastseen_mqtt_device_sessions 5",
            "lastseen_http_connections_open 1",
            "lastseen_http_connections_refused_total 1",
            "lastseen_http_connections_timed_out_total{reason=\"body\"} 1",
            "lastseen_http_connections_timed_out_total{reason=\"header\"} 0",
            "lastseen_detect_queue_depth 3",
            "lastseen_password_hashes_in_flight_peak 2",
            "lastseen_renders_in_flight 1",
            "lastseen_renders_in_flight_peak 3",
            "lastseen_thumbnail_cache_hits_total 7",
            "lastseen_thumbnail_cache_misses_total 2",
            "lastseen_thumbnail_cache_bytes 1000",
            "lastseen_detection_seconds_count 1",
            "lastseen_detection_seconds_bucket{le=\"0.02\"} 1",
            "lastseen_detection_seconds_bucket{le=\"0.01\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // Every sample line belongs to a family announced before it.
        let mut announced = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                announced.push(rest.split(' ').next().unwrap_or_default().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                assert!(
                    announced
                        .iter()
                        .any(|family| name.starts_with(family.as_str())),
                    "{line}"
                );
            }
        }
    }
}
