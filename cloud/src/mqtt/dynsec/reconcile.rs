//! Keeps the broker's device logins in step with the store: follows the
//! credential announcements as they come, and every
//! `mqtt_dynsec_reconcile_secs` (and once at startup) deletes the logins of
//! devices that are unknown, revoked or whose token lifetime has passed,
//! which catches changes made while this node was down or lagging.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lastseen_shared::{DeviceId, Topics};
use tokio::sync::broadcast::{self, error::RecvError};

use super::commands::{ClientList, Command};
use super::provision::{self, RETRY_FIRST_WAIT, with_retries};
use super::roles::managed_device;
use super::{DynsecClient, DynsecError};
use crate::auth::credentials::CredentialChange;
use crate::store::{DeviceRecord, DeviceStore};
use crate::tasks::spawn_named;

/// Clients asked for per `listClients` page.
const LIST_PAGE: i64 = 500;

struct Reconciler {
    client: Arc<DynsecClient>,
    topics: Topics,
    store: Arc<dyn DeviceStore>,
    token_ttl: chrono::Duration,
    every: Duration,
}

/// Starts following `changes` (subscribed before the session's startup
/// ended, so none is missed) with a first pass at once.
pub(crate) fn start(
    config: &super::super::MqttConfig,
    token_ttl_secs: u64,
    store: Arc<dyn DeviceStore>,
    client: Arc<DynsecClient>,
    topics: Topics,
    changes: broadcast::Receiver<CredentialChange>,
) {
    let secs = i64::try_from(token_ttl_secs).unwrap_or(i64::MAX);
    let reconciler = Reconciler {
        client,
        topics,
        store,
        token_ttl: chrono::Duration::try_seconds(secs).unwrap_or(chrono::Duration::MAX),
        every: Duration::from_secs(config.dynsec_reconcile_secs),
    };
    spawn_named("mqtt-dynsec", reconciler.run(changes));
}

/// Why a device's broker login must go, or `None` to keep it.
fn judge(
    record: Option<&DeviceRecord>,
    now: DateTime<Utc>,
    token_ttl: chrono::Duration,
) -> Option<&'static str> {
    let Some(record) = record else {
        return Some("unknown device");
    };
    if record.revoked_at.is_some() {
        return Some("revoked");
    }
    // Its newest token was issued at or after `tokens_valid_after`; the
    // login cannot outlive it by more than that instant's slack.
    let expires = record
        .tokens_valid_after
        .checked_add_signed(token_ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    (expires <= now).then_some("token expired")
}

impl Reconciler {
    async fn run(self, mut changes: broadcast::Receiver<CredentialChange>) {
        let mut every = tokio::time::interval(self.every);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.pass().await,
                change = changes.recv() => match change {
                    Ok(change) => self.apply(change).await,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "missed device credential changes: deletions are made by a reconcile pass now; \
                             devices issued a token meanwhile get a broker login at their next rotation"
                        );
                        self.pass().await;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    async fn apply(&self, change: CredentialChange) {
        match change {
            CredentialChange::Issued { device, token, .. } => {
                let outcome = with_retries("issue a device login", RETRY_FIRST_WAIT, || {
                    provision::issue(&self.client, &self.topics, device, &token)
                })
                .await;
                match outcome {
                    Ok(()) => {
                        tracing::info!(%device, "broker login set for the device's new token")
                    }
                    Err(error) => tracing::error!(
                        %device,
                        %error,
                        "the device has no broker login for its new token (the cloud keeps no tokens): \
                         rotate its token once the broker is back to give it one"
                    ),
                }
            }
            CredentialChange::Revoked { device } | CredentialChange::Deleted { device } => {
                self.remove(device, "revoked or deleted").await;
            }
        }
    }

    async fn remove(&self, device: DeviceId, reason: &str) {
        let outcome = with_retries("delete a device login", RETRY_FIRST_WAIT, || {
            provision::remove(&self.client, device)
        })
        .await;
        match outcome {
            Ok(()) => tracing::info!(%device, reason, "broker login deleted"),
            Err(error) => tracing::warn!(
                %device,
                %error,
                "cannot delete the device's broker login; the next reconcile pass tries again"
            ),
        }
    }

    /// One comparison of the broker's device logins with the store.
    async fn pass(&self) {
        let devices = match self.managed_devices().await {
            Ok(devices) => devices,
            Err(error) => {
                tracing::warn!(%error, "cannot list the broker's clients; reconcile pass skipped");
                return;
            }
        };
        let now = Utc::now();
        for device in devices {
            let record = match self.store.device(device).await {
                Ok(record) => record,
                Err(error) => {
                    tracing::warn!(%device, error = ?error, "cannot look up a device; its broker login stays for now");
                    continue;
                }
            };
            if let Some(reason) = judge(record.as_ref(), now, self.token_ttl) {
                self.remove(device, reason).await;
            }
        }
    }

    /// Every client the cloud made for a device, all pages.
    async fn managed_devices(&self) -> Result<Vec<DeviceId>, DynsecError> {
        let mut devices = Vec::new();
        let mut offset = 0;
        loop {
            let answers = self
                .client
                .call(vec![Command::ListClients {
                    verbose: true,
                    count: LIST_PAGE,
                    offset,
                }])
                .await?;
            let answer = answers
                .into_iter()
                .next()
                .ok_or_else(|| DynsecError::Answer {
                    command: "listClients".into(),
                    message: "no answer".into(),
                })?;
            if let Some(error) = answer.error {
                return Err(DynsecError::Refused {
                    command: answer.command,
                    error,
                });
            }
            let page: ClientList = answer
                .data
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| DynsecError::Answer {
                    command: "listClients".into(),
                    message: e.to_string(),
                })?
                .ok_or_else(|| DynsecError::Answer {
                    command: "listClients".into(),
                    message: "no data".into(),
                })?;
            let received = i64::try_from(page.clients.len()).unwrap_or(i64::MAX);
            devices.extend(page.clients.iter().filter_map(managed_device));
            offset = offset.saturating_add(received);
            if received == 0 || u64::try_from(offset).unwrap_or(u64::MAX) >= page.total {
                return Ok(devices);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use lastseen_shared::UserId;

    use super::*;

    fn record(tokens_valid_after: DateTime<Utc>, revoked: bool) -> DeviceRecord {
        DeviceRecord {
            id: DeviceId::new(),
            owner: UserId::new(),
            name: "d".into(),
            kind: "camera".into(),
            created_at: tokens_valid_after,
            tokens_valid_after,
            revoked_at: revoked.then_some(tokens_valid_after),
        }
    }

    #[test]
    fn logins_of_unknown_revoked_and_expired_devices_go() {
        let now = Utc::now();
        let ttl = chrono::Duration::days(30);
        let fresh = now - chrono::Duration::days(1);
        let old = now - chrono::Duration::days(31);
        assert_eq!(judge(None, now, ttl), Some("unknown device"));
        assert_eq!(judge(Some(&record(fresh, true)), now, ttl), Some("revoked"));
        assert_eq!(
            judge(Some(&record(old, false)), now, ttl),
            Some("token expired")
        );
        assert_eq!(judge(Some(&record(fresh, false)), now, ttl), None);
        assert_eq!(
            judge(Some(&record(fresh, false)), now, chrono::Duration::MAX),
            None
        );
    }
}
