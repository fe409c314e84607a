//! The cloud under test: an external one at a URL, or a "managed" one that
//! this process runs itself (`lastseen_cloud::testkit::LocalCloud`: free
//! ports, the embedded MQTT broker when devices use MQTT, its data in a temp
//! dir). A managed cloud can be stopped and started again on the same port
//! and data (the restart scenario).

use lastseen_cloud::config::Secret;
use lastseen_cloud::testkit::{CloudMqtt, LocalCloud, LocalCloudError};

use crate::scenario::{Scenario, Transport};

/// Where the devices and users reach the cloud.
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Base URL, no `/api/v1`.
    pub http_url: String,
    pub mqtt_url: Option<String>,
}

pub enum CloudUnderTest {
    External(Endpoints),
    Managed(Box<LocalCloud>),
}

impl CloudUnderTest {
    pub async fn open(scenario: &Scenario) -> Result<Self, LocalCloudError> {
        match &scenario.cloud.url {
            Some(url) => Ok(Self::External(Endpoints {
                http_url: url.trim_end_matches('/').to_owned(),
                mqtt_url: scenario.cloud.mqtt_url.clone(),
            })),
            None => Ok(Self::Managed(Box::new(start_managed(scenario).await?))),
        }
    }

    pub fn endpoints(&self) -> Endpoints {
        match self {
            Self::External(endpoints) => endpoints.clone(),
            Self::Managed(cloud) => Endpoints {
                http_url: cloud.http_url(),
                mqtt_url: cloud.mqtt_url(),
            },
        }
    }
}

/// A cloud in this process with the scenario's settings; the embedded broker
/// on a free port when devices use MQTT (this machine's Mosquitto may hold 1883).
async fn start_managed(scenario: &Scenario) -> Result<LocalCloud, LocalCloudError> {
    let plan = &scenario.cloud;
    let mqtt = match scenario.fleet.transport {
        Transport::Mqtt => CloudMqtt::Embedded,
        Transport::Https => CloudMqtt::Off,
    };
    LocalCloud::start(mqtt, |config| {
        config.store.database_url = plan.database_url.clone();
        config.detect.model_path = plan.model_path.clone();
        config.detect.workers = plan.detect_workers;
        config.detect.threads = plan.detect_threads;
        config.detect.queue_depth = plan.queue_depth;
        // Every provisioned device belongs to a user; the plan bounds them.
        config.devices.max_devices_per_user = scenario.fleet.devices_per_user.max(1);
        // A key of the run's own rather than the public test key; one for
        // the whole run, so tokens outlive a restart.
        config.auth.jwt_secret = Some(Secret::new(format!(
            "workloads-{}-{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )));
        config.log = plan.log.clone();
    })
    .await
}
