//! The body-rate floor: a request body must keep arriving at
//! `http_min_body_bytes_per_sec`, measured over each `http_body_rate_window_secs`
//! from the handler's first read, else the read fails with [`SlowBody`] and
//! the request is answered 408.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// A request body arrived slower than `http_min_body_bytes_per_sec`.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct SlowBody;

/// What became of a body, for the response: whether the floor failed it,
/// and whether it was read to its end.
#[derive(Clone, Default)]
pub(super) struct Tripped(Arc<[AtomicBool; 2]>);

impl Tripped {
    pub(super) fn is_tripped(&self) -> bool {
        self.0[0].load(Ordering::Relaxed)
    }

    pub(super) fn is_read(&self) -> bool {
        self.0[1].load(Ordering::Relaxed)
    }
}

pub(super) struct MinRate {
    inner: Incoming,
    /// Bytes each window must bring.
    per_window: u64,
    window: Duration,
    received: u64,
    /// End of the current window; set at the first read.
    deadline: Option<Pin<Box<Sleep>>>,
    tripped: Tripped,
}

impl MinRate {
    pub(super) fn new(inner: Incoming, bytes_per_sec: u64, window: Duration) -> Self {
        let tripped = Tripped::default();
        tripped.0[1].store(inner.is_end_stream(), Ordering::Relaxed);
        Self {
            inner,
            per_window: bytes_per_sec.saturating_mul(window.as_secs().max(1)),
            window,
            received: 0,
            deadline: None,
            tripped,
        }
    }

    pub(super) fn tripped(&self) -> Tripped {
        self.tripped.clone()
    }

    /// Checks the window if it has ended: `Err` when too little came in it,
    /// else the next window starts.
    fn check_window(&mut self, cx: &mut Context<'_>) -> Result<(), SlowBody> {
        let window = self.window;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(window)));
        // Ready means the window is over; the loop re-arms and registers the
        // next one with `cx`.
        while deadline.as_mut().poll(cx).is_ready() {
            if self.received < self.per_window {
                self.tripped.0[0].store(true, Ordering::Relaxed);
                return Err(SlowBody);
            }
            self.received = 0;
            deadline.as_mut().reset(Instant::now() + window);
        }
        Ok(())
    }
}

impl Body for MinRate {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.tripped.is_tripped() {
            return Poll::Ready(Some(Err(SlowBody.into())));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received = self.received.saturating_add(data.len() as u64);
                }
                if self.inner.is_end_stream() {
                    self.tripped.0[1].store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => {
                self.tripped.0[1].store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Pending => match self.check_window(cx) {
                Ok(()) => Poll::Pending,
                Err(slow) => Poll::Ready(Some(Err(slow.into()))),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
