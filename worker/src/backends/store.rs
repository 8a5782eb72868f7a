//! Where documents end up. A store is given a deterministic `public_id` per registration and
//! document; storing the same id twice must return the existing asset, not make a second.

use bytes::Bytes;
use futures::future::BoxFuture;
use intake_shared::domain::{DocumentKind, DocumentType};

/// One staged document to store.
#[derive(Debug, Clone)]
pub struct DocumentUpload {
    pub kind: DocumentKind,
    pub public_id: String,
    /// The document's content, read from staging.
    pub content: Bytes,
    pub content_type: DocumentType,
    pub sha256: String,
}

/// What the store keeps of one document (the save writes it to Postgres).
pub use intake_store::pg::registrations::StoredDocument;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store refused this document; sending it again will not help.
    #[error("the document store refused the document: {0}")]
    Rejected(String),
    /// The store asked us to slow down.
    #[error("the document store is rate limiting: {0}")]
    RateLimited(String),
    /// The store could not be reached or failed; another try may succeed.
    #[error("the document store is unavailable: {0}")]
    Unavailable(String),
    /// The staged file is gone.
    #[error("the staged document is missing")]
    Missing,
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited(_) | Self::Unavailable(_))
    }
}

pub trait DocumentStore: Send + Sync {
    /// A name for logs: which backend this is.
    fn name(&self) -> &'static str;

    fn store<'a>(
        &'a self,
        doc: &'a DocumentUpload,
    ) -> BoxFuture<'a, Result<StoredDocument, StoreError>>;
}
