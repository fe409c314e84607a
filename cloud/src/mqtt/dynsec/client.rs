//! Sends dynamic-security commands over the cloud's own MQTT connection and
//! matches the plugin's answers to them.
//!
//! The session's event loop hands every message on the response topic to
//! [`DynsecClient::on_response`]; each command carries a `correlationData`
//! unique to this process, so answers to other cloud nodes (or to an
//! operator's `mosquitto_ctrl`), which arrive on the same topic, are ignored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, QoS};
use tokio::sync::oneshot;

use super::DynsecError;
use super::commands::{self, COMMAND_TOPIC, Command, Response};

type Waiting = HashMap<String, oneshot::Sender<Response>>;

pub(crate) struct DynsecClient {
    mqtt: AsyncClient,
    waiting: Mutex<Waiting>,
    /// Tells this process's commands apart from anyone else's.
    tag: String,
    next: AtomicU64,
    /// How long one batch of commands may take to be answered.
    timeout: Duration,
}

/// Answers still to come for one batch, in the order of its commands.
pub(crate) struct Pending<'a> {
    client: &'a DynsecClient,
    answers: Vec<(String, &'static str, oneshot::Receiver<Response>)>,
    received: Vec<Option<Response>>,
}

impl DynsecClient {
    pub(crate) fn new(mqtt: AsyncClient, timeout: Duration) -> Self {
        Self {
            mqtt,
            waiting: Mutex::new(HashMap::new()),
            tag: uuid::Uuid::new_v4().simple().to_string(),
            next: AtomicU64::new(0),
            timeout,
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the batch's answers and encodes it.
    fn prepare(&self, commands: Vec<Command>) -> Result<(Pending<'_>, Vec<u8>), DynsecError> {
        let tagged: Vec<(String, Command)> = commands
            .into_iter()
            .map(|command| {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                (format!("lastseen-{}-{n}", self.tag), command)
            })
            .collect();
        let payload = commands::encode(&tagged).map_err(DynsecError::Encode)?;
        let mut waiting = self.waiting();
        let answers = tagged
            .into_iter()
            .map(|(correlation, command)| {
                let (sender, receiver) = oneshot::channel();
                waiting.insert(correlation.clone(), sender);
                (correlation, command.name(), receiver)
            })
            .collect::<Vec<_>>();
        drop(waiting);
        let received = answers.iter().map(|_| None).collect();
        Ok((
            Pending {
                client: self,
                answers,
                received,
            },
            payload,
        ))
    }

    /// Queues a batch without waiting (for the startup loop, which polls
    /// the connection itself); see [`Pending::try_take`].
    pub(crate) fn send_now(&self, commands: Vec<Command>) -> Result<Pending<'_>, DynsecError> {
        let (pending, payload) = self.prepare(commands)?;
        self.mqtt
            .try_publish(COMMAND_TOPIC, QoS::AtLeastOnce, false, payload)
            .map_err(|e| DynsecError::Send(e.to_string()))?;
        Ok(pending)
    }

    /// Sends a batch and waits for every answer; the plugin runs a batch's
    /// commands in order. Answers may carry an `error`: the caller decides.
    pub(crate) async fn call(&self, commands: Vec<Command>) -> Result<Vec<Response>, DynsecError> {
        let (mut pending, payload) = self.prepare(commands)?;
        self.mqtt
            .publish(COMMAND_TOPIC, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| DynsecError::Send(e.to_string()))?;
        tokio::time::timeout(self.timeout, pending.wait())
            .await
            .map_err(|_| DynsecError::Timeout(self.timeout))?
    }

    /// One message from the response topic.
    pub(crate) fn on_response(&self, payload: &[u8]) {
        let responses = match commands::decode(payload) {
            Ok(responses) => responses,
            Err(error) => {
                tracing::warn!(%error, "unreadable dynamic-security response");
                return;
            }
        };
        let mut waiting = self.waiting();
        for response in responses {
            let Some(correlation) = response.correlation.as_deref() else {
                continue;
            };
            if let Some(sender) = waiting.remove(correlation) {
                let _ = sender.send(response);
            }
        }
    }
}

impl Pending<'_> {
    /// Every answer once all have come, without waiting.
    pub(crate) fn try_take(&mut self) -> Option<Vec<Response>> {
        for ((_, _, receiver), slot) in self.answers.iter_mut().zip(&mut self.received) {
            if slot.is_none() {
                *slot = receiver.try_recv().ok();
            }
        }
        if self.received.iter().all(Option::is_some) {
            Some(self.received.iter_mut().filter_map(Option::take).collect())
        } else {
            None
        }
    }

    async fn wait(&mut self) -> Result<Vec<Response>, DynsecError> {
        let mut all = Vec::with_capacity(self.answers.len());
        for ((_, command, receiver), slot) in self.answers.iter_mut().zip(&mut self.received) {
            let response = match slot.take() {
                Some(response) => response,
                None => receiver
                    .await
                    .map_err(|_| DynsecError::Send(format!("{command}: no answer")))?,
            };
            all.push(response);
        }
        Ok(all)
    }
}

impl Drop for Pending<'_> {
    /// Answers that never came (timeout, lost connection) stop being awaited.
    fn drop(&mut self) {
        let mut waiting = self.client.waiting();
        for (correlation, _, _) in &self.answers {
            waiting.remove(correlation);
        }
    }
}
