//! Integration tests: the real server on a random port, used as a client would.

mod accounts;
mod admission;
mod bad_input;
mod control;
mod detector;
mod devices;
mod helpers;
mod hostile;
mod ingest;
mod limits;
mod live;
mod mosquitto_dynsec;
mod mqtt;
mod mqtt_attacks;
mod mqtt_client;
mod mqtt_dynsec;
mod mqtt_wire;
mod openapi;
mod queries;
mod retention;
mod sessions;
mod throttling;
mod thumbnails;
mod two_nodes;
mod web;
