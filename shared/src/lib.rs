//! The wire contract that the lastseen agent and cloud both compile against.
//!
//! Every fact that crosses a process boundary is stated once here: identifiers
//! that validate when parsed, detection and label types, and the claims inside
//! device and user tokens. The YOLOX pre/post-processing sits behind the `yolox`
//! feature so the agent's person gate and the cloud's detector share one
//! implementation. The frame envelope, MQTT topics and the JSON messages
//! beside them (acks, remote gate settings, device status) live here too,
//! with the per-device MAC key that authenticates frames, and the signed
//! wrapper of the cloud's acks and settings.
//!
//! Beside them, two rules both binaries follow when they connect: the broker
//! URLs they accept ([`BrokerUrl`]) and the reconnect [`Backoff`].
//!
//! Behind features, the few run-time pieces both binaries need the same:
//! `onnx` (loading ONNX Runtime, one YOLOX session) and `service` (logs,
//! shutdown signal).

pub mod backoff;
pub mod broker_url;
pub mod detection;
pub mod device_key;
pub mod envelope;
pub mod ids;
pub mod labels;
pub mod messages;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod problems;
pub mod secret;
#[cfg(feature = "service")]
pub mod service;
pub mod signed;
pub mod token;
pub mod topics;
#[cfg(feature = "yolox")]
pub mod yolox;

pub use backoff::Backoff;
pub use broker_url::{BrokerUrl, BrokerUrlError};
pub use detection::{BBox, Detection, Label, LabelError};
pub use device_key::DeviceKey;
pub use envelope::{Credential, Envelope, EnvelopeError, EnvelopeHeader, Measurement};
pub use ids::{DeviceId, FrameId, IdError, UserId};
pub use messages::{Ack, DeviceState, DeviceStatus, GateSettings};
pub use problems::Problems;
pub use secret::Secret;
pub use signed::{SignedError, SignedKind};
pub use topics::{TopicKind, Topics};
