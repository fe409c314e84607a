//! The MQTT transport (rumqttc, TCP_NODELAY on, TLS with `mqtts://`).
//!
//! The session follows the wire contract (`shared/README.md`): client id
//! and username = device id, password = device token; last will
//! `{"state":"offline"}` retained on the status topic; the device subscribes
//! to its `ack` and `config` topics, publishes frame envelopes on `frames`
//! (QoS 1) and a retained `DeviceStatus` on `status` at connect and every
//! `status_interval_secs`.
//!
//! Up to `max_in_flight` frames are out at once ([`InFlight`]). A frame
//! leaves the spool only when its seq comes back in an `Ack` (acked or
//! rejected) for a frame this run published ([`Published`]). A frame without
//! an answer after `ack_timeout_secs`, or out when the connection dropped,
//! is published again: the cloud stores a seq once and acks it again.
//!
//! An ack may carry the device's `highest_seq` in the cloud (sent when the
//! device comes online, and with every `seq_conflict`): the next frames are
//! numbered above it. A frame rejected as `seq_conflict` stays in the spool
//! under a new seq above it and is published again (counted in `renumbered`).
//!
//! With a token that carries the device's MAC key (claim `mk`), frames go
//! out as envelope v2 (signed, no token inside) and only acks and settings
//! signed with that key count; anything else on those topics is logged,
//! counted (`unverified_messages`) and ignored. A token without a key
//! (issued before 0.2) sends v1 envelopes and takes unsigned messages.
//!
//! The token can change under a running agent (rotated, then written to
//! `cloud.token_file`): when the connection drops or is refused, when a
//! message does not verify, or when frames go unanswered, the file is read
//! again, and a new token means a new connection with it and its key.

mod answers;
mod link;

use std::time::Duration;

