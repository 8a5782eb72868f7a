//! The local document store: documents copied into a media directory under their
//! `public_id`. It is the default when Cloudinary is not configured, and it keeps Cloudinary's
//! promise that storing an existing `public_id` returns the existing asset.

use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::store::{DocumentStore, DocumentUpload, StoreError, StoredDocument};

pub struct LocalMedia {
    root: PathBuf,
}

impl LocalMedia {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    async fn copy(&self, doc: &DocumentUpload) -> Result<StoredDocument, StoreError> {
        let target = self.root.join(format!(
            "{}.{}",
            doc.public_id,
            doc.content_type.extension()
        ));
        let url = || async {
            let absolute = tokio::fs::canonicalize(&target)
                .await
                .unwrap_or_else(|_| target.clone());
            format!("file://{}", absolute.display())
        };
        let stored = |bytes: u64, secure_url: String| StoredDocument {
            kind: doc.kind,
            public_id: doc.public_id.clone(),
            secure_url,
            content_type: doc.content_type,
            bytes,
            sha256: doc.sha256.clone(),
        };
        let unavailable =
            |e: std::io::Error| StoreError::Unavailable(format!("media directory: {e}"));
        if let Ok(meta) = tokio::fs::metadata(&target).await {
            return Ok(stored(meta.len(), url().await));
        }
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(unavailable)?;
        }
        let partial = target.with_extension(format!("{}.part", uuid::Uuid::new_v4().simple()));
        if let Err(err) = tokio::fs::write(&partial, &doc.content).await {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(unavailable(err));
        }
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(unavailable)?;
        Ok(stored(doc.content.len() as u64, url().await))
    }
}

impl DocumentStore for LocalMedia {
    fn name(&self) -> &'static str {
        "local-media"
    }

    fn store<'a>(
        &'a self,
        doc: &'a DocumentUpload,
    ) -> BoxFuture<'a, Result<StoredDocument, StoreError>> {
        self.copy(doc).boxed()
    }
}
