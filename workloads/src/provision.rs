//! Users and devices, made through the cloud's public API like any client
//! would: register, log in, add devices (each with its token).

use std::time::Duration;

use lastseen_shared::{DeviceId, GateSettings};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{what}: {source}")]
    Request {
        what: String,
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: unexpected answer: {detail}")]
    Answer { what: String, detail: String },
}

/// One user with a session, and the devices they own.
#[derive(Clone, Debug)]
pub struct User {
    pub username: String,
    pub token: String,
}

#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub token: String,
    /// Index into the provisioned users.
    pub owner: usize,
}

#[derive(Clone, Debug)]
pub struct Provisioned {
    pub users: Vec<User>,
    pub devices: Vec<Device>,
}

/// A small client of the public API (user side).
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(http_url: &str) -> Result<Self, ProvisionError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|source| ProvisionError::Request {
                what: "building the HTTP client".into(),
                source,
            })?;
        Ok(Self {
            client,
            base: format!("{}/api/v1", http_url.trim_end_matches('/')),
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`, requires a 2xx and decodes its JSON.
    pub async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProvisionError> {
        let response = request
            .send()
            .await
            .map_err(|source| ProvisionError::Request {
                what: what.to_owned(),
                source: source.without_url(),
            })?;
        let status = response.status();
        if !status.is_success() {
            let body: String = response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect();
            return Err(ProvisionError::Refused {
                what: what.to_owned(),
                status: status.as_u16(),
                body,
            });
        }
        response
            .json()
            .await
            .map_err(|source| ProvisionError::Answer {
                what: what.to_owned(),
                detail: source.to_string(),
            })
    }

    async fn user(&self, username: &str, password: &str) -> Result<User, ProvisionError> {
        let credentials = json!({"username": username, "password": password});
        let _: serde_json::Value = self
            .json(
                "registering a user",
                self.client
                    .post(self.url("/auth/register"))
                    .json(&credentials),
            )
            .await?;
        #[derive(Deserialize)]
        struct Login {
            access_token: String,
        }
        let login: Login = self
            .json(
                "logging in",
                self.client.post(self.url("/auth/login")).json(&credentials),
            )
            .await?;
        Ok(User {
            username: username.to_owned(),
            token: login.access_token,
        })
    }

    async fn device(&self, owner: &User, name: &str) -> Result<(DeviceId, String), ProvisionError> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
            token: String,
        }
        let created: Created = self
            .json(
                "adding a device",
                self.client
                    .post(self.url("/devices"))
                    .bearer_auth(&owner.token)
                    .json(&json!({"name": name, "kind": "simulated"})),
            )
            .await?;
        let id = DeviceId::parse(&created.id).map_err(|e| ProvisionError::Answer {
            what: "adding a device".into(),
            detail: e.to_string(),
        })?;
        Ok((id, created.token))
    }

    /// The cloud is the authority on a device's gates: it hands its settings
    /// to the agent (retained config topic, or the HTTPS poll) at connect.
    async fn set_gates(
        &self,
        owner: &User,
        device: DeviceId,
        gates: &GateSettings,
    ) -> Result<(), ProvisionError> {
        let _: GateSettings = self
            .json(
                "setting a device's gates",
                self.client
                    .put(self.url(&format!("/devices/{device}/settings")))
                    .bearer_auth(&owner.token)
                    .json(gates),
            )
            .await?;
        Ok(())
    }
}

/// `users` users named after `run_id` (so runs against one cloud never
/// collide), and `devices` devices spread over them in turn, each with
/// `gates(index)` as its settings.
pub async fn provision(
    api: &Api,
    run_id: &str,
    users: u32,
    devices: u32,
    gates: impl Fn(usize) -> GateSettings,
) -> Result<Provisioned, ProvisionError> {
    // A throwaway password: each run makes its own users.
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut made = Vec::with_capacity(users as usize);
    for i in 0..users {
        made.push(api.user(&format!("load-{run_id}-{i}"), &password).await?);
    }
    let mut devices_made = Vec::with_capacity(devices as usize);
    for i in 0..devices as usize {
        let owner = i % made.len();
        let (id, token) = api.device(&made[owner], &format!("sim-{i}")).await?;
        api.set_gates(&made[owner], id, &gates(i)).await?;
        devices_made.push(Device { id, token, owner });
    }
    Ok(Provisioned {
        users: made,
        devices: devices_made,
    })
}
