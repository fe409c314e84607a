//! Users and devices, made through the cloud's public API like any client
//! would (`lastseen_cloud::testkit::Api`): register, log in, add devices
//! (each with its token) and set their gates.

use lastseen_cloud::testkit::{Api, ApiCallError, User};
use lastseen_shared::{DeviceId, GateSettings};

/// A provisioned device and its token.
#[derive(Clone, Debug)]
pub struct Device {
    pub id: DeviceId,
    pub token: String,
    /// Index into the provisioned users.
    pub owner: usize,
}

/// The users made for a run, and the devices they own.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub users: Vec<User>,
    pub devices: Vec<Device>,
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
) -> Result<Provisioned, ApiCallError> {
    // A throwaway password: each run makes its own users.
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut made = Vec::with_capacity(users as usize);
    for i in 0..users {
        made.push(api.user(&format!("load-{run_id}-{i}"), &password).await?);
    }
    let mut devices_made = Vec::with_capacity(devices as usize);
    for i in 0..devices as usize {
        let owner = i % made.len();
        let owner_token = &made[owner].token;
        let (id, token) = api
            .device(owner_token, &format!("sim-{i}"), Some("simulated"))
            .await?;
        api.set_gates(owner_token, id, &gates(i)).await?;
        devices_made.push(Device { id, token, owner });
    }
    Ok(Provisioned {
        users: made,
        devices: devices_made,
    })
}
