//! The MQTT transport (rumqttc, TCP_NODELAY on, TLS with `mqtts://`).
//!
//! The session follows CONTRACTS.md: client id and username = device id,
//! password = device token; last will `{"state":"offline"}` retained on the
//! status topic; the device subscribes to its `ack` and `config` topics,
//! publishes frame envelopes on `frames` (QoS 1) and a retained
//! `DeviceStatus` on `status` at connect and every `status_interval_secs`.
//!
//! Up to `max_in_flight` frames are out at once ([`InFlight`]). A frame
//! leaves the spool only when its seq comes back in an `Ack` (acked or
//! rejected). A frame without an answer after `ack_timeout_secs`, or out when
//! the connection dropped, is published again: the cloud stores a seq once
//! and acks it again.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lastseen_shared::envelope::{self, EnvelopeHeader};
use lastseen_shared::{Ack, DeviceStatus, GateSettings, Topics};
use rand::SeedableRng;
use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, NetworkOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Context;
use crate::Shutdown;
use crate::counters::Counters;
use crate::delivery::DeliveryOutcome;

/// Largest message the agent accepts (acks and settings are small JSON).
const MAX_INCOMING_PACKET: usize = 1024 * 1024;
/// Largest message the agent sends: one frame envelope.
const MAX_OUTGOING_PACKET: usize = 16 * 1024 * 1024;
/// Seconds to wait for a TCP (and TLS) connection to the broker.
const CONNECT_TIMEOUT_SECS: u64 = 10;
/// How often timeouts and the status interval are checked.
const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("cloud.mqtt_url `{0}` must be mqtt://host[:port] or mqtts://host[:port]")]
    Url(String),
    #[error("cannot read the CA file {path}: {source}")]
    Ca {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid topic prefix: {0}")]
    Prefix(#[from] lastseen_shared::topics::PrefixError),
}

/// `(tls, host, port)` of an `mqtt://` or `mqtts://` URL.
pub fn parse_url(url: &str) -> Result<(bool, String, u16), MqttError> {
    let bad = || MqttError::Url(url.chars().take(100).collect());
    let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else {
        return Err(bad());
    };
    let authority = rest.trim_end_matches('/');
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]:1883`, `host:1883`; a bare IPv6 address needs brackets.
        Some((host, port)) if !port.contains(']') => {
            (host, port.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    Ok((tls, host.to_owned(), port))
}

/// The frames published and not yet answered.
#[derive(Debug)]
pub struct InFlight {
    sent: BTreeMap<u64, Instant>,
    limit: usize,
    timeout: Duration,
}

impl InFlight {
    pub fn new(limit: usize, timeout: Duration) -> Self {
        Self {
            sent: BTreeMap::new(),
            limit,
            timeout,
        }
    }

    pub fn room(&self) -> usize {
        self.limit.saturating_sub(self.sent.len())
    }

    pub fn len(&self) -> usize {
        self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.sent.contains_key(&seq)
    }

    pub fn sent(&mut self, seq: u64, at: Instant) {
        self.sent.insert(seq, at);
    }

    pub fn settle(&mut self, seq: u64) -> bool {
        self.sent.remove(&seq).is_some()
    }

    /// Forgets frames unanswered for too long, so they are published again.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.sent.len();
        self.sent
            .retain(|_, at| now.duration_since(*at) < self.timeout);
        before - self.sent.len()
    }

    /// After a reconnect everything out is published again.
    pub fn clear(&mut self) {
        self.sent.clear();
    }
}

/// When each published, unconfirmed frame was captured, for its delivery
/// report. Unlike [`InFlight`] it survives ack timeouts and reconnects, so a
/// late ack is still reported; kept only while someone listens for reports.
#[derive(Debug, Default)]
struct Unconfirmed(BTreeMap<u64, DateTime<Utc>>);

enum Incoming {
    Connected,
    Disconnected(String),
    Message { topic: String, payload: Vec<u8> },
}

pub struct Mqtt {
    ctx: Context,
    options: MqttOptions,
    topics: Topics,
}

impl Mqtt {
    pub fn new(ctx: Context) -> Result<Self, MqttError> {
        let (tls, host, port) = parse_url(&ctx.cloud.mqtt_url)?;
        let topics = Topics::new(&ctx.cloud.mqtt_topic_prefix)?;
        let device = ctx.device.to_string();
        let mut options = MqttOptions::new(&device, host, port);
        options
            .set_credentials(&device, ctx.token.get().expose())
            .set_keep_alive(Duration::from_secs(ctx.cloud.mqtt_keep_alive_secs))
            .set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET)
            .set_inflight(ctx.cloud.max_in_flight.clamp(1, u16::MAX as usize) as u16)
            .set_clean_session(true)
            .set_last_will(LastWill::new(
                topics.status(ctx.device),
                serde_json::to_vec(&DeviceStatus::offline()).unwrap_or_default(),
                QoS::AtLeastOnce,
                true,
            ));
        if tls {
            let transport = match &ctx.cloud.ca_file {
                Some(path) => {
                    let ca = std::fs::read(path).map_err(|source| MqttError::Ca {
                        path: path.display().to_string(),
                        source,
                    })?;
                    Transport::tls_with_config(TlsConfiguration::Simple {
                        ca,
                        alpn: None,
                        client_auth: None,
                    })
                }
                None => Transport::tls_with_default_config(),
            };
            options.set_transport(transport);
        }
        Ok(Self {
            ctx,
            options,
            topics,
        })
    }

    /// Runs the session until shutdown, reconnecting with backoff.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        // The token may have been reloaded since `new`.
        let device = self.ctx.device.to_string();
        self.options
            .set_credentials(&device, self.ctx.token.get().expose());
        let (client, mut eventloop) = AsyncClient::new(self.options.clone(), 64);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
        eventloop.set_network_options(network);
        let (events_tx, mut events) = mpsc::channel(256);
        let mut poller = AbortOnDrop(tokio::spawn(poll(eventloop, events_tx, self.ctx.backoff())));

        let ack_topic = self.topics.ack(self.ctx.device);
        let config_topic = self.topics.config(self.ctx.device);
        let mut in_flight = InFlight::new(
            self.ctx.cloud.max_in_flight,
            Duration::from_secs(self.ctx.cloud.ack_timeout_secs),
        );
        let status_every = Duration::from_secs(self.ctx.cloud.status_interval_secs);
        let mut next_status = Instant::now();
        let mut connected = false;
        let mut unconfirmed = Unconfirmed::default();
        let mut tick = tokio::time::interval(TICK);
        loop {
            if connected {
                self.publish_frames(&client, &mut in_flight, &mut unconfirmed)
                    .await;
                if Instant::now() >= next_status {
                    self.publish_status(&client).await;
                    next_status = Instant::now() + status_every;
                }
            }
            tokio::select! {
                () = shutdown.wait() => break,
                event = events.recv() => match event {
                    Some(Incoming::Connected) => {
                        connected = true;
                        in_flight.clear();
                        for topic in [&ack_topic, &config_topic] {
                            if let Err(error) = client.subscribe(topic.as_str(), QoS::AtLeastOnce).await {
                                tracing::warn!(%error, topic, "cannot subscribe");
                            }
                        }
                        next_status = Instant::now();
                        tracing::info!("connected to the MQTT broker");
                    }
                    Some(Incoming::Disconnected(error)) => {
                        if connected {
                            tracing::warn!(%error, "MQTT connection lost");
                        }
                        connected = false;
                        Counters::inc(&self.ctx.counters.transport_errors);
                    }
                    Some(Incoming::Message { topic, payload }) => {
                        if topic == ack_topic {
                            self.on_ack(&payload, &mut in_flight, &mut unconfirmed).await;
                        } else if topic == config_topic {
                            self.on_config(&payload);
                        }
                    }
                    None => break,
                },
                () = self.ctx.spool.added(), if connected => {}
                _ = tick.tick() => {
                    let expired = in_flight.expire(Instant::now());
                    if expired > 0 {
                        tracing::debug!(expired, "no ack in time: publishing again");
                    }
                    // Frames pushed out of a full spool are never acked: forget them.
                    if unconfirmed.0.len() > 2 * self.ctx.cloud.max_in_flight {
                        unconfirmed.0.retain(|seq, _| self.ctx.spool.contains(*seq));
                    }
                }
            }
        }
        if connected {
            // A clean disconnect does not fire the last will: say it ourselves.
            let offline = serde_json::to_vec(&DeviceStatus::offline()).unwrap_or_default();
            let status_topic = self.topics.status(self.ctx.device);
            let _ = client
                .publish(status_topic, QoS::AtLeastOnce, true, offline)
                .await;
            let _ = client.disconnect().await;
            // Let the event loop flush the two packets.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut poller.0).await;
        }
    }

    async fn publish_frames(
        &self,
        client: &AsyncClient,
        in_flight: &mut InFlight,
        unconfirmed: &mut Unconfirmed,
    ) {
        let room = in_flight.room();
        if room == 0 {
            return;
        }
        let candidates: Vec<u64> = self
            .ctx
            .spool
            .seqs_after(None, room + in_flight.len())
            .into_iter()
            .filter(|seq| !in_flight.contains(*seq))
            .take(room)
            .collect();
        let topic = self.topics.frames(self.ctx.device);
        for seq in candidates {
            let frame = match self.ctx.spool.read(seq).await {
                Ok(Some(frame)) => frame,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%error, seq, "cannot read the spool");
                    return;
                }
            };
            let header = EnvelopeHeader {
                device: self.ctx.device,
                seq,
                captured_at: frame.captured_at,
                measurements: frame.measurements,
            };
            let message =
                match envelope::encode_v1(&header, self.ctx.token.get().expose(), &frame.jpeg) {
                    Ok(message) => message,
                    Err(error) => {
                        // Cannot happen for frames the agent spooled; never block the queue on one.
                        tracing::error!(%error, seq, "cannot encode an envelope: frame dropped");
                        Counters::inc(&self.ctx.counters.rejected);
                        let _ = self.ctx.spool.remove(vec![seq]).await;
                        continue;
                    }
                };
            if client
                .publish(topic.as_str(), QoS::AtLeastOnce, false, message)
                .await
                .is_err()
            {
                return;
            }
            Counters::inc(&self.ctx.counters.sent);
            Counters::add(&self.ctx.counters.bytes_sent, frame.jpeg.len() as u64);
            in_flight.sent(seq, Instant::now());
            if self.ctx.deliveries.is_on() {
                unconfirmed.0.insert(seq, frame.captured_at);
            }
        }
    }

    async fn on_ack(
        &self,
        payload: &[u8],
        in_flight: &mut InFlight,
        unconfirmed: &mut Unconfirmed,
    ) {
        let ack: Ack = match serde_json::from_slice(payload) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(%error, "ignoring a malformed ack");
                return;
            }
        };
        for rejected in &ack.rejected {
            tracing::warn!(
                seq = rejected.seq,
                code = rejected.code,
                message = rejected.message,
                "the cloud refused a frame for good"
            );
        }
        let acked: Vec<u64> = ack.acked.clone();
        let refused: Vec<u64> = ack.rejected.iter().map(|r| r.seq).collect();
        for seq in acked.iter().chain(&refused) {
            in_flight.settle(*seq);
        }
        match self.ctx.spool.remove(acked.clone()).await {
            Ok(removed) => {
                Counters::add(&self.ctx.counters.acked, removed.len() as u64);
                self.report(unconfirmed, &removed, |_| DeliveryOutcome::Acked);
            }
            Err(error) => tracing::error!(%error, "cannot remove acked frames"),
        }
        match self.ctx.spool.remove(refused.clone()).await {
            Ok(removed) => {
                Counters::add(&self.ctx.counters.rejected, removed.len() as u64);
                self.report(unconfirmed, &removed, |seq| DeliveryOutcome::Rejected {
                    code: ack
                        .rejected
                        .iter()
                        .find(|r| r.seq == seq)
                        .map(|r| r.code.clone())
                        .unwrap_or_default(),
                });
            }
            Err(error) => tracing::error!(%error, "cannot remove refused frames"),
        }
        // Answers for frames confirmed before (resends) need no report.
        for seq in acked.iter().chain(&refused) {
            unconfirmed.0.remove(seq);
        }
    }

    /// Reports the frames that just left the spool.
    fn report(
        &self,
        unconfirmed: &mut Unconfirmed,
        removed: &[u64],
        outcome: impl Fn(u64) -> DeliveryOutcome,
    ) {
        for &seq in removed {
            if let Some(captured_at) = unconfirmed.0.remove(&seq) {
                self.ctx.deliveries.report(seq, captured_at, outcome(seq));
            }
        }
    }

    fn on_config(&self, payload: &[u8]) {
        if payload.is_empty() {
            // A cleared retained message: keep what is in force.
            return;
        }
        match serde_json::from_slice::<GateSettings>(payload) {
            Ok(settings) => self.ctx.apply_settings(settings, "mqtt"),
            Err(error) => tracing::warn!(%error, "ignoring malformed gate settings"),
        }
    }

    async fn publish_status(&self, client: &AsyncClient) {
        let Ok(status) = serde_json::to_vec(&self.ctx.status()) else {
            return;
        };
        let topic = self.topics.status(self.ctx.device);
        if let Err(error) = client.publish(topic, QoS::AtLeastOnce, true, status).await {
            tracing::debug!(%error, "cannot publish the status");
        }
    }
}

/// Ends the event loop (and so the connection) with the session, also when
/// the session's future is dropped instead of shut down.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives rumqttc's event loop, which reconnects on the next poll after an
/// error; the waits between tries back off with jitter.
async fn poll(
    mut eventloop: EventLoop,
    events: mpsc::Sender<Incoming>,
    mut backoff: super::backoff::Backoff,
) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    loop {
        let event = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                Incoming::Connected
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => Incoming::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            },
            Ok(_) => continue,
            Err(error) => {
                let delay = backoff.next_delay(&mut rng);
                if events
                    .send(Incoming::Disconnected(error.to_string()))
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            (false, "127.0.0.1".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            (true, "broker.example".into(), 8883)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884").unwrap(),
            (false, "::1".into(), 1884)
        );
        for bad in ["http://x", "mqtt://", "mqtt://h:notaport", "mqtt://u@h:1"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn in_flight_frames_expire_and_make_room() {
        let mut in_flight = InFlight::new(2, Duration::from_secs(30));
        let start = Instant::now();
        in_flight.sent(1, start);
        in_flight.sent(2, start + Duration::from_secs(10));
        assert_eq!(in_flight.room(), 0);
        assert!(in_flight.settle(1));
        assert!(!in_flight.settle(1));
        assert_eq!(in_flight.room(), 1);
        assert_eq!(in_flight.expire(start + Duration::from_secs(39)), 0);
        assert_eq!(in_flight.expire(start + Duration::from_secs(41)), 1);
        assert!(in_flight.is_empty());
    }
}
