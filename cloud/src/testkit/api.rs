//! [`Api`]: a small typed client of the public API (`/api/v1`), used as a
//! user's app would use it: register, log in, add a device (with its token),
//! set a device's gates. Each call requires the status the API documents for
//! success, so a caller learns at once when an answer changes.

use std::time::Duration;

use lastseen_shared::{DeviceId, GateSettings};
use reqwest::{RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// How long one call may take before it fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a refusal's body an error quotes.
const QUOTED_BODY_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ApiCallError {
    #[error("{what}: {source}")]
    Request {
        what: String,
        source: reqwest::Error,
    },
    #[error("{what}: HTTP {status}: {body}")]
    Refused {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: unexpected answer: {detail}")]
    Answer { what: String, detail: String },
}

/// A user with a session.
#[derive(Clone, Debug)]
pub struct User {
    pub username: String,
    /// The access token of the session.
    pub token: String,
}

/// A client of one cloud's `/api/v1`.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// A client of the cloud at `http_url` (no `/api/v1`), with a timeout on every call.
    pub fn new(http_url: &str) -> Result<Self, ApiCallError> {
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(|source| ApiCallError::Request {
                what: "building the HTTP client".into(),
                source,
            })?;
        Ok(Self::with_client(client, http_url))
    }

    /// A client of the cloud at `http_url` through `client`, as it is configured.
    pub fn with_client(client: reqwest::Client, http_url: &str) -> Self {
        Self {
            client,
            base: format!("{}/api/v1", http_url.trim_end_matches('/')),
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The URL of `path` under `/api/v1`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request`, requires a 2xx and decodes its JSON.
    pub async fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> Result<T, ApiCallError> {
        answer(what, request, |status| status.is_success()).await
    }

    /// Registers `username`.
    pub async fn register(&self, username: &str, password: &str) -> Result<(), ApiCallError> {
        let request = self
            .client
            .post(self.url("/auth/register"))
            .json(&json!({"username": username, "password": password}));
        let _: serde_json::Value = answer("registering a user", request, |status| {
            status == StatusCode::CREATED
        })
        .await?;
        Ok(())
    }

    /// Logs `username` in.
    pub async fn login(&self, username: &str, password: &str) -> Result<User, ApiCallError> {
        #[derive(Deserialize)]
        struct Login {
            access_token: String,
        }
        let request = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": username, "password": password}));
        let login: Login = answer("logging in", request, |status| status == StatusCode::OK).await?;
        Ok(User {
            username: username.to_owned(),
            token: login.access_token,
        })
    }

    /// Registers `username` and logs them in.
    pub async fn user(&self, username: &str, password: &str) -> Result<User, ApiCallError> {
        self.register(username, password).await?;
        self.login(username, password).await
    }

    /// Adds a device of `kind` (the API's default when `None`) to the user
    /// of `owner_token`; its id and token.
    pub async fn device(
        &self,
        owner_token: &str,
        name: &str,
        kind: Option<&str>,
    ) -> Result<(DeviceId, String), ApiCallError> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
            token: String,
        }
        let mut body = json!({"name": name});
        if let Some(kind) = kind {
            body["kind"] = kind.into();
        }
        let request = self
            .client
            .post(self.url("/devices"))
            .bearer_auth(owner_token)
            .json(&body);
        let what = "adding a device";
        let created: Created =
            answer(what, request, |status| status == StatusCode::CREATED).await?;
        let id = DeviceId::parse(&created.id).map_err(|e| ApiCallError::Answer {
            what: what.into(),
            detail: e.to_string(),
        })?;
        Ok((id, created.token))
    }

    /// Sets a device's gates. The cloud is the authority on them: it hands
    /// them to the agent (retained config topic, or the HTTPS poll).
    pub async fn set_gates(
        &self,
        owner_token: &str,
        device: DeviceId,
        gates: &GateSettings,
    ) -> Result<GateSettings, ApiCallError> {
        let request = self
            .client
            .put(self.url(&format!("/devices/{device}/settings")))
            .bearer_auth(owner_token)
            .json(gates);
        answer("setting a device's gates", request, |status| {
            status == StatusCode::OK
        })
        .await
    }
}

/// Sends `request`, requires a status that `wanted` accepts and decodes its JSON.
async fn answer<T: DeserializeOwned>(
    what: &str,
    request: RequestBuilder,
    wanted: impl Fn(StatusCode) -> bool,
) -> Result<T, ApiCallError> {
    let response = request
        .send()
        .await
        .map_err(|source| ApiCallError::Request {
            what: what.to_owned(),
            source: source.without_url(),
        })?;
    let status = response.status();
    if !wanted(status) {
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(QUOTED_BODY_CHARS)
            .collect();
        return Err(ApiCallError::Refused {
            what: what.to_owned(),
            status: status.as_u16(),
            body,
        });
    }
    response
        .json()
        .await
        .map_err(|source| ApiCallError::Answer {
            what: what.to_owned(),
            detail: source.to_string(),
        })
}
