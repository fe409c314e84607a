//! [`DeviceStateStore`](crate::store::DeviceStateStore) on SQLite: the
//! statements and the reading of rows both backends share, written once in
//! `store/device_state.rs`.

crate::store::device_state::device_state_store!(super::SqliteStore);
