//! Integration tests: the agent against the real cloud (in-process, with the
//! real detector and store), the agent binary killed with SIGKILL, and the
//! MQTT transport against the machine's Mosquitto and through the real cloud,
//! in the clear and over TLS with a private CA.

mod cloud_mqtt;
mod deploy;
mod helpers;
mod https;
mod mqtt;
mod mqtts;
mod restart;
mod resume;
