//! The HTTP listener: our own accept loop around hyper's HTTP/1 connection,
//! so that every connection is bounded. `axum::serve` sets no timer and
//! no cap; here
//!
//! - at most `http_max_connections` connections are open at once; one more is
//!   answered `503` with `Connection: close` at once, without reading it, and
//!   counted (`lastseen_http_connections_refused_total`), so the connections
//!   already open keep being served;
//! - a request head must be complete `http_header_timeout_secs` after the
//!   connection opened or after its first byte arrived, else the connection is
//!   closed;
//! - a connection idle between requests (or whose client stops reading a
//!   response) for `http_idle_timeout_secs` is closed;
//! - a request body must keep arriving at `http_min_body_bytes_per_sec`,
//!   measured over every `http_body_rate_window_secs`, else the request fails
//!   with 408 and the connection is closed (`body`).
//!
//! Each close is counted in `lastseen_http_connections_timed_out_total{reason}`.
//! Handlers still get `ConnectInfo<SocketAddr>`; a shutdown stops accepting and
//! lets the requests in flight finish.

mod body;
mod config;
mod conn;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

pub use body::SlowBody;
pub use config::{ServeConfig, ServeLimits};
pub use conn::Drain;
use conn::{Activity, Expired, TrackedIo};

use crate::metrics::{ConnectionClose, Metrics};

/// What a connection past `http_max_connections` gets before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: 81\r\n\r\n{\"error\":{\"code\":\"overloaded\",\"message\":\"too many connections; try again later\"}}";

/// The answer to a request whose body came slower than the floor, in the
/// API's error shape.
fn slow_body() -> Response {
    let body = serde_json::json!({"error": {
        "code": "request_timeout",
        "message": format!("{SlowBody}: send it at least at http_min_body_bytes_per_sec"),
    }});
    (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response()
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for the
/// connections still open to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Dropping `stop_tx` tells every connection to finish; each holds a
    // `done_rx` until it is gone, so `done_tx.closed()` waits for all.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.http_connection_refused();
            refuse(stream);
            continue;
        };
        // Small responses crawl without it: Nagle holds them back until the
        // client's delayed ACK.
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            limits: limits.clone(),
            metrics: metrics.clone(),
            peer,
        };
        tokio::spawn(connection.run(stream, slot, stop_rx.clone(), done_rx.clone()));
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
}

/// Out of file descriptors and the like: wait a little instead of spinning.
async fn accept_failed(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "cannot accept an HTTP connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Best effort: the 503 goes out if the socket takes it now, then the
/// connection is closed without reading anything.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
}

struct Connection {
    app: Router,
    limits: Arc<ServeLimits>,
    metrics: Arc<Metrics>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(
        self,
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        mut stop: watch::Receiver<()>,
        _done: watch::Receiver<()>,
    ) {
        let activity = Arc::new(Activity::new());
        let open = OpenConnection::new(slot, self.metrics.clone());
        let io = TrackedIo::new(stream, activity.clone(), open, self.limits.drain);
        let Connection {
            app,
            limits,
            metrics,
            peer,
        } = self;
        let handler = Handler {
            app,
            limits: limits.clone(),
            activity: activity.clone(),
            metrics: metrics.clone(),
            peer,
        };
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            handler.clone().handle(request)
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The watchdog below enforces the header timeout; hyper's own timer
        // is a backstop for a head that is never completed.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout + limits.idle_timeout)
            .keep_alive(true);
        let mut connection = std::pin::pin!(
            builder
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades()
        );
        let mut stopping = false;
        loop {
            let deadline = activity.deadline(&limits);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
                    }
                    return;
                }
                _ = stop.changed(), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = activity.changed() => {}
                () = sleep_until(deadline) => {
                    if let Some(expired) = activity.expired(&limits) {
                        let reason = match expired {
                            Expired::Header => ConnectionClose::Header,
                            Expired::Idle => ConnectionClose::Idle,
                            Expired::Send => ConnectionClose::Send,
                        };
                        metrics.http_connection_timed_out(reason);
                        tracing::debug!(%peer, ?reason, "HTTP connection timed out");
                        // Dropping the connection closes the socket.
                        return;
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What each request of one connection goes through.
#[derive(Clone)]
struct Handler {
    app: Router,
    limits: Arc<ServeLimits>,
    activity: Arc<Activity>,
    metrics: Arc<Metrics>,
    peer: SocketAddr,
}

impl Handler {
    /// One request through the router: the body under the rate floor, the
    /// peer address as `ConnectInfo`, the connection's phases kept up to date.
    async fn handle(self, request: Request<Incoming>) -> Result<Response, Infallible> {
        self.activity.request_started();
        let (parts, incoming) = request.into_parts();
        let floor = body::MinRate::new(
            incoming,
            self.limits.min_body_bytes_per_sec,
            self.limits.body_rate_window,
        );
        let body = floor.tripped();
        let mut request = Request::from_parts(parts, axum::body::Body::new(floor));
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let Ok(mut response) = self.app.oneshot(request).await;
        if body.is_tripped() {
            // Whatever the handler made of the failed read, the client is
            // told why.
            self.metrics
                .http_connection_timed_out(ConnectionClose::Body);
            response = slow_body();
        }
        if !body.is_read() {
            // The rest of the body is not read (an early 401, a 408): the
            // connection cannot carry another request, and the client is
            // told so.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.activity.response_started();
        let activity = self.activity;
        Ok(response.map(|body| axum::body::Body::new(conn::Responding::new(body, activity))))
    }
}

/// Holds a connection slot and the `open` gauge for as long as the socket
/// lives (a WebSocket too, after its upgrade).
pub(crate) struct OpenConnection {
    _slot: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl OpenConnection {
    fn new(slot: OwnedSemaphorePermit, metrics: Arc<Metrics>) -> Self {
        metrics.http_connection_opened();
        Self {
            _slot: slot,
            metrics,
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics.http_connection_closed();
    }
}
