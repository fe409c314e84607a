//! Startup of the cloud's MQTT session: connect, and with dynsec make the
//! cloud's role first, then subscribe to the devices' topics. Startup waits
//! for this, so a wrong address or credential fails it.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, Packet, QoS, SubscribeFilter,
    SubscribeReasonCode,
};

use crate::mqtt::dynsec::commands::{Command, RESPONSE_TOPIC};
use crate::mqtt::dynsec::{self, DynsecClient, Pending};

/// Where startup stands.
enum Stage<'a> {
    Connecting,
    /// Subscribing to the dynamic-security answers.
    AnswersSubscribed,
    /// The cloud's role requested, answers awaited.
    Provisioning(Pending<'a>),
    /// The role being given to the cloud's own user, which ends this
    /// session on Mosquitto 2.0.11; startup goes on after reconnecting.
    JoiningRole(Pending<'a>),
    /// The devices' topics requested.
    Subscribed,
}

/// How often startup reconnects after the broker ended its session to
/// apply a role change (once on the first start with dynsec; once more
/// when the prefix or group changed).
const PROVISIONING_ROUNDS: u32 = 3;

/// What startup provisions with dynsec: the client, the commands that make
/// the cloud's role, and the cloud's own broker user.
pub(super) struct Provision<'a> {
    pub(super) client: &'a DynsecClient,
    pub(super) commands: Vec<Command>,
    pub(super) user: &'a str,
}

/// Polls until connected and subscribed, so startup can report failure.
/// With `provision` (dynsec), it first subscribes to the plugin's answers
/// and makes the cloud's role, then subscribes to the devices' topics.
pub(super) async fn first_session<'a>(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    filters: &[SubscribeFilter],
    provision: Option<&Provision<'a>>,
) -> Result<(), String> {
    let mut stage = Stage::Connecting;
    let mut rounds = 0;
    let subscribe = |filters: Vec<SubscribeFilter>| {
        client
            .try_subscribe_many(filters)
            .map_err(|e| e.to_string())
    };
    loop {
        let event = match eventloop.poll().await {
            Ok(event) => event,
            // Not listening yet (the embedded broker binds on its own
            // thread, a broker may start beside the cloud): try again,
            // within the caller's timeout.
            Err(ConnectionError::Io(_) | ConnectionError::NetworkTimeout)
                if matches!(stage, Stage::Connecting) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            // Ended by the broker while it applied a role change: the
            // commands go on without us; provisioning again finds them done.
            Err(error)
                if matches!(
                    stage,
                    Stage::AnswersSubscribed | Stage::Provisioning(_) | Stage::JoiningRole(_)
                ) && rounds < PROVISIONING_ROUNDS =>
            {
                rounds += 1;
                tracing::info!(%error, "the broker ended the session while the cloud's role was set up (Mosquitto does so on role changes); reconnecting");
                stage = Stage::Connecting;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(error) => return Err(error.to_string()),
        };
        stage = match (event, stage) {
            (Event::Incoming(Packet::ConnAck(_)), _) => match provision {
                Some(_) => {
                    subscribe(vec![SubscribeFilter::new(
                        RESPONSE_TOPIC.to_owned(),
                        QoS::AtLeastOnce,
                    )])?;
                    Stage::AnswersSubscribed
                }
                None => {
                    subscribe(filters.to_vec())?;
                    Stage::Subscribed
                }
            },
            (Event::Incoming(Packet::SubAck(ack)), stage) => {
                if !ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_)))
                {
                    return Err(format!("subscription refused: {:?}", ack.return_codes));
                }
                match (stage, provision) {
                    (Stage::AnswersSubscribed, Some(provision)) => Stage::Provisioning(
                        provision
                            .client
                            .send_now(provision.commands.clone())
                            .map_err(|e| e.to_string())?,
                    ),
                    (Stage::Subscribed, _) => return Ok(()),
                    (stage, _) => stage,
                }
            }
            (Event::Incoming(Packet::Publish(publish)), stage)
                if publish.topic == RESPONSE_TOPIC =>
            {
                match provision {
                    None => stage,
                    Some(provision) => {
                        provisioning_answer(provision, filters, stage, &publish.payload, subscribe)?
                    }
                }
            }
            (_, stage) => stage,
        };
    }
}

/// One message on the answers topic during startup: the next stage.
fn provisioning_answer<'a>(
    provision: &Provision<'a>,
    filters: &[SubscribeFilter],
    stage: Stage<'a>,
    payload: &[u8],
    subscribe: impl Fn(Vec<SubscribeFilter>) -> Result<(), String>,
) -> Result<Stage<'a>, String> {
    provision.client.on_response(payload);
    Ok(match stage {
        Stage::Provisioning(mut pending) => match pending.try_take() {
            Some(answers) => {
                if dynsec::cloud_has_role(&answers).map_err(|e| e.to_string())? {
                    subscribe(filters.to_vec())?;
                    Stage::Subscribed
                } else {
                    tracing::info!(
                        user = provision.user,
                        "giving the cloud's broker user its role; the broker ends its sessions once"
                    );
                    Stage::JoiningRole(
                        provision
                            .client
                            .send_now(dynsec::cloud_join_commands(provision.user))
                            .map_err(|e| e.to_string())?,
                    )
                }
            }
            None => Stage::Provisioning(pending),
        },
        // A broker that does not end the session on role
        // changes answers instead.
        Stage::JoiningRole(mut pending) => match pending.try_take() {
            Some(answers) => {
                dynsec::check_answers(&answers).map_err(|e| e.to_string())?;
                subscribe(filters.to_vec())?;
                Stage::Subscribed
            }
            None => Stage::JoiningRole(pending),
        },
        stage => stage,
    })
}
