//! The cloud in this process, for the tests, the benches and the load tool
//! (cargo feature `testkit`; not `cfg(test)`, because `lastseen-workloads`
//! runs it in release builds).
//!
//! - `local`: [`LocalCloud`], `run` on free ports with its data in a temp dir:
//!   start, stop, restart on the same ports and data, and one health wait that
//!   also notices a cloud that exits while it starts.
//! - `settings`: [`Config::for_tests`](crate::config::Config::for_tests)
//!   (cheap password hashing, a test JWT secret, one detector worker, the
//!   fixtures' model) and [`CloudMqtt`], the brokers a test cloud can use.
//! - `api`: [`Api`], a typed client of the public API (register, log in, add a
//!   device, set its gates), as any client would use it.
//! - `fixtures`: paths into the model and pictures beside the repository
//!   (`../shared`).

mod api;
mod fixtures;
mod local;
mod settings;

pub use crate::free_loopback_port;
pub use api::{Api, ApiCallError, User};
pub use fixtures::{
    FixtureError, fixture_jpeg, image_path, model_path, shared_dir, tiny_jpeg, trace_dir,
    trace_frame,
};
pub use local::{LocalCloud, LocalCloudError};
pub use settings::{CloudMqtt, MOSQUITTO, PASSWORD, TEST_JWT_SECRET};
