//! Integration tests: the real server on a random port, used as a client would.

mod accounts;
mod bad_input;
mod detector;
mod devices;
mod helpers;
mod hostile;
mod ingest;
mod limits;
mod openapi;
mod queries;
mod retention;
mod sessions;
