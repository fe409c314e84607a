//! Login throttling that can be neither raced nor turned against other users.
//!
//! Three budgets, all counted *before* the password is checked, under one
//! lock, so N concurrent guesses cannot all pass a check made before any of
//! them was recorded:
//!
//! - per (client, username), tight: `max_failures` per `window`. This is what
//!   stops a guesser at one address.
//! - per client, loose: `max_failures_per_client` per `window`, across
//!   usernames. Behind a proxy or a NAT many people share one address, so one
//!   person's typos must not lock out the rest (the pair budget does that).
//! - per username, from anywhere: after `max_failures` failures in a row,
//!   every further attempt waits an exponential backoff (1 s, 2 s, 4 s ... up
//!   to `max_backoff`) after the previous failure. A guesser spread over many
//!   addresses is slowed down; the owner waits seconds, never a lockout.
//!
//! An attempt is counted as a failure when it starts; [`LoginThrottle::succeeded`]
//! takes the count back and clears the username's and the pair's history.
//!
//! Plain synchronous state with the clock passed in, so it is tested without
//! sleeping. Kept per cloud node: a restart forgets it, which is fine for
//! slowing guessing down.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked per budget; beyond it the stalest entries are dropped, so a
/// flood of distinct usernames or addresses cannot grow memory without bound.
const MAX_TRACKED_KEYS: usize = 100_000;

/// What the throttle allows.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleLimits {
    pub max_failures: u32,
    pub max_failures_per_client: u32,
    pub window: Duration,
    pub max_backoff: Duration,
}

/// An attempt under way; hand it back to [`LoginThrottle::succeeded`] if the
/// password was right.
#[derive(Debug)]
pub struct Attempt {
    client: String,
    username: String,
}

pub struct LoginThrottle {
    limits: ThrottleLimits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    pairs: Budgets<(String, String)>,
    clients: Budgets<String>,
    users: HashMap<String, Streak>,
}

/// Failures in a fixed window that starts with the first one.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

struct Budgets<K>(HashMap<K, Window>);

impl<K> Default for Budgets<K> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

/// A username's failures in a row, and when the last one began.
#[derive(Clone, Copy)]
struct Streak {
    failures: u32,
    last: Instant,
}

impl<K: Eq + Hash> Budgets<K> {
    /// How long `key` must wait, if it has used `max` failures in `window`.
    fn wait(&self, key: &K, max: u32, window: Duration, now: Instant) -> Option<Duration> {
        let w = self.0.get(key)?;
        let ends = w.started + window;
        (w.failures >= max && now < ends).then(|| ends - now)
    }

