//! One connection to the broker: rumqttc's event loop polled on a task of
//! its own, which reconnects with [`Backoff`] and hands the session what
//! happened.

use lastseen_shared::{Backoff, DeviceKey};
use rand::SeedableRng;
use rumqttc::{AsyncClient, Event, EventLoop, NetworkOptions, Packet};
use tokio::sync::mpsc;

use super::{CONNECT_TIMEOUT_SECS, Mqtt};
use crate::config::Secret;

/// One connection to the broker, with the token it logged in with.
pub(super) struct Link {
    pub(super) client: AsyncClient,
    pub(super) events: mpsc::Receiver<Incoming>,
    pub(super) poller: AbortOnDrop,
    /// The MAC key from `token`; `None` for a legacy token.
    pub(super) key: Option<DeviceKey>,
    pub(super) token: Secret,
}

pub(super) enum Incoming {
    Connected,
    Disconnected(String),
    Message { topic: String, payload: Vec<u8> },
}

impl Mqtt {
    /// Opens a connection with the current token, and its key.
    pub(super) fn connect(&self) -> Link {
        let token = self.ctx.token.get();
        let mut options = self.options.clone();
        options.set_credentials(self.ctx.device.to_string(), token.expose());
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let mut network = NetworkOptions::new();
        network.set_tcp_nodelay(true);
        network.set_connection_timeout(CONNECT_TIMEOUT_SECS);
        eventloop.set_network_options(network);
        let (events_tx, events) = mpsc::channel(256);
        let poller = AbortOnDrop(tokio::spawn(poll(eventloop, events_tx, self.ctx.backoff())));
        let key = DeviceKey::from_token(token.expose());
        if key.is_none() {
            tracing::warn!(
                "the device token carries no MAC key (issued before 0.2): sending legacy v1 envelopes with the token inside; rotate the token"
            );
        }
        Link {
            client,
            events,
            poller,
            key,
            token,
        }
    }
}

/// Ends the event loop (and so the connection) with the session, also when
/// the session's future is dropped instead of shut down.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Drives rumqttc's event loop, which reconnects on the next poll after an
/// error; the waits between tries back off with jitter.
async fn poll(mut eventloop: EventLoop, events: mpsc::Sender<Incoming>, mut backoff: Backoff) {
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
