//! YOLOX through ONNX Runtime, for the cloud's detector and the agent's person
//! gate alike: finding and loading the runtime library once per process
//! ([`runtime`]), and one session with the pre/post-processing of
//! [`crate::yolox`] around it ([`session`]).

pub mod runtime;
pub mod session;

pub use runtime::{OnnxRuntime, RuntimeError, ensure_loaded, locate};
pub use session::{SessionError, YoloxSession};
