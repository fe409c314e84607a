//! The accounts' settings: token keys and lifetimes, password hashing, login
//! and registration throttling, and who may register.

use std::path::PathBuf;
use std::time::Duration;

use lastseen_shared::{Problems, Secret};
use serde::{Deserialize, Serialize};

use super::{HashError, LoginLimits, PasswordHasher, RegistrationPolicy, ThrottleLimits};

/// Longest `lastseen-cloud invite --expires-days` and `invite_ttl_days`.
pub const MAX_INVITE_DAYS: u32 = 3650;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HMAC key for tokens (at least 32 bytes). When neither this nor
    /// `jwt_secret_file` is set, a key is generated once and kept in the data dir.
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    /// Master key (at least 32 bytes) of the per-device MAC keys that
    /// authenticate MQTT frames, acks and configs. When neither this nor
    /// `device_key_secret_file` is set, it is derived from the token key.
    /// Changing it changes every device's key: devices need new tokens.
    pub device_key_secret: Option<Secret>,
    pub device_key_secret_file: Option<PathBuf>,
    pub access_token_ttl_secs: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Argon2 hashes computed at once (each holds `argon2_memory_kib`), and
    /// how long a request waits for one before 503.
    pub argon2_max_concurrent: usize,
    pub argon2_wait_ms: u64,
    /// Failed logins per (client address, username) within
    /// `login_window_secs` before further attempts get 429; the same count
    /// of failures in a row for a username from anywhere starts a backoff.
    pub login_max_failures: u32,
    pub login_window_secs: u64,
    /// Failed logins per client address, across usernames, per window.
    pub login_max_failures_per_client: u32,
    /// The longest wait the per-username backoff imposes.
    pub login_max_backoff_secs: u64,
    /// Registrations per client address per `register_window_secs`.
    pub register_max_per_client: u32,
    pub register_window_secs: u64,
    /// Who may create an account with `POST /auth/register`: `open`
    /// (anyone), `invite` (with an unused, unexpired invite code) or
    /// `closed` (nobody: the operator runs `lastseen-cloud add-user`).
    pub registration: RegistrationMode,
    /// Days an invite code a user makes (`POST /account/invites`) stays
    /// usable; also the default of `lastseen-cloud invite --expires-days`.
    pub invite_ttl_days: u32,
    /// Unused, unexpired invite codes one user may hold at once; 0 lets
    /// only the operator make codes.
    pub max_invites_per_user: u32,
}

/// Who may create an account (`registration`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone may register (throttled per client address).
    #[default]
    Open,
    /// Registering takes a single-use, expiring invite code.
    Invite,
    /// Nobody may register; the operator adds accounts with `add-user`.
    Closed,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_secret_file: None,
            device_key_secret: None,
            device_key_secret_file: None,
            access_token_ttl_secs: 3600,
            // OWASP's first Argon2id recommendation: m=19 MiB, t=2, p=1.
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            argon2_max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            argon2_wait_ms: 5000,
            login_max_failures: 10,
            login_window_secs: 300,
            login_max_failures_per_client: 100,
            login_max_backoff_secs: 60,
            register_max_per_client: 10,
            register_window_secs: 3600,
            // Open for the embedded dev run (scripts/run's demo camera and the
            // load tool register through the API); deploy/cloud.toml sets `invite`.
            registration: RegistrationMode::Open,
            invite_ttl_days: 7,
            max_invites_per_user: 5,
        }
    }
}

impl AuthConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.access_token_ttl_secs >= 60,
            "access_token_ttl_secs must be at least 60",
        );
        problems.check(
            self.argon2_memory_kib >= 8 * self.argon2_parallelism.max(1),
            "argon2_memory_kib must be at least 8 x argon2_parallelism",
        );
        problems.check(
            self.argon2_iterations >= 1,
            "argon2_iterations must be at least 1",
        );
        problems.check(
            self.argon2_parallelism >= 1,
            "argon2_parallelism must be at least 1",
        );
        problems.check(
            self.argon2_max_concurrent >= 1,
            "argon2_max_concurrent must be at least 1",
        );
        problems.check(
            self.login_max_failures >= 1,
            "login_max_failures must be at least 1",
        );
        problems.check(
            self.login_window_secs >= 1,
            "login_window_secs must be at least 1",
        );
        problems.check(
            self.login_max_failures_per_client >= self.login_max_failures,
            "login_max_failures_per_client must be at least login_max_failures",
        );
        problems.check(
            self.login_max_backoff_secs >= 1,
            "login_max_backoff_secs must be at least 1",
        );
        problems.check(
            self.register_max_per_client >= 1 && self.register_window_secs >= 1,
            "register_max_per_client and register_window_secs must be at least 1",
        );
        problems.check(
            (1..=MAX_INVITE_DAYS).contains(&self.invite_ttl_days),
            "invite_ttl_days must be between 1 and 3650",
        );
        problems.check(
            self.jwt_secret.is_none() || self.jwt_secret_file.is_none(),
            "set jwt_secret or jwt_secret_file, not both",
        );
        problems.check(
            self.device_key_secret.is_none() || self.device_key_secret_file.is_none(),
            "set device_key_secret or device_key_secret_file, not both",
        );
        if let Some(secret) = &self.device_key_secret {
            problems.check(
                secret.expose().len() >= 32,
                "device_key_secret must be at least 32 bytes",
            );
            problems.check(
                self.jwt_secret.as_ref() != Some(secret),
                "device_key_secret must differ from jwt_secret (keep the two keys apart)",
            );
        }
        if let Some(secret) = &self.jwt_secret {
            problems.check(
                secret.expose().len() >= 32,
                "jwt_secret must be at least 32 bytes",
            );
        }
    }

    pub fn hasher(&self) -> Result<PasswordHasher, HashError> {
        PasswordHasher::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
        )
    }

    pub fn login_limits(&self) -> LoginLimits {
        LoginLimits {
            throttle: ThrottleLimits {
                max_failures: self.login_max_failures,
                max_failures_per_client: self.login_max_failures_per_client,
                window: Duration::from_secs(self.login_window_secs),
                max_backoff: Duration::from_secs(self.login_max_backoff_secs),
            },
            register_max_per_client: self.register_max_per_client,
            register_window: Duration::from_secs(self.register_window_secs),
            max_concurrent_hashes: self.argon2_max_concurrent,
            hash_wait: Duration::from_millis(self.argon2_wait_ms),
        }
    }

    pub fn registration_policy(&self) -> RegistrationPolicy {
        RegistrationPolicy {
            mode: self.registration,
            invite_ttl_days: self.invite_ttl_days,
            max_invites_per_user: self.max_invites_per_user,
        }
    }
}
