//! Sending spooled frames to the cloud, over HTTPS or MQTT, plus the two
//! small conversations beside the frames: gate settings coming down (remote
//! config) and a status message going up every `status_interval_secs`.
//!
//! Both transports take frames from the spool oldest first and delete a frame
//! only when the cloud confirmed it (HTTP 2xx, or its seq in an MQTT ack), or
//! refused it for good. Failures wait with a
//! [`Backoff`] (the cloud's MQTT session uses the same).
//!
//! Seqs are the device's, but the cloud remembers them: an agent whose spool
//! was emptied or restored learns the device's highest stored seq (HTTPS:
//! `GET /api/v1/device/seq` at start; MQTT: a signed ack with `highest_seq`
//! when it comes online) and numbers its next frames above it. A frame the
//! cloud still refuses as [`SEQ_CONFLICT`] (another frame has its seq) is
//! never dropped: it is renumbered above the cloud's highest seq and sent
//! again ([`Context::renumber`]).

pub mod https;
pub mod ledger;
pub mod mqtt;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use lastseen_shared::{Backoff, DeviceId, DeviceState, DeviceStatus, GateSettings};
use tokio::sync::watch;

use crate::Shutdown;
use crate::config::{CloudConfig, ConfigError, Secret, read_token};
use crate::counters::Counters;
use crate::delivery::DeliveryReports;
use crate::spool::SharedSpool;

/// The cloud's code for a frame sent under a seq it stored for another frame.
pub const SEQ_CONFLICT: &str = "seq_conflict";

/// What every transport needs.
#[derive(Clone)]
pub struct Context {
    pub device: DeviceId,
    pub cloud: CloudConfig,
    pub token: Arc<Token>,
    pub spool: Arc<SharedSpool>,
    pub counters: Arc<Counters>,
    pub settings: watch::Sender<GateSettings>,
    pub deliveries: DeliveryReports,
}

impl Context {
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.cloud.backoff_initial_ms),
            Duration::from_millis(self.cloud.backoff_max_ms),
        )
    }

    /// Applies settings from the cloud if they are valid and new.
    pub fn apply_settings(&self, settings: GateSettings, from: &str) {
        if let Err(error) = settings.validate() {
            tracing::warn!(%error, from, "ignoring invalid gate settings from the cloud");
            return;
        }
        let changed = self.settings.send_if_modified(|current| {
            if *current == settings {
                false
            } else {
                *current = settings;
                // Counted before the watchers wake, so whoever sees the new
                // settings also sees them counted.
                Counters::inc(&self.counters.settings_applied);
                true
            }
        });
        if changed {
            tracing::info!(from, "applied gate settings from the cloud");
        }
    }

    /// The cloud stored seqs up to `highest_seq`: the next frames are
    /// numbered above it. A value the cloud could never store a successor
    /// of (`i64::MAX` and up) is ignored.
    pub async fn continue_above(&self, highest_seq: u64) {
        let Some(floor) = highest_seq
            .checked_add(1)
            .filter(|floor| *floor <= i64::MAX as u64)
        else {
            tracing::warn!(
                highest_seq,
                "ignoring an impossible highest seq from the cloud"
            );
            return;
        };
        if let Err(error) = self.spool.raise_next_seq(floor).await {
            tracing::error!(%error, floor, "cannot raise the next seq");
        }
    }

    /// A spooled frame the cloud refused as [`SEQ_CONFLICT`]: it moves to a
    /// fresh seq (above the floor raised before) and goes out again. The new
    /// seq, or `None` if the frame is gone or could not be moved (it is then
    /// kept under its old seq and tried again).
    pub async fn renumber(&self, seq: u64) -> Option<u64> {
        match self.spool.renumber(seq).await {
            Ok(new_seq) => new_seq,
            Err(error) => {
                tracing::error!(%error, seq, "cannot renumber a frame: kept under its seq");
                None
            }
        }
    }

    pub fn status(&self) -> DeviceStatus {
        DeviceStatus {
            state: DeviceState::Online,
            at: Some(chrono::Utc::now()),
            counters: self.counters.snapshot(),
            spool_depth: Some(
                self.spool
                    .gauge()
                    .frames
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        }
    }

    /// Sleeps, unless shutdown comes first (then returns false).
    pub async fn pause(&self, delay: Duration, shutdown: &mut Shutdown) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = shutdown.wait() => false,
        }
    }
}

/// The device token, re-read from `cloud.token_file` after a 401 (HTTPS) or
/// a refused or unanswered MQTT session, so a rotated token can be dropped
/// in place without a restart.
pub struct Token {
    current: RwLock<Secret>,
    cloud: CloudConfig,
}

impl Token {
    pub fn load(cloud: &CloudConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            current: RwLock::new(read_token(cloud)?),
            cloud: cloud.clone(),
        })
    }

    pub fn get(&self) -> Secret {
        self.current
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// Reads the token file again; true when the token changed.
    pub fn reload(&self) -> bool {
        if self.cloud.token_file.is_none() {
            return false;
        }
        match read_token(&self.cloud) {
            Ok(fresh) if fresh != self.get() => {
                if let Ok(mut current) = self.current.write() {
                    *current = fresh;
                }
                tracing::info!("device token reloaded from its file");
                true
            }
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(%error, "cannot reload the device token");
                false
            }
        }
    }
}