    fn count(&mut self, key: K, window: Duration, now: Instant) {
        if self.0.len() >= MAX_TRACKED_KEYS && !self.0.contains_key(&key) {
            self.0.retain(|_, w| now < w.started + window);
            if self.0.len() >= MAX_TRACKED_KEYS {
                evict_oldest(&mut self.0, |w| w.started);
            }
        }
        let entry = self.0.entry(key).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= entry.started + window {
            *entry = Window {
                started: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    fn uncount(&mut self, key: &K) {
        if let Some(w) = self.0.get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }
}

fn evict_oldest<K: Eq + Hash, V>(map: &mut HashMap<K, V>, age: impl Fn(&V) -> Instant) {
    // Rare (only at the bound), so a scan is fine; drop a tenth at once so
    // the next insertions do not scan again.
    let mut ages: Vec<Instant> = map.values().map(&age).collect();
    let cut = ages.len() / 10;
    let (_, threshold, _) = ages.select_nth_unstable(cut);
    let threshold = *threshold;
    map.retain(|_, v| age(v) > threshold);
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Starts an attempt, counted as a failure until [`Self::succeeded`];
    /// `Err(wait)` when one of the budgets is spent: answer 429 with `wait`.
    pub fn begin(&self, client: &str, username: &str, now: Instant) -> Result<Attempt, Duration> {
        let limits = self.limits;
        let pair = (client.to_owned(), username.to_owned());
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let waits = [
            state
                .pairs
                .wait(&pair, limits.max_failures, limits.window, now),
            state.clients.wait(
                &client.to_owned(),
                limits.max_failures_per_client,
                limits.window,
                now,
            ),
            state
                .users
                .get(username)
                .and_then(|streak| self.backoff_left(*streak, now)),
        ];
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Err(wait);
        }
        state.pairs.count(pair, limits.window, now);
        state.clients.count(client.to_owned(), limits.window, now);
        if state.users.len() >= MAX_TRACKED_KEYS && !state.users.contains_key(username) {
            evict_oldest(&mut state.users, |s| s.last);
        }
        let streak = state.users.entry(username.to_owned()).or_insert(Streak {
            failures: 0,
            last: now,
        });
        streak.failures = streak.failures.saturating_add(1);
        streak.last = now;
        Ok(Attempt {
            client: client.to_owned(),
            username: username.to_owned(),
        })
    }

    /// The password was right: the attempt was no failure, and the
    /// username's and this pair's history is cleared.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.clients.uncount(&attempt.client);
        state
            .pairs
            .0
            .remove(&(attempt.client, attempt.username.clone()));
        state.users.remove(&attempt.username);
    }

    /// Time left before a username with this streak may try again.
    fn backoff_left(&self, streak: Streak, now: Instant) -> Option<Duration> {
        let beyond = streak.failures.checked_sub(self.limits.max_failures)?;
        let backoff = Duration::from_secs(1u64 << beyond.min(20)).min(self.limits.max_backoff);
        let until = streak.last + backoff;
        (now < until).then(|| until - now)
    }
}

/// At most `max` events per key in a window that starts with the first:
/// registrations per client address.
pub struct RateBudget {
    max: u32,
    window: Duration,
    budgets: Mutex<Budgets<String>>,
}

impl RateBudget {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            budgets: Mutex::new(Budgets::default()),
        }
    }

    /// Counts one event for `key`, or `Err(wait)` when its budget is spent.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let key = key.to_owned();
        if let Some(wait) = budgets.wait(&key, self.max, self.window, now) {
            return Err(wait);
        }
        budgets.count(key, self.window, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_budget_allows_max_per_window() {
        let budget = RateBudget::new(2, Duration::from_secs(60));
        let now = Instant::now();
        assert!(budget.take("a", now).is_ok());
        assert!(budget.take("a", now).is_ok());
        assert_eq!(budget.take("a", now).unwrap_err(), Duration::from_secs(60));
        assert!(budget.take("b", now).is_ok());
        assert!(budget.take("a", now + Duration::from_secs(60)).is_ok());
    }

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            max_failures: 3,
            max_failures_per_client: 10,
            window: Duration::from_secs(300),
            max_backoff: Duration::from_secs(60),
        })
    }

    #[test]
    fn attempts_are_counted_when_they_start_so_concurrent_guesses_cannot_pass() {
        let t = throttle();
        let now = Instant::now();
        // Three guesses in flight at once, none finished: the fourth waits.
        let _in_flight: Vec<_> = (0..3)
            .map(|_| t.begin("1.2.3.4", "alice", now).unwrap())
            .collect();
        assert!(t.begin("1.2.3.4", "alice", now).is_err());
    }

    #[test]
    fn one_users_failures_do_not_lock_out_another_user_at_the_same_address() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            t.begin("10.0.0.1", "alice", now).unwrap();
        }
        assert!(t.begin("10.0.0.1", "alice", now).is_err());
        let bob = t.begin("10.0.0.1", "bob", now).expect("bob may try");
        t.succeeded(bob);
        assert!(t.begin("10.0.0.1", "carol", now).is_ok());
    }

    #[test]
    fn the_loose_per_address_budget_stops_a_spray_over_usernames() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..10 {
            t.begin("10.0.0.2", &format!("user{i}"), now).unwrap();
        }
        let wait = t.begin("10.0.0.2", "someone", now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(300));
        assert!(t.begin("10.0.0.3", "someone", now).is_ok());
    }

    #[test]
    fn a_username_guessed_from_everywhere_backs_off_exponentially_but_never_locks() {
        let t = throttle();
        let start = Instant::now();
        for i in 0..3 {
            t.begin(&format!("10.1.0.{i}"), "alice", start).unwrap();
        }
        // The streak reached the limit: the next attempt waits 1 s after the last.
        assert_eq!(
            t.begin("10.9.9.9", "alice", start).unwrap_err(),
            Duration::from_secs(1)
        );
        let later = start + Duration::from_secs(1);
        t.begin("10.2.0.1", "alice", later).unwrap();
        assert_eq!(
            t.begin("10.9.9.9", "alice", later).unwrap_err(),
            Duration::from_secs(2)
        );
        // The owner, after the wait, gets in and clears the streak.
        let owner = t
            .begin("10.9.9.9", "alice", later + Duration::from_secs(2))
            .unwrap();
        t.succeeded(owner);
        assert!(t.begin("10.9.9.8", "alice", later).is_ok());
    }

    #[test]
    fn backoff_is_capped() {
        let t = throttle();
        let mut now = Instant::now();
        for i in 0..40 {
            loop {
                match t.begin(&format!("10.3.{i}.1"), "alice", now) {
                    Ok(_) => break,
                    Err(wait) => {
                        assert!(wait <= Duration::from_secs(60), "{wait:?}");
                        now += wait;
                    }
                }
            }
        }
    }

    #[test]
    fn a_success_gives_back_the_address_budget() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..30 {
            let attempt = t.begin("10.0.0.4", &format!("user{i}"), now).unwrap();
            t.succeeded(attempt);
        }
        assert!(t.begin("10.0.0.4", "another", now).is_ok());
    }

    #[test]
    fn windows_end() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..3 {
            t.begin("10.0.0.5", "dave", now).unwrap();
        }
        let later = now + Duration::from_secs(300);
        // The pair's window is over; the username's backoff (1 s) too.
        assert!(t.begin("10.0.0.5", "dave", later).is_ok());
    }
}
