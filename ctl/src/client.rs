//! The admin API over HTTP, with its answers turned into errors a script can branch on.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// How long to wait for a connection, at most (a shorter `--timeout` shortens it too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Refused(String),
    /// `409 CONFLICT`: what the call was based on changed meanwhile (a team's review
    /// version). Refused like any other; kept apart so a command can say what to do next.
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Usage(String),
    #[error("not authorised: {0}")]
    Unauthorized(String),
    /// No answer at all: no connection, or none within the timeout.
    #[error("cannot reach the admin service: {0}")]
    Unreachable(String),
    /// The service answered with a 5xx: it is there, but failed the call (its Redis or
    /// Postgres may be down). Kept apart from `Unreachable` so nobody goes looking for a
    /// network fault that is not there.
    #[error("the admin service failed: {0}")]
    Server(String),
    #[error("{0}")]
    Partial(String),
    /// A file of ours could not be written (an export's target, say).
    #[error("{0}")]
    File(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_)
            | Self::Stale(_)
            | Self::Server(_)
            | Self::Partial(_)
            | Self::File(_) => 1,
            Self::Usage(_) => 2,
            Self::Unauthorized(_) => 3,
            Self::Unreachable(_) => 4,
        }
    }
}

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
    timeout: Duration,
}

impl AdminClient {
    /// `timeout` bounds each whole request, answer included, so a hung service cannot hang
    /// a script.
    pub fn new(base: &str, token: Option<&str>, timeout: Duration) -> Result<Self, CtlError> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            CtlError::Usage("a token is needed: --token or INTAKE_ADMIN_TOKEN".into())
        })?;
        // reqwest is built without a rustls crypto provider (its default is aws-lc): ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| CtlError::Unreachable(chain(&e)))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            timeout,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, CtlError> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        self.answer(request.send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        self.answer(request.send().await).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        let request = self
            .http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        self.answer(request.send().await).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CtlError> {
        let request = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        self.answer(request.send().await).await
    }

    /// A GET whose successful answer is not JSON but a body to read chunk by chunk (an
    /// export), so that it never has to be held whole. A refusal is read and classified as
    /// for any other call.
    pub async fn get_body(&self, path: &str) -> Result<reqwest::Response, CtlError> {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        Err(problem(status, &bytes))
    }

    async fn answer(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, CtlError> {
        let response = sent.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        // The body is read under the same timeout: a service that stalls mid-answer is as
        // unreachable as one that never answers.
        let bytes = response.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        }
        Err(problem(status, &bytes))
    }

    /// A call that got no whole answer: no connection, the timeout, or a body cut short.
    pub fn unreachable(&self, err: reqwest::Error) -> CtlError {
        if err.is_timeout() {
            return CtlError::Unreachable(if err.is_connect() {
                format!(
                    "no connection within {} s",
                    CONNECT_TIMEOUT.min(self.timeout).as_secs()
                )
            } else {
                format!("no answer within {} s (--timeout)", self.timeout.as_secs())
            });
        }
        CtlError::Unreachable(chain(&err.without_url()))
    }
}

/// A refusal's problem+json, as the error a script can branch on.
fn problem(status: StatusCode, body: &[u8]) -> CtlError {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
    let code = body["code"].as_str().unwrap_or("UNKNOWN").to_owned();
    match status {
        StatusCode::UNAUTHORIZED => CtlError::Unauthorized(detail),
        StatusCode::BAD_REQUEST => CtlError::Usage(format!("{code}: {detail}")),
        // The token is good, its role is not: the detail names the role needed.
        StatusCode::FORBIDDEN => CtlError::Refused(format!(
            "refused: this token's role does not allow that ({code}: {detail})"
        )),
        StatusCode::CONFLICT if code == "CONFLICT" => CtlError::Stale(format!("{code}: {detail}")),
        s if s.is_server_error() => CtlError::Server(format!("{s}: {code}: {detail}")),
        _ => CtlError::Refused(format!("{code}: {detail}")),
    }
}

/// An error and its causes on one line: reqwest's own message ("error sending request")
/// says nothing of why; its sources do ("Connection refused").
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
