//! What every adapter reaches: the services, built once by `build_state`
//! and shared by the REST API (`http/`), the MQTT adapter (`mqtt/`), the
//! metrics endpoint and the live feed.

use std::sync::Arc;

use crate::auth::Accounts;
use crate::auth::credentials::CredentialEvents;
use crate::devices::Devices;
use crate::devices::settings::DeviceControl;
use crate::ingest::Ingest;
use crate::live::LiveHub;
use crate::metrics::Metrics;
use crate::query::Sightings;
use crate::retention::Retention;
use crate::store::Store;

/// Everything a handler or message task may reach: cheap to clone, one `Arc` per service.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<Accounts>,
    pub devices: Arc<Devices>,
    /// Device credential changes, for the MQTT broker's sessions and logins.
    pub credentials: CredentialEvents,
    pub control: Arc<DeviceControl>,
    pub ingest: Arc<Ingest>,
    pub sightings: Arc<Sightings>,
    pub live: LiveHub,
    pub retention: Arc<Retention>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
}
