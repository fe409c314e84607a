//! The REST API's settings: body sizes, the client address behind proxies,
//! CORS, and what a client is told to wait when the service is full.

use lastseen_shared::Problems;
use serde::{Deserialize, Serialize};

use super::client_ip::IpBlock;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Largest accepted frame body.
    pub max_frame_bytes: usize,
    /// Largest accepted JSON body.
    pub max_json_bytes: usize,
    /// Seconds a client is told to wait (Retry-After) when the queue is full.
    pub retry_after_secs: u32,
    /// Header carrying the client address, appended by trusted proxies (e.g.
    /// `x-forwarded-for` from nginx); unset means the TCP peer address.
    pub client_ip_header: Option<String>,
    /// The proxies (addresses or CIDR blocks) whose `client_ip_header` is
    /// believed: the client is the right-most address that is not one of them.
    pub trusted_proxies: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS); empty is off.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_frame_bytes: 10 * 1024 * 1024,
            max_json_bytes: 64 * 1024,
            retry_after_secs: 1,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// [`HttpConfig`] with the proxies parsed, as the handlers use it.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    pub config: HttpConfig,
    pub trusted_proxies: Vec<IpBlock>,
}

impl HttpConfig {
    pub fn check(&self, problems: &mut Problems) {
        problems.check(
            self.max_frame_bytes >= 1024,
            "max_frame_bytes must be at least 1024",
        );
        problems.check(
            self.max_json_bytes >= 1024,
            "max_json_bytes must be at least 1024",
        );
        problems.check(
            self.client_ip_header
                .as_deref()
                .is_none_or(|h| axum::http::HeaderName::try_from(h).is_ok()),
            "client_ip_header must be a valid header name",
        );
        problems.check(
            self.client_ip_header.is_none() || !self.trusted_proxies.is_empty(),
            "client_ip_header needs trusted_proxies (the proxies that set it); any client could write it otherwise",
        );
        problems.check(
            self.trusted_proxies
                .iter()
                .all(|p| IpBlock::parse(p).is_some()),
            "trusted_proxies must be IP addresses or CIDR blocks, e.g. 10.0.0.0/8",
        );
        problems.check(
            self.cors_allowed_origins
                .iter()
                .all(|o| axum::http::HeaderValue::try_from(o.as_str()).is_ok()),
            "cors_allowed_origins must be origins such as https://example.com",
        );
    }

    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            config: self.clone(),
            trusted_proxies: self
                .trusted_proxies
                .iter()
                .filter_map(|p| IpBlock::parse(p))
                .collect(),
        }
    }
}
