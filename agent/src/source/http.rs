//! Polls an HTTP(S) snapshot URL: what most IP cameras offer (one JPEG per GET).

use std::time::Duration;

use super::{FrameSource, SourceError, decode};
use crate::config::SourceConfig;
use crate::frame::Frame;

pub struct HttpSource {
    client: reqwest::Client,
    url: String,
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
            runtime,
        })
    }

    async fn fetch(&self) -> Result<Vec<u8>, SourceError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| SourceError::Http(e.without_url().to_string()))?;
        let body = response
            .bytes()
            .await
            .map_err(|e| SourceError::Http(e.without_url().to_string()))?;
        Ok(body.to_vec())
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
}
