//! The HTTPS transport: `POST /api/v1/frames` per spooled frame (oldest
//! first), gate settings polled from `GET /api/v1/device/settings`, status
//! posted to `POST /api/v1/device/status`.
//!
//! Answers: 2xx = stored (the frame is deleted); 401 = the token is wrong
//! *now* (it may be rotated in its file): keep the frame, reload, back off;
//! 408/429/503 = later (`Retry-After`); 507 = the account's storage quota is
//! full: keep the frame, back off, count it (`quota_refusals`, in the status
//! too); 409 `seq_conflict` = the cloud stored another frame under this seq:
//! ask `GET /api/v1/device/seq`, renumber the frame above it and send it
//! again (also asked once at start, so an emptied spool resumes above the
//! cloud's seqs); 400/409/413/415/422 *with the cloud's
//! JSON error body* = refused for good (deleted and counted); anything else
//! (5xx, no answer, or a 4xx that did not come from lastseen: a proxy's 413,
//! a firewall's 403, a 404 from a typo in `http_url`) = keep the frame, back
//! off and try again, counted as a transport error.

use std::time::Duration;

use chrono::SecondsFormat;
use lastseen_shared::GateSettings;
use rand::SeedableRng;
use reqwest::StatusCode;
use serde::Deserialize;

use super::{Context, SEQ_CONFLICT};
use crate::Shutdown;
use crate::config::CloudConfig;
use crate::counters::Counters;
use crate::delivery::DeliveryOutcome;
use crate::spool::SpooledFrame;

#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("cannot read the CA file {path}: {message}")]
    Ca { path: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Idle pooled connections are dropped well before a server closes them
/// (the cloud's `http_idle_timeout_secs` is 60 s, nginx's keepalive 75 s), so
/// the agent does not reuse a connection the server is about to close.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The client for every request to the cloud, trusting `ca_file` if set.
pub fn client(cloud: &CloudConfig) -> Result<reqwest::Client, HttpsError> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(cloud.request_timeout_secs))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(path) = &cloud.ca_file {
        let ca_error = |message: String| HttpsError::Ca {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_error(e.to_string()))?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| HttpsError::Client(e.to_string()))
}

/// What the cloud's answer to a frame means for the spooled copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Stored,
    /// Another frame has this seq in the cloud: renumber and send again.
    SeqConflict,
    Refused {
        status: u16,
        code: String,
    },
    Later(Option<Duration>),
    /// 507: the account's storage quota is full. Not this frame's fault: it
    /// stays spooled until the owner makes room.
    OverQuota,
    Unauthorized,
    Failed(String),
}

