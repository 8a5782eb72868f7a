//! Staging from the api's side: every request's documents go into an upload of their own
//! with a server-chosen name (`{upload}/{field}`); the client's filename is never a path. An
//! [`Upload`] is removed when dropped unless it was handed to the queue, so a rejected,
//! failed or abandoned request leaves nothing behind. Where the files live (a directory or
//! an S3 bucket) is `intake_shared::staging`'s business.

use std::sync::Arc;

use intake_shared::staging::{StagedWriter, StagingError, StagingStore};
use uuid::Uuid;

#[derive(Clone)]
pub struct Staging {
    store: Arc<dyn StagingStore>,
}

impl Staging {
    pub fn new(store: Arc<dyn StagingStore>) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Arc<dyn StagingStore> {
        &self.store
    }

    /// Starts a new upload.
    pub fn begin(&self) -> Upload {
        Upload {
            name: Uuid::new_v4().simple().to_string(),
            store: self.store.clone(),
            keep: false,
        }
    }
}

/// One request's staged files.
pub struct Upload {
    name: String,
    store: Arc<dyn StagingStore>,
    keep: bool,
}

impl Upload {
    /// The upload's name, the first part of its files' paths.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of one of this upload's files, as the job refers to it.
    pub fn path(&self, field: &str) -> String {
        format!("{}/{field}", self.name)
    }

    pub async fn create(&self, field: &str) -> Result<Box<dyn StagedWriter>, StagingError> {
        self.store.create(&self.path(field)).await
    }

    /// The files now belong to an enqueued job; the worker removes them when done.
    pub fn keep(mut self) {
        self.keep = true;
    }

    /// Removes the upload now and waits for it.
    pub async fn discard(mut self) {
        self.keep = true;
        if let Err(err) = self.store.remove_upload(&self.name).await {
            tracing::error!(error = %err, upload = %self.name, "staged upload could not be removed");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.keep || self.store.remove_upload_now(&self.name) {
            return;
        }
        // A store that cannot remove synchronously (S3): remove in the background. If even
        // that fails, the staging janitor removes the orphan after its grace period.
        let (store, name) = (self.store.clone(), std::mem::take(&mut self.name));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = store.remove_upload(&name).await {
                    tracing::warn!(error = %err, upload = %name, "staged upload not removed");
                }
            });
        }
    }
}
