//! Where support staff open a team's documents (docs/contract.md §8, §15). Documents are
//! personal data and no URL that opens one lasts: with Cloudinary, a document's `url` is a
//! private download URL signed with the API secret that expires after [`URL_TTL`] (the
//! assets themselves are `authenticated`, so their `secure_url` opens nothing); with the local
//! media backend, it is this service's own route, behind a bearer token with the `support`
//! role. Only a `support` token or above is shown a `url` at all.

use std::path::{Component, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake_shared::cloudinary::{BadCloudinaryUrl, Credentials, sign};
use intake_shared::config::CloudinarySettings;
use intake_shared::domain::DocumentType;
use intake_shared::errors::ProblemCode;
use intake_shared::http::problem::Problem;
use intake_store::pg::registrations::SavedDocument;
use intake_store::pg::teams::{self, TeamDocument};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::auth::{Actor, Role, Support};
use crate::error::AdminError;
use crate::state::AdminState;

/// How long a private download URL opens its document: long enough to click it, short
/// enough that a URL copied into a ticket or a log is dead by the time anyone reads it.
pub const URL_TTL: Duration = Duration::from_secs(300);

/// The resource type the worker's assets are filed under. It uploads to `auto`, and
/// Cloudinary files PNG, JPEG and PDF alike as `image` (a PDF is an image to it).
pub const RESOURCE_TYPE: &str = "image";

/// The delivery type the worker uploads with (worker/src/backends/cloudinary.rs).
pub const DELIVERY_TYPE: &str = "authenticated";

/// The least role that is shown a document's `url` or may fetch one from this service.
pub const DOCUMENT_ROLE: Role = Role::Support;

/// Makes the URLs that open documents, for the document store the settings choose.
pub struct Documents {
    backend: Backend,
}

enum Backend {
    Cloudinary {
        /// `{api_base}/v1_1/{cloud}/{RESOURCE_TYPE}/download`.
        endpoint: String,
        credentials: Credentials,
    },
    Local {
        media_dir: PathBuf,
    },
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Cloudinary { credentials, .. } => f
                .debug_struct("Documents")
                .field("cloudinary", credentials)
                .finish(),
            Backend::Local { media_dir } => f
                .debug_struct("Documents")
                .field("media_dir", media_dir)
                .finish(),
        }
    }
}

impl Documents {
    /// Cloudinary when `CLOUDINARY_URL` is set (the worker uploads there), the local media
    /// directory otherwise; as the worker chooses.
    pub fn from_settings(settings: &CloudinarySettings) -> Result<Self, BadCloudinaryUrl> {
        let backend = match &settings.url {
            Some(url) => {
                let credentials = Credentials::from_url(url)?;
                Backend::Cloudinary {
                    endpoint: format!(
                        "{}/v1_1/{}/{RESOURCE_TYPE}/download",
                        settings.api_base.trim_end_matches('/'),
                        credentials.cloud_name
                    ),
                    credentials,
                }
            }
            None => Backend::Local {
                media_dir: settings.media_dir.clone(),
            },
        };
        Ok(Self { backend })
    }

