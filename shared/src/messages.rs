//! The JSON messages besides frames: acks, remote gate settings, device status.
//! The same types travel over MQTT (see [`crate::topics`]) and the REST API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Cloud -> device, once frames are persisted (or refused for good).
/// A seq in neither list is not settled: the device keeps it and resends later.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Stored now or earlier: the device may delete these from its spool.
    #[serde(default)]
    pub acked: Vec<u64>,
    /// Will never be accepted (corrupt image, bad envelope ...): the device
    /// drops them too, except `seq_conflict`: another frame has that seq, so
    /// the device sends the frame again under a seq above `highest_seq`.
    #[serde(default)]
    pub rejected: Vec<Rejected>,
    /// The device's highest stored seq, sent with a `seq_conflict` and when
    /// the device comes online: its next frames must have higher seqs (an
    /// agent that lost its spool resumes above it). Absent: not told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub highest_seq: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub seq: u64,
    /// The same codes as the REST API's error shape (`unprocessable_image` ...).
    pub code: String,
    pub message: String,
}

/// Settings the owner edits in the cloud and the device applies without a
/// restart (MQTT: retained on the device's config topic).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct GateSettings {
    pub light: LightGate,
    pub change: ChangeGate,
    pub person: PersonGate,
    /// Send one frame this often even when every gate says no (0 = never), so
    /// slow changes such as a cup put down are still recorded.
    pub heartbeat_secs: u32,
}

/// Drops frames that are too dark or blown out to show anything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct LightGate {
    pub enabled: bool,
    /// Mean luma (0-255) below which a frame is too dark.
    pub min_mean_luma: f32,
    /// Mean luma above which a frame is blown out.
    pub max_mean_luma: f32,
    /// Largest fraction of clipped (near-black or near-white) pixels allowed.
    pub max_clipped_fraction: f32,
}

/// Drops frames where nothing changed against the background.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ChangeGate {
    pub enabled: bool,
    /// Per-pixel luma difference (0-255) that counts as a change.
    pub pixel_threshold: u8,
    /// Fraction of changed pixels from which a frame is sent.
    pub min_changed_fraction: f32,
}

/// Sends only frames where the on-device detector sees a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct PersonGate {
    pub enabled: bool,
    pub min_score: f32,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            light: LightGate::default(),
            change: ChangeGate::default(),
            person: PersonGate::default(),
            heartbeat_secs: 300,
        }
    }
}

impl Default for LightGate {
    fn default() -> Self {
        Self {
            enabled: true,
            min_mean_luma: 20.0,
            max_mean_luma: 235.0,
            max_clipped_fraction: 0.6,
        }
    }
}

impl Default for ChangeGate {
    fn default() -> Self {
        Self {
            enabled: true,
            pixel_threshold: 25,
            min_changed_fraction: 0.005,
        }
    }
}

impl Default for PersonGate {
    fn default() -> Self {
        Self {
            enabled: false,
            min_score: 0.4,
        }
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SettingsError {
    pub field: &'static str,
    pub reason: &'static str,
}

impl GateSettings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |field, reason| Err(SettingsError { field, reason });
        let luma = 0.0..=255.0;
        let fraction = 0.0..=1.0;
        if !luma.contains(&self.light.min_mean_luma) || !luma.contains(&self.light.max_mean_luma) {
            return fail("light.min_mean_luma/max_mean_luma", "must be within 0-255");
        }
        if self.light.min_mean_luma >= self.light.max_mean_luma {
            return fail("light.min_mean_luma", "must be below light.max_mean_luma");
        }
        if !fraction.contains(&self.light.max_clipped_fraction) {
            return fail("light.max_clipped_fraction", "must be within 0-1");
        }
        if !fraction.contains(&self.change.min_changed_fraction) {
            return fail("change.min_changed_fraction", "must be within 0-1");
        }
        if !fraction.contains(&self.person.min_score) {
            return fail("person.min_score", "must be within 0-1");
        }
        Ok(())
    }
}

/// Device -> cloud, retained, about once a minute; the broker publishes
/// `{"state":"offline"}` as the device's last will.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceStatus {
    pub state: DeviceState,
    /// When the device sent it (absent in a last will, which is written at connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Running totals since the agent started: `captured`, `dropped_light`,
    /// `dropped_change`, `dropped_person`, `spooled`, `sent`, `acked` ...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// Frames waiting in the device's spool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_depth: Option<u64>,
    /// The agent's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeviceState {
    Online,
    Offline,
}

impl DeviceStatus {
    /// The last-will payload.
    pub fn offline() -> Self {
        Self {
            state: DeviceState::Offline,
            at: None,
            counters: BTreeMap::new(),
            spool_depth: None,
            version: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_partial_settings_fill_in() {
        GateSettings::default().validate().unwrap();
        let partial: GateSettings =
            serde_json::from_str(r#"{"change":{"min_changed_fraction":0.02}}"#).unwrap();
        assert_eq!(partial.change.min_changed_fraction, 0.02);
        assert_eq!(partial.change.pixel_threshold, 25);
        assert_eq!(partial.light, LightGate::default());
    }

    #[test]
    fn refuses_unknown_fields_and_out_of_range_values() {
        assert!(serde_json::from_str::<GateSettings>(r#"{"lihgt":{}}"#).is_err());
        let mut bad = GateSettings::default();
        bad.light.min_mean_luma = 240.0;
        assert_eq!(bad.validate().unwrap_err().field, "light.min_mean_luma");
        let mut bad = GateSettings::default();
        bad.person.min_score = 1.5;
        assert!(bad.validate().is_err());
        let mut bad = GateSettings::default();
        bad.change.min_changed_fraction = f32::NAN;
        assert!(bad.validate().is_err());
    }

    #[test]
    fn last_will_and_ack_wire_forms() {
        assert_eq!(
            serde_json::to_string(&DeviceStatus::offline()).unwrap(),
            r#"{"state":"offline"}"#
        );
        let ack: Ack = serde_json::from_str(r#"{"acked":[1,2]}"#).unwrap();
        assert_eq!(ack.acked, [1, 2]);
        assert!(ack.rejected.is_empty());
    }
}
