//! One connection's state for its watchdog: which phase it is in and since
//! when, fed by the socket ([`TrackedIo`]) and by the request handling
//! (`handle` in the parent, [`Responding`]).

use std::io;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{OpenConnection, ServeLimits};

/// Once the server has answered and shut its side down (a `Connection:
/// close`, an early 401), what the client still sends is read and dropped, at
/// most `bytes` and for at most `time`, before the socket is closed: closing
/// with unread data makes the kernel send a reset, and a client still
/// uploading (hyper's, the agent's) would see a broken pipe instead of the
/// answer that explains why. Dropped bytes cost a 16 KiB buffer, not the body.
#[derive(Clone, Copy, Debug)]
pub struct Drain {
    pub bytes: usize,
    pub time: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for a request head, idle since `since`; `head_from` is when
    /// its first byte came (the connection's start for its first request).
    Waiting {
        since: Instant,
        head_from: Option<Instant>,
    },
    /// A handler has the request (and reads its body under the rate floor).
    Handling,
    /// The response is being written; `last_write` is the latest progress.
    Responding { last_write: Instant },
}

/// Why the watchdog closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expired {
    Header,
    Idle,
    Send,
}

pub(super) struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Self {
            phase: Mutex::new(Phase::Waiting {
                since: now,
                head_from: Some(now),
            }),
            changed: Notify::new(),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Phase) -> bool) {
        let notify = change(&mut self.phase.lock().unwrap_or_else(PoisonError::into_inner));
        if notify {
            self.changed.notify_one();
        }
    }

    fn read_some(&self) {
        self.update(|phase| match phase {
            Phase::Waiting {
                head_from: head_from @ None,
                ..
            } => {
                *head_from = Some(Instant::now());
                true
            }
            _ => false,
        });
    }

    fn wrote_some(&self) {
        self.update(|phase| {
            if let Phase::Responding { last_write } = phase {
                *last_write = Instant::now();
            }
            false
        });
    }

    pub(super) fn request_started(&self) {
        self.update(|phase| {
            *phase = Phase::Handling;
            true
        });
    }

    pub(super) fn response_started(&self) {
        self.update(|phase| {
            *phase = Phase::Responding {
                last_write: Instant::now(),
            };
            true
        });
    }

    fn response_done(&self) {
        self.update(|phase| {
            *phase = Phase::Waiting {
                since: Instant::now(),
                head_from: None,
            };
            true
        });
    }

    /// Resolves when the phase changed (the deadline may have moved).
    pub(super) async fn changed(&self) {
        self.changed.notified().await;
    }

    fn limit(&self, limits: &ServeLimits) -> Option<(Instant, Expired)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Waiting {
                head_from: Some(from),
                ..
            } => Some((from + limits.header_timeout, Expired::Header)),
            Phase::Waiting { since, .. } => Some((since + limits.idle_timeout, Expired::Idle)),
            Phase::Handling => None,
            Phase::Responding { last_write } => {
                Some((last_write + limits.idle_timeout, Expired::Send))
            }
        }
    }

    pub(super) fn deadline(&self, limits: &ServeLimits) -> Option<Instant> {
        self.limit(limits).map(|(at, _)| at)
    }

    /// The limit that has passed, if one has.
    pub(super) fn expired(&self, limits: &ServeLimits) -> Option<Expired> {
        self.limit(limits)
            .filter(|(at, _)| *at <= Instant::now())
            .map(|(_, why)| why)
    }
}

/// The socket, reporting progress to [`Activity`] and holding the
/// connection's slot until it is closed.
pub(super) struct TrackedIo {
    stream: Option<TcpStream>,
    activity: std::sync::Arc<Activity>,
    open: Option<OpenConnection>,
    shut_down: bool,
    drain: Drain,
}

impl TrackedIo {
    pub(super) fn new(
        stream: TcpStream,
        activity: std::sync::Arc<Activity>,
        open: OpenConnection,
        drain: Drain,
    ) -> Self {
        Self {
            stream: Some(stream),
            activity,
            open: Some(open),
            shut_down: false,
            drain,
        }
    }

    fn stream(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.stream
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = std::task::ready!(self.stream()?.poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        Poll::Ready(result)
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = std::task::ready!(self.stream()?.poll_write(cx, buf));
        if matches!(written, Ok(n) if n > 0) {
            self.activity.wrote_some();
        }
        Poll::Ready(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = std::task::ready!(self.stream()?.poll_write_vectored(cx, bufs));
        if matches!(written, Ok(n) if n > 0) {
            self.activity.wrote_some();
        }
        Poll::Ready(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream()?.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = std::task::ready!(self.stream()?.poll_shutdown(cx));
        self.shut_down = true;
        Poll::Ready(result)
    }
}

impl Drop for TrackedIo {
    fn drop(&mut self) {
        if !self.shut_down {
            return;
        }
        let (Some(mut stream), open) = (self.stream.take(), self.open.take()) else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Drain { bytes, time } = self.drain;
        runtime.spawn(async move {
            let _open = open;
            let mut scratch = vec![0_u8; 16 * 1024];
            let mut left = bytes;
            let _ = tokio::time::timeout(time, async {
                while left > 0 {
                    match stream.read(&mut scratch).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
        });
    }
}

/// A response body that tells [`Activity`] when it has been sent (hyper
/// drops it then).
pub(super) struct Responding<B> {
    inner: B,
    activity: std::sync::Arc<Activity>,
}

impl<B> Responding<B> {
    pub(super) fn new(inner: B, activity: std::sync::Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<B> Drop for Responding<B> {
    fn drop(&mut self) {
        self.activity.response_done();
    }
}

impl<B: Body + Unpin> Body for Responding<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