/// `code` is the `error.code` of the cloud's JSON error body, when the
/// answer had one. Only the cloud's own refusals of *this frame* delete it: a
/// frame is worth more than a retry.
pub fn classify(status: StatusCode, retry_after: Option<&str>, code: Option<String>) -> Reply {
    match (status.as_u16(), code) {
        (200..=299, _) => Reply::Stored,
        (401, _) => Reply::Unauthorized,
        (507, _) => Reply::OverQuota,
        (408 | 429 | 503, _) => Reply::Later(
            retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        ),
        (409, Some(code)) if code == SEQ_CONFLICT => Reply::SeqConflict,
        (status @ (400 | 409 | 413 | 415 | 422), Some(code)) => Reply::Refused { status, code },
        (status @ 400..=499, Some(code)) => Reply::Failed(format!(
            "HTTP {status} `{code}`: the cloud refuses this device's requests, not the frame (check http_url)"
        )),
        (status @ 400..=499, None) => Reply::Failed(format!(
            "HTTP {status} without lastseen's error body: not the cloud's answer (check http_url, or a proxy's limits)"
        )),
        (other, _) => Reply::Failed(format!("HTTP {other}")),
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
}

pub struct Https {
    ctx: Context,
    client: reqwest::Client,
    base: String,
}

impl Https {
    pub fn new(ctx: Context) -> Result<Self, HttpsError> {
        let client = client(&ctx.cloud)?;
        let base = format!("{}/api/v1", ctx.cloud.http_url.trim_end_matches('/'));
        Ok(Self { ctx, client, base })
    }

    /// Sends spooled frames until shutdown, after learning where the
    /// device's seqs stand in the cloud.
    #[tracing::instrument(name = "https_transport", skip_all, fields(device = %self.ctx.device))]
    pub async fn send_frames(&self, mut shutdown: Shutdown) {
        let ctx = &self.ctx;
        let mut backoff = ctx.backoff();
        let mut rng = rand::rngs::StdRng::from_os_rng();
        // Not fatal: a cloud that cannot answer now answers the first
        // seq_conflict later.
        if let Err(error) = self.learn_highest_seq().await {
            tracing::warn!(%error, "cannot ask the cloud for the device's highest seq");
        }
        while !shutdown.is_set() {
            let Some(&seq) = ctx.spool.seqs_after(None, 1).first() else {
                tokio::select! {
                    () = ctx.spool.added() => continue,
                    () = shutdown.wait() => return,
                }
            };
            let frame = match ctx.spool.read(seq).await {
                Ok(Some(frame)) => frame,
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%error, seq, "cannot read the spool");
                    if !ctx.pause(backoff.next_delay(&mut rng), &mut shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let reply = self.post(&frame).await;
            let delay = match reply {
                Reply::Stored | Reply::Refused { .. } => {
                    let outcome = if let Reply::Refused { status, code } = reply {
                        Counters::inc(&ctx.counters.rejected);
                        tracing::warn!(seq, status, code, "the cloud refused a frame for good");
                        DeliveryOutcome::Rejected { code }
                    } else {
                        Counters::inc(&ctx.counters.acked);
                        DeliveryOutcome::Acked
                    };
                    match ctx.spool.remove(vec![seq]).await {
                        Ok(removed) if !removed.is_empty() => {
                            ctx.deliveries.report(seq, frame.captured_at, outcome);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(%error, seq, "cannot remove a confirmed frame");
                        }
                    }
                    backoff.reset();
                    continue;
                }
                Reply::SeqConflict => match self.learn_highest_seq().await {
                    Ok(()) => {
                        if let Some(new_seq) = ctx.renumber(seq).await {
                            tracing::warn!(
                                seq,
                                new_seq,
                                "the cloud has another frame under this seq: sent again under a new one"
                            );
                        }
                        backoff.reset();
                        continue;
                    }
                    Err(error) => {
                        Counters::inc(&ctx.counters.transport_errors);
                        tracing::warn!(seq, %error, "seq conflict, and the cloud's highest seq is unknown: the frame waits");
                        backoff.next_delay(&mut rng)
                    }
                },
                Reply::Later(after) => {
                    tracing::debug!(seq, ?after, "the cloud is busy");
                    after.unwrap_or_else(|| backoff.next_delay(&mut rng))
                }
                Reply::OverQuota => {
                    Counters::inc(&ctx.counters.quota_refusals);
                    tracing::warn!(
                        seq,
                        "the account's storage quota is full (507); frames stay in the spool"
                    );
                    backoff.next_delay(&mut rng)
                }
                Reply::Unauthorized => {
                    Counters::inc(&ctx.counters.transport_errors);
                    if !ctx.token.reload() {
                        tracing::error!(
                            seq,
                            "the cloud refuses the device token (401); frames stay in the spool"
                        );
                    }
                    backoff.next_delay(&mut rng)
                }
                Reply::Failed(error) => {
                    Counters::inc(&ctx.counters.transport_errors);
                    tracing::warn!(seq, %error, "sending a frame failed");
                    backoff.next_delay(&mut rng)
                }
            };
            if !ctx.pause(delay, &mut shutdown).await {
                return;
            }
        }
    }

    async fn post(&self, frame: &SpooledFrame) -> Reply {
        let ctx = &self.ctx;
        Counters::inc(&ctx.counters.sent);
        Counters::add(&ctx.counters.bytes_sent, frame.jpeg.len() as u64);
        let response = self
            .client
            .post(format!("{}/frames", self.base))
            .bearer_auth(ctx.token.get().expose())
            .header("content-type", "image/jpeg")
            .header("x-frame-seq", frame.seq.to_string())
            .header(
                "x-captured-at",
                frame
                    .captured_at
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            )
            .body(frame.jpeg.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(error) => return Reply::Failed(error.without_url().to_string()),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let code = if status.is_client_error() {
            response
                .json::<ErrorBody>()
                .await
                .ok()
                .map(|b| b.error.code)
        } else {
            None
        };
        classify(status, retry_after.as_deref(), code)
    }

    /// Asks the cloud for the device's highest stored seq and numbers the
    /// next frames above it.
    async fn learn_highest_seq(&self) -> Result<(), String> {
        #[derive(Deserialize)]
        struct SeqState {
            highest_seq: Option<u64>,
        }
        let state: SeqState = self
            .client
            .get(format!("{}/device/seq", self.base))
            .bearer_auth(self.ctx.token.get().expose())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.without_url().to_string())?
            .json()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if let Some(highest_seq) = state.highest_seq {
            self.ctx.continue_above(highest_seq).await;
        }
        Ok(())
    }

    /// Fetches gate settings every `settings_poll_secs` (first at start).
    #[tracing::instrument(name = "https_settings", skip_all)]
    pub async fn poll_settings(&self, mut shutdown: Shutdown) {
        let every = self.ctx.cloud.settings_poll_secs;
        if every == 0 {
            return;
        }
        loop {
            match self.fetch_settings().await {
                Ok(Some(settings)) => self.ctx.apply_settings(settings, "https"),
                Ok(None) => {}
                Err(error) => tracing::debug!(%error, "cannot fetch gate settings"),
            }
            if !self
                .ctx
                .pause(Duration::from_secs(every), &mut shutdown)
                .await
            {
                return;
            }
        }
    }

    async fn fetch_settings(&self) -> Result<Option<GateSettings>, reqwest::Error> {
        let response = self
            .client
            .get(format!("{}/device/settings", self.base))
            .bearer_auth(self.ctx.token.get().expose())
            .send()
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            // A cloud without remote settings: keep the local ones.
            return Ok(None);
        }
        response.error_for_status()?.json().await.map(Some)
    }

    /// Posts the status message every `status_interval_secs` (first at start).
    #[tracing::instrument(name = "https_status", skip_all)]
    pub async fn post_status(&self, mut shutdown: Shutdown) {
        let every = Duration::from_secs(self.ctx.cloud.status_interval_secs);
        loop {
            let outcome = self
                .client
                .post(format!("{}/device/status", self.base))
                .bearer_auth(self.ctx.token.get().expose())
                .json(&self.ctx.status())
                .send()
                .await
                .and_then(|r| r.error_for_status());
            if let Err(error) = outcome {
                tracing::debug!(error = %error.without_url(), "cannot post the status");
            }
            if !self.ctx.pause(every, &mut shutdown).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_the_clouds_answers_as_the_contract_says() {
        assert_eq!(classify(StatusCode::CREATED, None, None), Reply::Stored);
        assert_eq!(classify(StatusCode::OK, None, None), Reply::Stored);
        assert_eq!(
            classify(StatusCode::SERVICE_UNAVAILABLE, Some("3"), None),
            Reply::Later(Some(Duration::from_secs(3)))
        );
        assert_eq!(
            classify(StatusCode::TOO_MANY_REQUESTS, None, None),
            Reply::Later(None)
        );
        assert_eq!(
            classify(StatusCode::REQUEST_TIMEOUT, Some("x"), None),
            Reply::Later(None)
        );
        assert_eq!(
            classify(StatusCode::UNAUTHORIZED, None, None),
            Reply::Unauthorized
        );
        assert_eq!(
            classify(
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some("unprocessable_image".into())
            ),
            Reply::Refused {
                status: 422,
                code: "unprocessable_image".into()
            }
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, None),
            Reply::Failed(_)
        ));
        // Over quota: kept, with or without the cloud's body.
        assert_eq!(
            classify(
                StatusCode::INSUFFICIENT_STORAGE,
                None,
                Some("quota_exceeded".into())
            ),
            Reply::OverQuota
        );
        assert_eq!(
            classify(StatusCode::INSUFFICIENT_STORAGE, None, None),
            Reply::OverQuota
        );
        // Not a refusal of the frame: it goes again under another seq.
        assert_eq!(
            classify(StatusCode::CONFLICT, None, Some("seq_conflict".into())),
            Reply::SeqConflict
        );
    }

    #[test]
    fn keeps_frames_on_refusals_that_are_not_the_clouds_verdict_on_the_frame() {
        // A proxy's body limit, a firewall, a captive portal: no JSON error body.
        for status in [400, 403, 404, 409, 413, 415, 422] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, None, None), Reply::Failed(_)),
                "{status}"
            );
        }
        // The cloud itself, but about the URL or the device, not the frame.
        for (status, code) in [
            (404, "not_found"),
            (403, "forbidden"),
            (405, "method_not_allowed"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(
                matches!(classify(status, None, Some(code.into())), Reply::Failed(_)),
                "{status}"
            );
        }
        assert_eq!(
            classify(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                Some("payload_too_large".into())
            ),
            Reply::Refused {
                status: 413,
                code: "payload_too_large".into()
            }
        );
    }
}