    /// The URL that opens one of a team's documents, made now. `None` for a content type
    /// the worker never stores.
    pub fn url(
        &self,
        team_id: &str,
        field: &str,
        public_id: &str,
        content_type: &str,
    ) -> Option<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        self.url_at(team_id, field, public_id, content_type, now)
    }

    fn url_at(
        &self,
        team_id: &str,
        field: &str,
        public_id: &str,
        content_type: &str,
        now: u64,
    ) -> Option<String> {
        let format = DocumentType::from_mime(content_type)?.extension();
        Some(match &self.backend {
            Backend::Cloudinary {
                endpoint,
                credentials,
            } => {
                let timestamp = now.to_string();
                let expires_at = (now + URL_TTL.as_secs()).to_string();
                let params = [
                    ("public_id", public_id),
                    ("format", format),
                    ("type", DELIVERY_TYPE),
                    ("expires_at", expires_at.as_str()),
                    ("timestamp", timestamp.as_str()),
                ];
                let signature = sign(&params, credentials.api_secret.expose_secret());
                let query = params
                    .iter()
                    .chain([
                        &("api_key", credentials.api_key.as_str()),
                        &("signature", signature.as_str()),
                    ])
                    .map(|(k, v)| format!("{k}={}", query_escape(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                format!("{endpoint}?{query}")
            }
            Backend::Local { .. } => format!(
                "/admin/v1/teams/{}/documents/{}",
                query_escape(team_id),
                query_escape(field)
            ),
        })
    }

    /// Where the local media backend keeps a document (`{media_dir}/{public_id}.{ext}`, as the
    /// worker writes it); `None` with Cloudinary, or for an id that would leave the directory.
    fn local_file(&self, public_id: &str, content_type: &str) -> Option<PathBuf> {
        let Backend::Local { media_dir } = &self.backend else {
            return None;
        };
        let format = DocumentType::from_mime(content_type)?.extension();
        let relative = PathBuf::from(format!("{public_id}.{format}"));
        relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| media_dir.join(relative))
    }
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One document as the admin API shows it: what it is to anyone, where to open it only to
/// `support` and above (the URL is not even made for a lesser role).
fn with_url(mut shown: Value, actor: &Actor, url: impl FnOnce() -> Option<String>) -> Value {
    if actor.role >= DOCUMENT_ROLE
        && let (Some(fields), Some(url)) = (shown.as_object_mut(), url())
    {
        fields.insert("url".to_owned(), Value::String(url));
    }
    shown
}

/// A team's documents in the team detail (§15): `field`, `content_type`, `bytes`, and `url`.
pub fn team_documents_json(
    documents: &Documents,
    actor: &Actor,
    team_id: &str,
    stored: &[TeamDocument],
) -> Vec<Value> {
    stored
        .iter()
        .map(|d| {
            let shown = json!({
                "field": d.field,
                "content_type": d.content_type,
                "bytes": d.bytes,
            });
            with_url(shown, actor, || {
                documents.url(team_id, &d.field, &d.public_id, &d.content_type)
            })
        })
        .collect()
}

/// A saved registration's documents in the support view (§14): `kind`, `content_type`,
/// `bytes`, and `url`.
pub fn saved_documents_json(
    documents: &Documents,
    actor: &Actor,
    team_id: &str,
    stored: &[SavedDocument],
) -> Vec<Value> {
    stored
        .iter()
        .map(|d| {
            let shown = json!({
                "kind": d.kind,
                "content_type": d.content_type,
                "bytes": d.bytes,
            });
            with_url(shown, actor, || {
                documents.url(team_id, &d.kind, &d.public_id, &d.content_type)
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// No such document on this team, or it is not kept here (Cloudinary holds it).
    #[error("this team has no such document here")]
    NoSuchDocument,
    #[error("cannot read the document from the media directory")]
    File(#[source] std::io::Error),
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        match self {
            Self::Admin(err) => err.into_response(),
            Self::NoSuchDocument => Problem::new(
                StatusCode::NOT_FOUND,
                ProblemCode::NotFound,
                self.to_string(),
            )
            .into_response(),
            Self::File(ref err) if err.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    error = &self as &dyn std::error::Error,
                    "document row without its file"
                );
                Problem::new(
                    StatusCode::NOT_FOUND,
                    ProblemCode::NotFound,
                    ServeError::NoSuchDocument.to_string(),
                )
                .into_response()
            }
            Self::File(_) => {
                tracing::error!(error = &self as &dyn std::error::Error, "internal error");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        }
    }
}

/// `GET /admin/v1/teams/{team_id}/documents/{field}`: the document's bytes from the local
/// media directory, with its content type. With Cloudinary configured the documents are not
/// here, and every document is `404` (its `url` is a private download URL instead).
#[tracing::instrument(skip(state, actor), fields(actor = %actor.name))]
pub async fn serve(
    State(state): State<AdminState>,
    Support(actor): Support,
    Path((team_id, field)): Path<(String, String)>,
) -> Result<Response, ServeError> {
    let team = teams::find(&state.pool, &team_id)
        .await
        .map_err(AdminError::from)?
        .ok_or(AdminError::TeamNotFound)?;
    let document = team
        .documents
        .iter()
        .find(|d| d.field == field)
        .ok_or(ServeError::NoSuchDocument)?;
    let path = state
        .documents
        .local_file(&document.public_id, &document.content_type)
        .ok_or(ServeError::NoSuchDocument)?;
    // At most 5 MiB (the api refuses larger documents), so read whole.
    let bytes = tokio::fs::read(&path).await.map_err(ServeError::File)?;
    let filename = format!(
        "{field}.{}",
        path.extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    let content_type = HeaderValue::from_str(&document.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn cloudinary() -> Documents {
        Documents::from_settings(&CloudinarySettings {
            url: Some(SecretString::from("cloudinary://1234:abcd@demo")),
            api_base: "https://api.example/".into(),
            ..CloudinarySettings::default()
        })
        .expect("valid")
    }

    fn query(url: &str) -> Vec<(String, String)> {
        let (_, query) = url.split_once('?').expect("query");
        query
            .split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').expect("pair");
                (k.to_owned(), v.replace("%2F", "/"))
            })
            .collect()
    }

    #[test]
    fn a_cloudinary_url_is_a_signed_private_download_that_expires_in_five_minutes() {
        let url = cloudinary()
            .url_at(
                "ICCT-0001",
                "payment_receipt",
                "intake/0b6f/payment_receipt",
                "application/pdf",
                1_700_000_000,
            )
            .expect("url");
        assert!(
            url.starts_with("https://api.example/v1_1/demo/image/download?"),
            "{url}"
        );
        let params = query(&url);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("public_id"), Some("intake/0b6f/payment_receipt"));
        assert_eq!(get("format"), Some("pdf"));
        assert_eq!(get("type"), Some("authenticated"));
        assert_eq!(get("timestamp"), Some("1700000000"));
        assert_eq!(get("expires_at"), Some("1700000300"));
        assert_eq!(get("api_key"), Some("1234"));
        let signed: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k != "signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(get("signature"), Some(sign(&signed, "abcd").as_str()));
        assert!(!url.contains("abcd"), "the secret stays out: {url}");
    }

    #[test]
    fn with_local_media_the_url_is_the_admin_route_and_the_file_stays_in_the_directory() {
        let local = Documents::from_settings(&CloudinarySettings {
            url: None,
            media_dir: "/srv/media".into(),
            ..CloudinarySettings::default()
        })
        .expect("valid");
        assert_eq!(
            local.url(
                "ICCT-0001",
                "pastor_letter",
                "intake/x/pastor_letter",
                "image/jpeg"
            ),
            Some("/admin/v1/teams/ICCT-0001/documents/pastor_letter".to_owned())
        );
        assert_eq!(
            local.local_file("intake/x/pastor_letter", "image/jpeg"),
            Some(PathBuf::from("/srv/media/intake/x/pastor_letter.jpg"))
        );
        assert_eq!(local.local_file("../etc/passwd", "image/png"), None);
        assert_eq!(local.local_file("/etc/passwd", "image/png"), None);
        assert_eq!(cloudinary().local_file("intake/x/p", "image/png"), None);
    }

    #[test]
    fn an_unknown_content_type_has_no_url() {
        assert_eq!(cloudinary().url("T", "f", "p", "text/html"), None);
    }
}
