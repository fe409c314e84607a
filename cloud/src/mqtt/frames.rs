//! One frame envelope from a device's frames topic, through the same
//! `Ingest::ingest` as HTTPS, to a verdict: ack it, reject it, or drop it.
//!
//! - The envelope must decode and name the device of its topic. A v2
//!   envelope must carry the tag of that device's key (derived from its
//!   record: an unknown or revoked device has none); a v1 envelope (decoded
//!   until 0.3) a valid token of that device. Anything else is dropped
//!   without an answer (no ack goes to a device that did not prove who it
//!   is) and counted.
//! - Stored now or earlier: `acked`. Refused for good
//!   (`IngestErrorKind::is_permanent`, the 4xx of the REST API): `rejected`
//!   with the same error code; a `seq_conflict` also carries the device's
//!   `highest_seq`, so the agent can send the frame again above it. The
//!   answer to a v2 envelope is signed with the device's key; to a v1
//!   envelope it stays plain JSON, which is all that agents of earlier
//!   releases read.
//! - Refused for now (queue full, the device's or account's share of the
//!   detectors used up, the account's storage quota full, storage down,
//!   detector failure): dropped and counted; the device resends it because
//!   no ack came. (A rejected ack would make agents delete the frame.)

use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use lastseen_shared::envelope::{self, Credential};
use lastseen_shared::messages::Rejected;
use lastseen_shared::{Ack, DeviceId, DeviceKey};

use crate::auth::{Accounts, AuthError};
use crate::ingest::{FrameMeta, Ingest, IngestError, IngestErrorKind, MetaError, meta};
use crate::metrics::{FrameOutcome, Metrics, Transport};

/// Why a frame got no answer at all; each is a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Not a frame envelope (or a version this build cannot read).
    BadEnvelope,
    /// The envelope names another device than its topic.
    TopicMismatch,
    /// The token is invalid, expired, rotated, revoked, or another device's;
    /// or the device of a v2 envelope is unknown or revoked.
    ForgedToken,
    /// A v2 envelope's tag is not its device's (forged, altered, or signed
    /// with the key of a token rotated since).
    BadMac,
    /// The detection queue is full: the device resends later.
    Overloaded,
    /// Storage (or the token check's store read) failed: resent later.
    StorageUnavailable,
    /// The detector failed on this frame.
    DetectorFailed,
    /// The device used up its share of the detectors (`admit_device_*`).
    OverDeviceBudget,
    /// The device's account used up its share (`admit_owner_*`).
    OverOwnerBudget,
    /// The account's images would go past `user_quota_bytes`.
    QuotaExceeded,
}

impl Dropped {
    pub const ALL: [Dropped; 10] = [
        Dropped::BadEnvelope,
        Dropped::TopicMismatch,
        Dropped::ForgedToken,
        Dropped::BadMac,
        Dropped::Overloaded,
        Dropped::StorageUnavailable,
        Dropped::DetectorFailed,
        Dropped::OverDeviceBudget,
        Dropped::OverOwnerBudget,
        Dropped::QuotaExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::BadEnvelope => "bad_envelope",
            Dropped::TopicMismatch => "topic_mismatch",
            Dropped::ForgedToken => "forged_token",
            Dropped::BadMac => "bad_mac",
            Dropped::Overloaded => "overloaded",
            Dropped::StorageUnavailable => "storage_unavailable",
            Dropped::DetectorFailed => "detector_failed",
            // The same labels as the HTTP path's.
            Dropped::OverDeviceBudget => "over_device_budget",
            Dropped::OverOwnerBudget => "over_owner_budget",
            Dropped::QuotaExceeded => "quota_exceeded",
        }
    }
}

impl From<IngestErrorKind> for Dropped {
    /// Why a frame ingest refused for now got no answer.
    fn from(kind: IngestErrorKind) -> Self {
        match kind {
            IngestErrorKind::Overloaded => Dropped::Overloaded,
            IngestErrorKind::OverDeviceBudget { .. } => Dropped::OverDeviceBudget,
            IngestErrorKind::OverOwnerBudget { .. } => Dropped::OverOwnerBudget,
            IngestErrorKind::QuotaExceeded => Dropped::QuotaExceeded,
            IngestErrorKind::DetectorFailed => Dropped::DetectorFailed,
            _ => Dropped::StorageUnavailable,
        }
    }
}

/// What happened to one frame message.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Answer `ack` on the device's ack topic.
    Answer {
        device: DeviceId,
        ack: Ack,
        /// Sign the answer with this key (v2); `None`: plain JSON (v1).
        key: Option<DeviceKey>,
    },
    /// No answer.
    Drop(Dropped),
}

