//! One device connection through the guard: the CONNECT is checked and
//! replaced by the guard's own login upstream, then two pumps run until
//! either side ends, a packet is denied, or the session is kicked.
//!
//! - device -> broker: every packet is parsed ([`rumqttc::mqttbytes`], MQTT
//!   3.1.1), checked by [`Rules`] and re-encoded, so rumqttd only ever sees
//!   the canonical encoding of what was allowed (no parser differential).
//! - broker -> device: bytes are copied as they come, cut only at packet
//!   boundaries (from the fixed header) so that the guard's own SUBACK
//!   failures can go in between. The broker delivers only what the device
//!   was allowed to subscribe to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use lastseen_shared::{DeviceId, Secret};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Login, Packet, SubAck, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, PacketType, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::Guard;
use super::rules::ConnectDenial;
use crate::auth::AuthError;
use crate::metrics::MqttDenial;

/// Room beyond the payload limit for the topic and packet id of a PUBLISH.
const HEADER_ROOM: usize = 64 * 1024 + 8;
/// Guard-made packets (SUBACK failures) waiting for the device writer.
const INJECT_CAPACITY: usize = 8;
/// How long a DISCONNECT from the device waits for the broker to close.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);
/// Read buffer to start with; it grows to the largest packet.
const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
enum PumpError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("malformed MQTT: {0:?}")]
    Codec(mqttbytes::Error),
}

impl From<mqttbytes::Error> for PumpError {
    fn from(error: mqttbytes::Error) -> Self {
        PumpError::Codec(error)
    }
}

/// How the device -> broker pump ended.
enum Ending {
    /// The device closed its side (EOF).
    Closed,
    /// The device said goodbye (DISCONNECT, forwarded).
    Disconnected,
    /// A packet was denied: the connection is closed.
    Denied,
    /// A packet the device may not send at this point (a second CONNECT, a
    /// broker-to-client packet).
    ProtocolError(&'static str),
}

impl Guard {
    pub(super) fn max_packet(&self) -> usize {
        self.max_message_bytes + HEADER_ROOM
    }

    /// Serves one accepted device connection (plain or TLS) to its end.
    pub(super) async fn serve<S>(self: Arc<Self>, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut device_read, mut device_write) = tokio::io::split(stream);
        let mut inbox = BytesMut::with_capacity(READ_CHUNK);
        let connect = tokio::time::timeout(
            self.connect_timeout,
            self.read_connect(&mut device_read, &mut inbox),
        )
        .await;
        let connect = match connect {
            Err(_) => {
                tracing::debug!(%peer, "MQTT device sent no CONNECT in time");
                return;
            }
            Ok(Err(refusal)) => {
                if let Some(code) = refusal {
                    self.metrics.mqtt_denied(MqttDenial::Connect);
                    let _ = answer(&mut device_write, &connack(code)).await;
                }
                return;
            }
            Ok(Ok(connect)) => connect,
        };
        let claim = match self.rules.connect(&connect) {
            Ok(claim) => claim,
            Err(denial) => {
                tracing::debug!(%peer, %denial, "MQTT login refused");
                self.metrics.mqtt_denied(MqttDenial::Connect);
                let code = match denial {
                    ConnectDenial::Protocol => ConnectReturnCode::RefusedProtocolVersion,
                    _ => ConnectReturnCode::NotAuthorized,
                };
                let _ = answer(&mut device_write, &connack(code)).await;
                return;
            }
        };
        let device = claim.device;
        // Registered before the token check: a revocation announced while
        // it runs then finds this session (see `sessions`).
        let mut session = self.sessions.register(device, Secret::new(claim.token));
        match self.accounts.authenticate_device(claim.token).await {
            Ok(record) if record.id == device => {}
            Ok(_) | Err(AuthError::InvalidToken) => {
                tracing::debug!(%peer, %device, "MQTT login refused: the token does not verify for this device");
                self.metrics.mqtt_denied(MqttDenial::Connect);
                let _ = answer(
                    &mut device_write,
                    &connack(ConnectReturnCode::NotAuthorized),
                )
                .await;
                return;
            }
            Err(error) => {
                tracing::warn!(%peer, %device, %error, "cannot check an MQTT device login");
                let code = ConnectReturnCode::ServiceUnavailable;
                let _ = answer(&mut device_write, &connack(code)).await;
                return;
            }
        }
        let upstream = match self.connect_upstream(device, connect).await {
            Ok(upstream) => upstream,
            Err(error) => {
                tracing::error!(%device, %error, "the embedded broker's guard cannot reach rumqttd");
                let code = ConnectReturnCode::ServiceUnavailable;
                let _ = answer(&mut device_write, &connack(code)).await;
                return;
            }
        };
        self.sessions.mark_live(&session);
        tracing::debug!(%peer, %device, "MQTT device connected");

