//! Cloudinary's Upload API over plain HTTP (docs/contract.md §8): a signed `multipart/form-data`
//! POST with a deterministic `public_id` and `overwrite=false`, so a repeated upload returns
//! the asset the first one made. Answers are classified here, once: `400`/`401`/`403`/`404`/
//! `413`/`415` refuse the document, `420` and `429` ask us to slow down, `5xx`, timeouts and
//! connection errors are worth another try.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha1::{Digest, Sha1};

use super::store::{DocumentStore, DocumentUpload, StoreError, StoredDocument};

/// What `CLOUDINARY_URL=cloudinary://API_KEY:API_SECRET@CLOUD_NAME` holds.
#[derive(Clone)]
pub struct Credentials {
    pub api_key: String,
    pub api_secret: SecretString,
    pub cloud_name: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("api_secret", &"[redacted]")
            .field("cloud_name", &self.cloud_name)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME")]
pub struct BadCloudinaryUrl;

impl Credentials {
    pub fn from_url(url: &SecretString) -> Result<Self, BadCloudinaryUrl> {
        let rest = url
            .expose_secret()
            .strip_prefix("cloudinary://")
            .ok_or(BadCloudinaryUrl)?;
        let (auth, cloud) = rest.rsplit_once('@').ok_or(BadCloudinaryUrl)?;
        let (key, secret) = auth.split_once(':').ok_or(BadCloudinaryUrl)?;
        let cloud = cloud.split(['/', '?']).next().unwrap_or_default();
        if key.is_empty() || secret.is_empty() || cloud.is_empty() {
            return Err(BadCloudinaryUrl);
        }
        Ok(Self {
            api_key: key.to_owned(),
            api_secret: SecretString::from(secret.to_owned()),
            cloud_name: cloud.to_owned(),
        })
    }
}

/// Cloudinary's request signature: the SHA-1, in lowercase hex, of the signed parameters
/// (all but `file`, `cloud_name`, `resource_type` and `api_key`) sorted by name and joined
/// as `name=value` with `&`, followed by the API secret.
pub fn sign(params: &[(&str, &str)], secret: &str) -> String {
    let mut signed: Vec<&(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !["file", "cloud_name", "resource_type", "api_key"].contains(k))
        .collect();
    signed.sort_by_key(|(k, _)| *k);
    let joined = signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(Sha1::digest(format!("{joined}{secret}").as_bytes()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_cloudinarys_documented_example() {
        // From Cloudinary's "Generating authentication signatures" documentation.
        let signature = sign(
            &[
                ("eager", "w_400,h_300,c_pad|w_260,h_200,c_crop"),
                ("public_id", "sample_image"),
                ("timestamp", "1315060510"),
                ("api_key", "1234"),
                ("file", "ignored"),
            ],
            "abcd",
        );
        assert_eq!(signature, "bfd09f95f331f558cbd1320e67aa8d488770583e");
    }

    #[test]
    fn credentials_come_from_the_url() {
        let creds = Credentials::from_url(&SecretString::from("cloudinary://key:sec:ret@demo"))
            .expect("valid");
        assert_eq!(creds.api_key, "key");
        assert_eq!(creds.api_secret.expose_secret(), "sec:ret");
        assert_eq!(creds.cloud_name, "demo");
        assert!(!format!("{creds:?}").contains("sec:ret"));
        assert!(Credentials::from_url(&SecretString::from("https://x")).is_err());
    }
}
