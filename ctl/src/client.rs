//! The admin API over HTTP, with its answers turned into errors a script can branch on.

use reqwest::StatusCode;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Usage(String),
    #[error("not authorised: {0}")]
    Unauthorized(String),
    #[error("cannot reach the admin service: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Partial(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Refused(_) | Self::Partial(_) => 1,
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
}

impl AdminClient {
    pub fn new(base: &str, token: Option<&str>) -> Result<Self, CtlError> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            CtlError::Usage("a token is needed: --token or INTAKE_ADMIN_TOKEN".into())
        })?;
        // reqwest is built without a rustls crypto provider (its default is aws-lc): ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value, CtlError> {
        let request = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        answer(request.send().await).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CtlError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        answer(request.send().await).await
    }
}

async fn answer(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Value, CtlError> {
    let response = sent.map_err(|e| CtlError::Unreachable(e.without_url().to_string()))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let detail = body["detail"].as_str().unwrap_or("no detail").to_owned();
    let code = body["code"].as_str().unwrap_or("UNKNOWN").to_owned();
    Err(match status {
        StatusCode::UNAUTHORIZED => CtlError::Unauthorized(detail),
        StatusCode::BAD_REQUEST => CtlError::Usage(format!("{code}: {detail}")),
        s if s.is_server_error() => CtlError::Unreachable(format!("{code}: {detail}")),
        _ => CtlError::Refused(format!("{code}: {detail}")),
    })
}