        let (upstream_read, upstream_write) = upstream.into_split();
        let (inject, injected) = mpsc::channel(INJECT_CAPACITY);
        let max_packet = self.max_packet();
        let inbound = self.device_to_broker(device, device_read, inbox, upstream_write, inject);
        let outbound = broker_to_device(upstream_read, device_write, injected, max_packet);
        tokio::pin!(inbound, outbound);
        tokio::select! {
            ending = &mut inbound => match ending {
                Ok(Ending::Disconnected) => {
                    // The broker closes once it has read the DISCONNECT.
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, &mut outbound).await;
                    tracing::debug!(%device, "MQTT device disconnected");
                }
                Ok(Ending::Closed) => tracing::debug!(%device, "MQTT device connection closed"),
                Ok(Ending::Denied) => {}
                Ok(Ending::ProtocolError(what)) => {
                    tracing::debug!(%device, what, "MQTT device broke the protocol; closed");
                }
                Err(error) => tracing::debug!(%device, %error, "MQTT device connection ended"),
            },
            ending = &mut outbound => {
                if let Err(error) = ending {
                    tracing::debug!(%device, %error, "MQTT broker side ended");
                } else {
                    tracing::debug!(%device, "MQTT broker closed the device session");
                }
            }
            _ = &mut session.kicked => {
                tracing::info!(%device, "MQTT device session ended: its token no longer verifies");
            }
        }
    }

    /// The first packet, which must be a CONNECT. `Err(Some(code))` is a
    /// refusal to answer and count; `Err(None)` just closes (nothing or
    /// garbage was sent).
    async fn read_connect<R>(
        &self,
        device: &mut R,
        inbox: &mut BytesMut,
    ) -> Result<Connect, Option<ConnectReturnCode>>
    where
        R: AsyncRead + Unpin,
    {
        loop {
            match mqttbytes::check(inbox.iter(), self.max_packet()) {
                Ok(header) => {
                    if !matches!(header.packet_type(), Ok(PacketType::Connect)) {
                        return Err(None);
                    }
                    // An MQTT 3.1 or 5 CONNECT may not parse as 3.1.1 at all:
                    // answer it by its protocol level, after the protocol
                    // name (2-byte length + "MQTT").
                    let level = inbox.get(fixed_header_len(inbox) + 6);
                    if level != Some(&4) {
                        tracing::debug!(level = ?level, "MQTT CONNECT refused: not 3.1.1");
                        return Err(Some(ConnectReturnCode::RefusedProtocolVersion));
                    }
                    return match Packet::read(inbox, self.max_packet()) {
                        Ok(Packet::Connect(connect)) => Ok(connect),
                        _ => Err(None),
                    };
                }
                Err(mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(_) => return Err(None),
            }
            match device.read_buf(inbox).await {
                Ok(0) | Err(_) => return Err(None),
                Ok(_) => {}
            }
        }
    }

    /// Logs in to rumqttd as the device, with the guard's secret instead of
    /// the device's token (which never leaves the guard).
    async fn connect_upstream(
        &self,
        device: DeviceId,
        connect: Connect,
    ) -> Result<TcpStream, PumpError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(self.upstream))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.set_nodelay(true)?;
        let id = device.to_string();
        let login = Connect {
            protocol: Protocol::V4,
            keep_alive: connect.keep_alive,
            client_id: id.clone(),
            clean_session: connect.clean_session,
            last_will: connect.last_will,
            login: Some(Login {
                username: id,
                password: self.upstream_secret.expose().to_owned(),
            }),
        };
        let mut bytes = BytesMut::new();
        Packet::Connect(login).write(&mut bytes, usize::MAX)?;
        let mut stream = stream;
        stream.write_all(&bytes).await?;
        Ok(stream)
    }

    /// Checks and forwards what the device sends, until it ends or is denied.
    async fn device_to_broker<R, W>(
        &self,
        device: DeviceId,
        mut from_device: R,
        mut inbox: BytesMut,
        mut to_broker: W,
        inject: mpsc::Sender<Bytes>,
    ) -> Result<Ending, PumpError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let max_packet = self.max_packet();
        let mut outbox = BytesMut::with_capacity(READ_CHUNK);
        loop {
            // Everything complete in the buffer goes upstream in one write.
            let mut ending = None;
            while ending.is_none() {
                let packet = match Packet::read(&mut inbox, max_packet) {
                    Ok(packet) => packet,
                    Err(mqttbytes::Error::InsufficientBytes(needed)) => {
                        inbox.reserve(needed);
                        break;
                    }
                    Err(mqttbytes::Error::PayloadSizeLimitExceeded(size)) => {
                        tracing::info!(%device, size, "MQTT packet over the size limit; device disconnected");
                        self.metrics.mqtt_denied(MqttDenial::Publish);
                        ending = Some(Ending::Denied);
                        break;
                    }
                    Err(error) => return Err(error.into()),
                };
                ending = self.check(device, packet, &mut outbox, &inject).await;
            }
            if !outbox.is_empty() {
                to_broker.write_all(&outbox).await?;
                outbox.clear();
            }
            if let Some(ending) = ending {
                return Ok(ending);
            }
            if from_device.read_buf(&mut inbox).await? == 0 {
                return Ok(Ending::Closed);
            }
        }
    }

    /// One packet from the device: encoded into `outbox` if allowed;
    /// `Some` ends the connection.
    async fn check(
        &self,
        device: DeviceId,
        packet: Packet,
        outbox: &mut BytesMut,
        inject: &mpsc::Sender<Bytes>,
    ) -> Option<Ending> {
        match &packet {
            Packet::Publish(publish) => {
                if let Err(denial) = self.rules.publish(device, publish) {
                    tracing::info!(%device, topic = %truncated(&publish.topic), %denial, "MQTT publish denied; device disconnected");
                    self.metrics.mqtt_denied(MqttDenial::Publish);
                    return Some(Ending::Denied);
                }
            }
            Packet::Subscribe(subscribe) => {
                if let Err(denial) = self.rules.subscribe(device, subscribe) {
                    let filters: Vec<String> = subscribe
                        .filters
                        .iter()
                        .map(|filter| truncated(&filter.path))
                        .collect();
                    tracing::info!(%device, ?filters, %denial, "MQTT subscribe denied");
                    self.metrics.mqtt_denied(MqttDenial::Subscribe);
                    let failure = SubAck::new(
                        subscribe.pkid,
                        vec![SubscribeReasonCode::Failure; subscribe.filters.len()],
                    );
                    let mut bytes = BytesMut::new();
                    if Packet::SubAck(failure)
                        .write(&mut bytes, usize::MAX)
                        .is_err()
                        || inject.send(bytes.freeze()).await.is_err()
                    {
                        return Some(Ending::Closed);
                    }
                    return None;
                }
            }
            Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::PingReq
            | Packet::Unsubscribe(_) => {}
            Packet::Disconnect => {
                let _ = packet.write(outbox, usize::MAX);
                return Some(Ending::Disconnected);
            }
            Packet::Connect(_) => return Some(Ending::ProtocolError("a second CONNECT")),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                return Some(Ending::ProtocolError("a broker-to-client packet"));
            }
        }
        match packet.write(outbox, usize::MAX) {
            Ok(_) => None,
            Err(_) => Some(Ending::ProtocolError("a packet that does not re-encode")),
        }
    }
}

