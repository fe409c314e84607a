//! Provisioning of an external Mosquitto 2 broker through its
//! dynamic-security plugin (`mqtt_dynsec = true`), so the broker enforces
//! the topic rule of docs/mqtt-security.md for every device.
//!
//! - `commands`: the control API's JSON.
//! - `client`: sends commands over the cloud's own MQTT connection and
//!   matches the answers.
//! - `roles`: what the cloud and each device may do (pure).
//! - `provision`: the cloud's role at startup; a device's login when it is
//!   issued a token, and its removal.
//! - `reconcile`: follows `state.credentials`, and compares the broker's
//!   device logins with the store on a schedule.
//!
//! The cloud never stores device tokens, so it can only give a device a
//! broker login at the moment a token is issued: a device whose login was
//! not made then (broker unreachable, lost broker state) gets one at its
//! next token rotation.

mod client;
pub(crate) mod commands;
mod provision;
mod reconcile;
mod roles;

use std::time::Duration;

pub(crate) use client::{DynsecClient, Pending};
pub(crate) use provision::{
    check_answers, cloud_has_role, cloud_join_commands, cloud_role_commands,
};
pub(crate) use reconcile::start;

/// How long the plugin has to answer one batch of commands.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum DynsecError {
    #[error("cannot send dynamic-security commands: {0}")]
    Send(String),
    #[error("the broker did not answer dynamic-security commands within {0:?}")]
    Timeout(Duration),
    #[error("cannot encode dynamic-security commands: {0}")]
    Encode(serde_json::Error),
    #[error("the broker refused {command}: {error}")]
    Refused { command: String, error: String },
    #[error("unexpected dynamic-security answer to {command}: {message}")]
    Answer { command: String, message: String },
}

impl DynsecError {
    /// Worth trying again: the broker may not have seen the command.
    fn is_transient(&self) -> bool {
        matches!(self, DynsecError::Send(_) | DynsecError::Timeout(_))
    }
}
