//! Polls an HTTP(S) snapshot URL: what most IP cameras offer (one JPEG per GET).
//!
//! A snapshot is read up to `source.max_snapshot_bytes`: a larger
//! `Content-Length` is refused before the body is read, and a body without
//! one is read chunk by chunk and dropped as soon as it passes the limit, so
//! a broken or hostile camera cannot make the agent run out of memory.

use std::time::Duration;

use super::{FrameSource, SourceError, decode};
use crate::config::SourceConfig;
use crate::frame::Frame;

pub struct HttpSource {
    client: reqwest::Client,
    url: String,
    max_bytes: u64,
    runtime: tokio::runtime::Handle,
}

impl HttpSource {
    pub fn new(
        config: &SourceConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, SourceError> {
        let url = config
            .url
            .clone()
            .ok_or_else(|| SourceError::Config("source.url is required".to_owned()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .build()
            .map_err(|e| SourceError::Http(e.to_string()))?;
        Ok(Self {
            client,
            url,
            max_bytes: config.max_snapshot_bytes,
            runtime,
        })
    }

    async fn fetch(&self) -> Result<Vec<u8>, SourceError> {
        let http = |e: reqwest::Error| SourceError::Http(e.without_url().to_string());
        let too_large = SourceError::TooLarge {
            limit: self.max_bytes,
        };
        let mut response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(http)?;
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(http)? {
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl FrameSource for HttpSource {
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        // Called on the capture thread, never inside the async runtime.
        let bytes = self.runtime.block_on(self.fetch())?;
        decode(bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceKind;

    #[test]
    fn fetches_a_snapshot_from_a_real_http_server() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let jpeg = std::fs::read(crate::gate::testing::trace_dir().join("frame_0005.jpg")).unwrap();
        let served = jpeg.clone();
        let addr = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().route(
                "/snapshot.jpg",
                axum::routing::get(move || {
                    let body = served.clone();
                    async move { ([("content-type", "image/jpeg")], body) }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        });
        let config = SourceConfig {
            kind: SourceKind::Http,
            url: Some(format!("http://{addr}/snapshot.jpg")),
            ..SourceConfig::default()
        };
        let mut source = HttpSource::new(&config, runtime.handle().clone()).unwrap();
        let frame = source.next_frame().unwrap().unwrap();
        assert_eq!(frame.image.dimensions(), (640, 360));
        assert_eq!(frame.jpeg, Some(jpeg));
        let missing = SourceConfig {
            url: Some(format!("http://{addr}/nothing.jpg")),
            ..config
        };
        let mut source = HttpSource::new(&missing, runtime.handle().clone()).unwrap();
        assert!(matches!(source.next_frame(), Err(SourceError::Http(_))));
    }

    #[test]
    fn a_snapshot_over_the_cap_is_an_error_counted_and_the_capture_goes_on() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let jpeg = std::fs::read(crate::gate::testing::trace_dir().join("frame_0005.jpg")).unwrap();
        let size = jpeg.len() as u64;
        let served = jpeg.clone();
        let (addr, endless) = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().route(
                "/snapshot.jpg",
                axum::routing::get(move || {
                    let body = served.clone();
                    async move { ([("content-type", "image/jpeg")], body) }
                }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
            (addr, endless_camera().await)
        });
        let capped = |path: &str, max_snapshot_bytes: u64| SourceConfig {
            kind: SourceKind::Http,
            url: Some(format!("http://{addr}/{path}")),
            max_snapshot_bytes,
            ..SourceConfig::default()
        };

        // At the cap exactly: read.
        let mut source =
            HttpSource::new(&capped("snapshot.jpg", size), runtime.handle().clone()).unwrap();
        assert_eq!(source.next_frame().unwrap().unwrap().jpeg, Some(jpeg));
        // One byte under the size: refused on its Content-Length.
        let mut source =
            HttpSource::new(&capped("snapshot.jpg", size - 1), runtime.handle().clone()).unwrap();
        assert!(matches!(
            source.next_frame(),
            Err(SourceError::TooLarge { limit }) if limit == size - 1
        ));
        // Without a Content-Length: dropped once past the cap.
        let endless = SourceConfig {
            url: Some(format!("http://{endless}/snapshot.jpg")),
            ..capped("", 1 << 20)
        };
        let mut source = HttpSource::new(&endless, runtime.handle().clone()).unwrap();
        assert!(matches!(
            source.next_frame(),
            Err(SourceError::TooLarge { .. })
        ));

        // In the capture loop: counted, and the loop goes on (no crash).
        let source =
            HttpSource::new(&capped("snapshot.jpg", size - 1), runtime.handle().clone()).unwrap();
        let counters = std::sync::Arc::new(crate::counters::Counters::default());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (frames, _keep) = tokio::sync::mpsc::channel(4);
        let capture = {
            let (counters, stop) = (counters.clone(), stop.clone());
            std::thread::spawn(move || {
                super::super::capture(Box::new(source), 50.0, frames, counters, stop)
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while counters.snapshot()["snapshots_too_large"] < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                counters.snapshot()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        capture.join().unwrap();
        let counted = counters.snapshot();
        assert_eq!(counted["captured"], 0);
        assert!(counted["capture_errors"] >= counted["snapshots_too_large"]);
    }

    /// A camera that answers every request with a chunked body that never
    /// ends (no Content-Length), until the client hangs up.
    async fn endless_camera() -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: image/jpeg\r\ntransfer-encoding: chunked\r\n\r\n";
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    let mut chunk = b"10000\r\n".to_vec();
                    chunk.extend(std::iter::repeat_n(0xFFu8, 0x10000));
                    chunk.extend_from_slice(b"\r\n");
                    while socket.write_all(&chunk).await.is_ok() {}
                });
            }
        });
        addr
    }
}
