//! Staging from the api's side: every request's documents go, one after another, into one
//! staged object of its own with a server-chosen name; the client's filename is never a
//! path. An [`Upload`] is removed when dropped unless it was handed to the queue, so a
//! rejected, failed or abandoned request leaves nothing behind. Where the object lives (a
//! directory or an S3 bucket) is `intake_shared::staging`'s business.

use std::sync::Arc;

use intake_shared::staging::{Durability, StagedWriter, StagingError, StagingStore};
use uuid::Uuid;

#[derive(Clone)]
pub struct Staging {
    store: Arc<dyn StagingStore>,
    durability: Durability,
}

impl Staging {
    pub fn new(store: Arc<dyn StagingStore>, durability: Durability) -> Self {
        Self { store, durability }
    }

    pub fn store(&self) -> &Arc<dyn StagingStore> {
        &self.store
    }

    /// Starts a new upload.
    pub fn begin(&self) -> Upload {
        Upload {
            name: Uuid::new_v4().simple().to_string(),
            store: self.store.clone(),
            durability: self.durability,
            writer: None,
            written: 0,
            touched: false,
            keep: false,
        }
    }
}

/// One request's staged object.
pub struct Upload {
    name: String,
    store: Arc<dyn StagingStore>,
    durability: Durability,
    /// Open from the first byte written until [`Upload::finish`].
    writer: Option<Box<dyn StagedWriter>>,
    /// Bytes written so far: where the next document starts.
    written: u64,
    /// Whether anything may have been stored under the name.
    touched: bool,
    keep: bool,
}

impl Upload {
    /// The upload's name: its object's path, as the job refers to it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the next byte written goes in the object.
    pub fn offset(&self) -> u64 {
        self.written
    }

    /// Appends `chunk` to the object, creating it on the first call.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StagingError> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            slot => {
                self.touched = true;
                slot.insert(self.store.create(&self.name).await?)
            }
        };
        writer.write(chunk).await?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Every document is written: closes the object and, with strict durability, waits
    /// until it is on stable storage.
    pub async fn finish(&mut self) -> Result<(), StagingError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        writer.finish().await?;
        if self.durability == Durability::Strict {
            self.store.sync().await?;
        }
        Ok(())
    }

    /// The object now belongs to an enqueued job; the worker removes it when done.
    pub fn keep(mut self) {
        self.keep = true;
    }

    /// Removes the object now and waits for it.
    pub async fn discard(mut self) {
        self.keep = true;
        if let Some(writer) = self.writer.take() {
            writer.abort().await;
        }
        if !self.touched {
            return;
        }
        if let Err(err) = self.store.remove_upload(&self.name).await {
            tracing::error!(error = %err, upload = %self.name, "staged upload could not be removed");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.keep || !self.touched {
            return;
        }
        // An open writer is dropped with the upload (a local file is closed; an S3 upload
        // never completes), then whatever was stored is removed.
        drop(self.writer.take());
        if self.store.remove_upload_now(&self.name) {
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