/// Copies the broker's packets to the device, with the guard's own packets
/// in between whole ones.
async fn broker_to_device<R, W>(
    mut from_broker: R,
    mut to_device: W,
    mut injected: mpsc::Receiver<Bytes>,
    max_packet: usize,
) -> Result<(), PumpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buffer = BytesMut::with_capacity(READ_CHUNK);
    loop {
        tokio::select! {
            read = from_broker.read_buf(&mut buffer) => {
                if read? == 0 {
                    return Ok(());
                }
                let whole = whole_packets(&buffer, max_packet)?;
                if whole > 0 {
                    to_device.write_all(&buffer[..whole]).await?;
                    buffer.advance(whole);
                }
            }
            Some(packet) = injected.recv() => {
                to_device.write_all(&packet).await?;
            }
        }
    }
}

/// The length of the complete packets at the start of `buffer`.
fn whole_packets(buffer: &[u8], max_packet: usize) -> Result<usize, mqttbytes::Error> {
    let mut end = 0;
    loop {
        match mqttbytes::check(buffer[end..].iter(), max_packet) {
            Ok(header) => end += header.frame_length(),
            Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(end),
            Err(error) => return Err(error),
        }
    }
}

/// Byte 1 and the 1 to 4 bytes of the remaining length.
fn fixed_header_len(frame: &[u8]) -> usize {
    1 + frame
        .iter()
        .skip(1)
        .take(4)
        .position(|byte| byte & 0x80 == 0)
        .map_or(4, |index| index + 1)
}