/// Runs one frames-topic message through verification and ingest, and
/// counts it on `metrics` (what ingest refused, ingest counts).
pub async fn handle(
    accounts: &Accounts,
    ingest: &Ingest,
    metrics: &Metrics,
    topic_device: DeviceId,
    payload: Bytes,
) -> Verdict {
    let drop = |reason: Dropped| {
        metrics.frame(Transport::Mqtt, FrameOutcome::Dropped(reason.as_str()));
        Verdict::Drop(reason)
    };
    let Ok(envelope) = envelope::decode(&payload) else {
        return drop(Dropped::BadEnvelope);
    };
    // The JPEG is the tail of the message: sliced later, never copied.
    let jpeg_offset = envelope.jpeg_offset(&payload);
    if envelope.header.device != topic_device {
        return drop(Dropped::TopicMismatch);
    }
    let (device, key) = match &envelope.credential {
        Credential::Mac(_) => match accounts.device_key(topic_device).await {
            Ok(Some((device, key))) if envelope.verify(&payload, &key) => (device, Some(key)),
            Ok(Some(_)) => return drop(Dropped::BadMac),
            Ok(None) => return drop(Dropped::ForgedToken),
            Err(error) => {
                tracing::warn!(%error, "cannot read a device's key");
                return drop(Dropped::StorageUnavailable);
            }
        },
        Credential::Token(token) => match accounts.authenticate_device(token).await {
            Ok(device) if device.id == topic_device => (device, None),
            Ok(_) | Err(AuthError::InvalidToken) => return drop(Dropped::ForgedToken),
            Err(error) => {
                tracing::warn!(%error, "cannot check a device token");
                return drop(Dropped::StorageUnavailable);
            }
        },
    };
    let header = envelope.header;
    let seq = header.seq;
    let frame_meta = match check_meta(seq, header.captured_at) {
        Ok(frame_meta) => frame_meta,
        Err(error) => {
            const CODE: &str = "invalid_frame_metadata";
            metrics.frame(Transport::Mqtt, FrameOutcome::Rejected(CODE));
            return Verdict::Answer {
                device: device.id,
                ack: rejected(seq, CODE, error.to_string()),
                key,
            };
        }
    };
    let jpeg = payload.slice(jpeg_offset..);
    let result = ingest
        .ingest_counted(metrics, Transport::Mqtt, &device, frame_meta, jpeg)
        .await;
    match result {
        Ok(_) => Verdict::Answer {
            device: device.id,
            ack: Ack {
                acked: vec![seq],
                ..Ack::default()
            },
            key,
        },
        // Both transports refuse the same frames for good, with the same codes.
        Err(error) if error.kind().is_permanent() => {
            let highest_seq = match &error {
                IngestError::SeqConflict { highest_seq, .. } => *highest_seq,
                _ => None,
            };
            Verdict::Answer {
                device: device.id,
                ack: Ack {
                    highest_seq,
                    ..rejected(seq, error.kind().code(), error.to_string())
                },
                key,
            }
        }
        Err(error) => Verdict::Drop(Dropped::from(error.kind())),
    }
}

/// The envelope's seq and time under the rules of the HTTP headers.
fn check_meta(seq: u64, captured_at: DateTime<Utc>) -> Result<FrameMeta, MetaError> {
    if seq > i64::MAX as u64 {
        return Err(MetaError::Seq);
    }
    if captured_at > Utc::now() + Duration::hours(meta::MAX_CLOCK_SKEW_HOURS) {
        return Err(MetaError::FromTheFuture);
    }
    Ok(FrameMeta { seq, captured_at })
}

fn rejected(seq: u64, code: &str, message: String) -> Ack {
    Ack {
        acked: Vec::new(),
        rejected: vec![Rejected {
            seq,
            code: code.to_owned(),
            message,
        }],
        highest_seq: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_the_http_rules() {
        let now = Utc::now();
        assert!(check_meta(7, now).is_ok());
        assert_eq!(check_meta(u64::MAX, now).unwrap_err(), MetaError::Seq);
        assert_eq!(
            check_meta(1, now + Duration::days(3)).unwrap_err(),
            MetaError::FromTheFuture
        );
    }

    #[test]
    fn every_drop_reason_has_its_own_label() {
        let mut labels: Vec<_> = Dropped::ALL.iter().map(|d| d.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Dropped::ALL.len());
    }

    #[test]
    fn a_frame_ingest_refused_for_now_is_dropped_under_the_label_ingest_counts() {
        for kind in IngestErrorKind::ALL {
            if !kind.is_permanent() {
                assert_eq!(Dropped::from(kind).as_str(), kind.reason(), "{kind:?}");
            }
        }
    }
}
