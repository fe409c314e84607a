//! Revocation kicks: live device sessions whose token stops verifying are
//! ended.
//!
//! A credential change announced for a device (`state.credentials`) re-checks
//! that device's sessions at once; every `mqtt_session_recheck_secs` all of
//! them are re-checked, which also catches token expiry, changes made by
//! another cloud process, and announcements this listener missed. A rotation
//! ends the sessions on the old token and keeps one that already logged in
//! with the new one; the old token is refused at the next CONNECT anyway.

use std::sync::Arc;
use std::time::Duration;

use lastseen_shared::DeviceId;
use tokio::sync::broadcast::{self, error::RecvError};

use super::sessions::Sessions;
use crate::auth::credentials::CredentialChange;
use crate::auth::{Accounts, AuthError};

pub(super) async fn run(
    sessions: Arc<Sessions>,
    accounts: Arc<Accounts>,
    mut changes: broadcast::Receiver<CredentialChange>,
    every: Duration,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut announcements = true;
    loop {
        let scope = tokio::select! {
            change = changes.recv(), if announcements => match change {
                Ok(change) => Some(change.device()),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "credential announcements missed; re-checking every MQTT session");
                    None
                }
                Err(RecvError::Closed) => {
                    announcements = false;
                    continue;
                }
            },
            _ = ticks.tick() => None,
        };
        recheck(&sessions, &accounts, scope).await;
    }
}

/// Re-verifies the tokens of one device's sessions (or of all of them) and
/// kicks those that no longer verify for their device.
async fn recheck(sessions: &Sessions, accounts: &Accounts, scope: Option<DeviceId>) {
    for held in sessions.held(scope) {
        let valid = match accounts.authenticate_device(held.token.expose()).await {
            Ok(record) => record.id == held.device,
            Err(AuthError::InvalidToken) => false,
            Err(error) => {
                // The store is unreachable: keep the session, try next time.
                tracing::warn!(device = %held.device, %error, "cannot re-check an MQTT device session");
                continue;
            }
        };
        if !valid && sessions.kick(held.device, held.id) {
            tracing::debug!(device = %held.device, "MQTT device session kicked");
        }
    }
}