fn connack(code: ConnectReturnCode) -> Packet {
    Packet::ConnAck(ConnAck::new(code, false))
}

/// Writes one guard-made packet to the device.
async fn answer<W: AsyncWrite + Unpin>(device: &mut W, packet: &Packet) -> std::io::Result<()> {
    let mut bytes = BytesMut::new();
    if packet.write(&mut bytes, usize::MAX).is_ok() {
        device.write_all(&bytes).await?;
        device.flush().await?;
    }
    Ok(())
}

/// Topics from devices go into logs cut short.
fn truncated(topic: &str) -> String {
    topic.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::QoS;
    use rumqttc::mqttbytes::v4::Publish;

    #[test]
    fn cuts_the_broker_stream_at_packet_boundaries() {
        let mut stream = BytesMut::new();
        Packet::Publish(Publish::new("a/b", QoS::AtMostOnce, vec![7u8; 300]))
            .write(&mut stream, usize::MAX)
            .unwrap();
        let first = stream.len();
        Packet::PingResp.write(&mut stream, usize::MAX).unwrap();
        let second = stream.len();
        Packet::Publish(Publish::new("a/b", QoS::AtMostOnce, vec![1u8; 10]))
            .write(&mut stream, usize::MAX)
            .unwrap();
        let whole = |bytes: &[u8], max| whole_packets(bytes, max).ok();
        assert_eq!(whole(&stream, 1024), Some(stream.len()));
        assert_eq!(whole(&stream[..second + 3], 1024), Some(second));
        assert_eq!(whole(&stream[..first - 1], 1024), Some(0));
        assert_eq!(whole(&stream[..1], 1024), Some(0));
        assert_eq!(whole(&stream, 100), None);
    }

    #[test]
    fn measures_the_fixed_header() {
        let mut small = BytesMut::new();
        Packet::PingReq.write(&mut small, usize::MAX).unwrap();
        assert_eq!(fixed_header_len(&small), 2);
        let mut large = BytesMut::new();
        Packet::Publish(Publish::new("a", QoS::AtMostOnce, vec![0u8; 20_000]))
            .write(&mut large, usize::MAX)
            .unwrap();
        assert_eq!(fixed_header_len(&large), 4);
    }
}