use lastseen_shared::envelope::{self, EnvelopeHeader};
use lastseen_shared::{BrokerUrl, BrokerUrlError, DeviceStatus, Topics};
use rumqttc::{AsyncClient, LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use tokio::time::Instant;

use super::Context;
pub use super::ledger::{InFlight, Published};
use crate::Shutdown;
use crate::counters::Counters;
use answers::Unconfirmed;
use link::{Incoming, Link};

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
    #[error("cloud.mqtt_url `{url}` must be mqtt://host[:port] or mqtts://host[:port]: {source}")]
    Url { url: String, source: BrokerUrlError },
    #[error("cannot read the CA file {path}: {source}")]
    Ca {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid topic prefix: {0}")]
    Prefix(#[from] lastseen_shared::topics::PrefixError),
}

pub struct Mqtt {
    ctx: Context,
    options: MqttOptions,
    topics: Topics,
}

impl Mqtt {
    pub fn new(ctx: Context) -> Result<Self, MqttError> {
        let BrokerUrl { host, port, tls } =
            BrokerUrl::parse(&ctx.cloud.mqtt_url).map_err(|source| MqttError::Url {
                url: ctx.cloud.mqtt_url.chars().take(100).collect(),
                source,
            })?;
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
    #[tracing::instrument(name = "mqtt_transport", skip_all, fields(device = %self.ctx.device))]
    pub async fn run(self, mut shutdown: Shutdown) {
        let mut link = self.connect();
        let ack_topic = self.topics.ack(self.ctx.device);
        let config_topic = self.topics.config(self.ctx.device);
        let mut in_flight = InFlight::new(
            self.ctx.cloud.max_in_flight,
            Duration::from_secs(self.ctx.cloud.ack_timeout_secs),
        );
        let status_every = Duration::from_secs(self.ctx.cloud.status_interval_secs);
        let mut next_status = Instant::now();
        let mut connected = false;
        let mut published = Published::default();
        let mut unconfirmed = Unconfirmed::default();
        let mut tick = tokio::time::interval(TICK);
        loop {
            if connected {
                self.publish_frames(&link, &mut in_flight, &mut published, &mut unconfirmed)
                    .await;
                if Instant::now() >= next_status {
                    self.publish_status(&link.client).await;
                    next_status = Instant::now() + status_every;
                }
            }
            // Something suggests the token changed: read its file again.
            let mut recheck_token = false;
            tokio::select! {
                () = shutdown.wait() => break,
                event = link.events.recv() => match event {
                    Some(Incoming::Connected) => {
                        connected = true;
                        in_flight.clear();
                        for topic in [&ack_topic, &config_topic] {
                            if let Err(error) = link.client.subscribe(topic.as_str(), QoS::AtLeastOnce).await {
                                tracing::warn!(%error, topic, "cannot subscribe");
                            }
                        }
                        next_status = Instant::now();
                        tracing::info!(signed = link.key.is_some(), "connected to the MQTT broker");
                    }
                    Some(Incoming::Disconnected(error)) => {
                        if connected {
                            tracing::warn!(%error, "MQTT connection lost");
                        }
                        connected = false;
                        Counters::inc(&self.ctx.counters.transport_errors);
                        // Refused or kicked: perhaps for a rotated token.
                        recheck_token = true;
                    }
                    Some(Incoming::Message { topic, payload }) => {
                        let verified = if topic == ack_topic {
                            self.on_ack(&link, &payload, &mut in_flight, &mut published, &mut unconfirmed).await
                        } else if topic == config_topic {
                            self.on_config(&link, &payload)
                        } else {
                            true
                        };
                        // The cloud signs with the key of the newest token.
                        recheck_token = !verified;
                    }
                    None => break,
                },
                () = self.ctx.spool.added(), if connected => {}
                _ = tick.tick() => {
                    let expired = in_flight.expire(Instant::now());
                    if expired > 0 {
                        tracing::debug!(expired, "no ack in time: publishing again");
                        // The cloud drops frames signed with a rotated key.
                        recheck_token = true;
                    }
                    // Frames pushed out of a full spool are never acked: forget them.
                    if published.len() > 2 * self.ctx.cloud.max_in_flight {
                        published.retain(|seq| self.ctx.spool.contains(seq));
                    }
                    if unconfirmed.0.len() > 2 * self.ctx.cloud.max_in_flight {
                        unconfirmed.0.retain(|seq, _| self.ctx.spool.contains(*seq));
                    }
                }
            }
            if recheck_token && self.ctx.token.reload() {
                tracing::info!("reconnecting with the new device token");
                // Dropping the old link ends its connection.
                link = self.connect();
                connected = false;
                in_flight.clear();
            }
        }
        if connected {
            // A clean disconnect does not fire the last will: say it ourselves.
            let offline = serde_json::to_vec(&DeviceStatus::offline()).unwrap_or_default();
            let status_topic = self.topics.status(self.ctx.device);
            let _ = link
                .client
                .publish(status_topic, QoS::AtLeastOnce, true, offline)
                .await;
            let _ = link.client.disconnect().await;
            // Let the event loop flush the two packets.
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut link.poller.0).await;
        }
    }

    async fn publish_frames(
        &self,
        link: &Link,
        in_flight: &mut InFlight,
        published: &mut Published,
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
            let encoded = match &link.key {
                Some(key) => envelope::encode_v2(&header, &frame.jpeg, key),
                None => envelope::encode_v1(&header, link.token.expose(), &frame.jpeg),
            };
            let message = match encoded {
                Ok(message) => message,
                Err(error) => {
                    // Cannot happen for frames the agent spooled; never block the queue on one.
                    tracing::error!(%error, seq, "cannot encode an envelope: frame dropped");
                    Counters::inc(&self.ctx.counters.rejected);
                    let _ = self.ctx.spool.remove(vec![seq]).await;
                    continue;
                }
            };
            if link
                .client
                .publish(topic.as_str(), QoS::AtLeastOnce, false, message)
                .await
                .is_err()
            {
                return;
            }
            Counters::inc(&self.ctx.counters.sent);
            Counters::add(&self.ctx.counters.bytes_sent, frame.jpeg.len() as u64);
            in_flight.sent(seq, Instant::now());
            published.insert(seq);
            if self.ctx.deliveries.is_on() {
                unconfirmed.0.insert(seq, frame.captured_at);
            }
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
