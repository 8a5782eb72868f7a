//! Cloudinary's Upload API over plain HTTP (docs/contract.md §8): a signed `multipart/form-data`
//! POST with a deterministic `public_id` and `overwrite=false`, so a repeated upload returns
//! the asset the first one made. Answers are classified here, once: `400`/`401`/`403`/`404`/
//! `413`/`415` refuse the document, `420` and `429` ask us to slow down, `5xx`, timeouts and
//! connection errors are worth another try. Every asset is uploaded as `type=authenticated`:
//! Cloudinary delivers it only through a signed URL, so its `secure_url` opens nothing on its
//! own; the admin service hands out short-lived private download URLs instead.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use intake_shared::cloudinary::{Credentials, sign};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::store::{DocumentStore, DocumentUpload, StoreError, StoredDocument};

/// The delivery type of every upload (a signed parameter): never `upload`, which anyone with
/// the URL could fetch.
pub const DELIVERY_TYPE: &str = "authenticated";

pub struct Cloudinary {
    http: reqwest::Client,
    upload_url: String,
    credentials: Credentials,
}

#[derive(Deserialize)]
struct UploadAnswer {
    public_id: String,
    secure_url: String,
    bytes: u64,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

impl Cloudinary {
    pub fn new(
        api_base: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        intake_shared::tls::install_ring_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            upload_url: format!(
                "{}/v1_1/{}/auto/upload",
                api_base.trim_end_matches('/'),
                credentials.cloud_name
            ),
            credentials,
        })
    }

    async fn upload(&self, doc: &DocumentUpload) -> Result<StoredDocument, StoreError> {
        let bytes = doc.content.to_vec();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let signature = sign(
            &[
                ("overwrite", "false"),
                ("public_id", &doc.public_id),
                ("timestamp", &timestamp),
                ("type", DELIVERY_TYPE),
            ],
            self.credentials.api_secret.expose_secret(),
        );
        let file = reqwest::multipart::Part::bytes(bytes)
            .file_name(format!(
                "{}.{}",
                doc.kind.field(),
                doc.content_type.extension()
            ))
            .mime_str(doc.content_type.mime())
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("api_key", self.credentials.api_key.clone())
            .text("timestamp", timestamp)
            .text("public_id", doc.public_id.clone())
            .text("overwrite", "false")
            .text("type", DELIVERY_TYPE)
            .text("signature", signature);
        let response = self
            .http
            .post(&self.upload_url)
            .multipart(form)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(&e)))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(describe(&e)))?;
        if status == 200 {
            let answer: UploadAnswer = serde_json::from_slice(&body)
                .map_err(|e| StoreError::Unavailable(format!("unreadable success answer: {e}")))?;
            return Ok(StoredDocument {
                kind: doc.kind,
                public_id: answer.public_id,
                secure_url: answer.secure_url,
                content_type: doc.content_type,
                bytes: answer.bytes,
                sha256: doc.sha256.clone(),
            });
        }
        let message = serde_json::from_slice::<ErrorAnswer>(&body)
            .map(|e| e.error.message)
            .unwrap_or_else(|_| format!("HTTP {status}"));
        Err(match status {
            400 | 401 | 403 | 404 | 413 | 415 => StoreError::Rejected(message),
            420 | 429 => StoreError::RateLimited(message),
            _ => StoreError::Unavailable(format!("HTTP {status}: {message}")),
        })
    }
}

/// A reqwest error in words, without the URL (it names our cloud).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        err.without_url_ref().to_string()
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "<cloudinary>");
        }
        text
    }
}

impl DocumentStore for Cloudinary {
    fn name(&self) -> &'static str {
        "cloudinary"
    }

    fn store<'a>(
        &'a self,
        doc: &'a DocumentUpload,
    ) -> BoxFuture<'a, Result<StoredDocument, StoreError>> {
        self.upload(doc).boxed()
    }
}
