//! Which database holds the rows.

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreConfig {
    /// SQL database URL; default `sqlite://<data_dir>/lastseen.db`.
    pub database_url: Option<String>,
    /// Largest number of pooled SQL connections.
    pub db_max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            db_max_connections: 8,
        }
    }
}

impl StoreConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.db_max_connections >= 1,
            "db_max_connections must be at least 1",
        );
    }
}
