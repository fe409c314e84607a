//! Expensive work that runs at most N at a time (Argon2 hashing, image
//! rendering): a semaphore whose permit moves into the blocking task, so the
//! bound holds even when the request that asked is dropped mid-work, with a
//! bounded wait for a slot and the peak kept for `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// No slot came free within the wait: answer 503 with `retry_after_secs`.
#[derive(Debug, thiserror::Error)]
#[error("too much of this work at once; retry in {retry_after_secs} s")]
pub struct Busy {
    pub retry_after_secs: u64,
}

/// Work of one kind right now and at most so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkLoad {
    pub in_flight: usize,
    pub peak: usize,
}

pub struct BoundedWork {
    slots: Arc<Semaphore>,
    wait: Duration,
    load: Arc<LoadCounter>,
}

#[derive(Default)]
struct LoadCounter {
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// A held slot; move it into the task that does the work.
pub struct Slot {
    load: Arc<LoadCounter>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl BoundedWork {
    /// At most `max` at once (at least 1); a caller waits up to `wait`.
    pub fn new(max: usize, wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max.max(1))),
            wait,
            load: Arc::default(),
        }
    }

    pub async fn acquire(&self) -> Result<Slot, Busy> {
        let busy = || Busy {
            retry_after_secs: self.wait.as_secs().max(1),
        };
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            // The semaphore is never closed.
            .map_err(|_| busy())?;
        let now = self.load.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.load.peak.fetch_max(now, Ordering::Relaxed);
        Ok(Slot {
            load: self.load.clone(),
            _permit: permit,
        })
    }

    pub fn load(&self) -> WorkLoad {
        WorkLoad {
            in_flight: self.load.in_flight.load(Ordering::Relaxed),
            peak: self.load.peak.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_the_bound_and_refuses_after_the_wait() {
        let work = BoundedWork::new(2, Duration::from_millis(50));
        let first = work.acquire().await.unwrap();
        let _second = work.acquire().await.unwrap();
        assert_eq!(
            work.load(),
            WorkLoad {
                in_flight: 2,
                peak: 2
            }
        );
        // A third waits, then gives up (Retry-After is at least a second).
        let busy = work.acquire().await.err().expect("no slot");
        assert_eq!(busy.retry_after_secs, 1);
        drop(first);
        assert!(work.acquire().await.is_ok());
        assert_eq!(work.load().peak, 2);
    }
}
