//! Failed-login throttling: after `max_failures` failures for one key (a
//! username, or a client address) within `window`, that key is refused until
//! the window that started with its first failure has passed.
//!
//! Plain synchronous state with the clock passed in, so it is tested without
//! sleeping. Kept per cloud node: a node restart forgets it, which is fine for
//! slowing guessing down; it is not an account lockout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries beyond this are pruned (expired first) so a flood of distinct
/// usernames cannot grow memory without bound.
const MAX_TRACKED_KEYS: usize = 100_000;

pub struct AttemptLimiter {
    max_failures: u32,
    window: Duration,
    windows: Mutex<HashMap<String, FailureWindow>>,
}

#[derive(Clone, Copy)]
struct FailureWindow {
    started: Instant,
    failures: u32,
}

impl AttemptLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` when `key` is throttled: the caller answers 429 with `wait`.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match windows.get(key) {
            Some(w) if w.failures >= self.max_failures && now < w.started + self.window => {
                Err(w.started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str, now: Instant) {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if windows.len() >= MAX_TRACKED_KEYS && !windows.contains_key(key) {
            let window = self.window;
            windows.retain(|_, w| now < w.started + window);
            if windows.len() >= MAX_TRACKED_KEYS {
                return;
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert(FailureWindow {
            started: now,
            failures: 0,
        });
        if now >= entry.started + self.window {
            *entry = FailureWindow {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    /// A successful login clears the username's failures.
    pub fn reset(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_passes() {
        let limiter = AttemptLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for i in 0..3 {
            assert!(limiter.check("user:alice", start).is_ok(), "attempt {i}");
            limiter.record_failure("user:alice", start + Duration::from_secs(i));
        }
        let wait = limiter
            .check("user:alice", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(
            limiter.check("user:bob", start).is_ok(),
            "other keys are unaffected"
        );
        assert!(
            limiter
                .check("user:alice", start + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn a_success_resets_the_count() {
        let limiter = AttemptLimiter::new(2, Duration::from_secs(60));
        let now = Instant::now();
        limiter.record_failure("user:alice", now);
        limiter.reset("user:alice");
        limiter.record_failure("user:alice", now);
        assert!(limiter.check("user:alice", now).is_ok());
    }

    #[test]
    fn failures_in_an_old_window_do_not_count() {
        let limiter = AttemptLimiter::new(2, Duration::from_secs(60));
        let now = Instant::now();
        limiter.record_failure("ip:1.2.3.4", now);
        limiter.record_failure("ip:1.2.3.4", now + Duration::from_secs(61));
        assert!(
            limiter
                .check("ip:1.2.3.4", now + Duration::from_secs(62))
                .is_ok()
        );
    }
}
