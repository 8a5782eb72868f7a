//! The staging area: where the api puts uploaded documents and the workers (and the admin
//! service) find them. A local directory by default; an S3-compatible bucket when api and
//! workers run on different hosts. Paths are `{upload}/{field}`, both chosen by the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};

use crate::config::StagingSettings;
use unix_millis::UnixMillis;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StagingError {
    #[error("staged file not found")]
    NotFound,
    #[error("staging unavailable: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for StagingError {
    fn from(err: std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound
        } else {
            Self::Unavailable(err.to_string())
        }
    }
}

impl From<object_store::Error> for StagingError {
    fn from(err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// One upload directory and how long ago it was last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUpload {
    pub name: String,
    pub age: Duration,
}

/// Writes one staged file as it streams in.
pub trait StagedWriter: Send {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>>;
    /// The file is complete: make it visible under its path.
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>>;
    /// The file is not wanted: leave nothing of it.
    fn abort(self: Box<Self>) -> BoxFuture<'static, ()>;
}

pub trait StagingStore: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Makes the store usable (creates the directory); called at start-up.
    fn prepare(&self) -> BoxFuture<'_, Result<(), StagingError>>;
    fn create<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>>;
    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>>;
    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>>;
    /// Removes an upload and everything in it; removing what is gone is not an error.
    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>>;
    /// Removes an upload without waiting, where the store can (a local directory); `false`
    /// means the caller must use [`Self::remove_upload`].
    fn remove_upload_now(&self, upload: &str) -> bool;
    fn uploads(&self) -> BoxFuture<'_, Result<Vec<StagedUpload>, StagingError>>;
}

/// The staging store the settings choose.
pub fn from_settings(settings: &StagingSettings) -> Result<Arc<dyn StagingStore>, StagingError> {
    match &settings.s3_bucket {
        Some(bucket) => {
            // object_store's HTTP client (reqwest 0.13, built without a TLS provider of its
            // own) takes rustls' process default; ring is the one every other client here
            // uses. An error means one is installed already, which is as good.
            crate::tls::install_ring_provider();
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(&settings.s3_region);
            if let (Some(id), Some(secret)) =
                (&settings.s3_access_key_id, &settings.s3_secret_access_key)
            {
                use secrecy::ExposeSecret;
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret.expose_secret());
            }
            if let Some(endpoint) = &settings.s3_endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_virtual_hosted_style_request(false);
            }
            let store = builder.build()?;
            Ok(Arc::new(S3Staging {
                store: Arc::new(store),
                prefix: settings.s3_prefix.trim_matches('/').to_owned(),
            }))
        }
        None => Ok(Arc::new(LocalStaging::new(settings.dir.clone()))),
    }
}

/// A directory on this host (the default).
pub struct LocalStaging {
    root: PathBuf,
}

impl LocalStaging {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Joins a staged path under the root, refusing anything but plain names.
    fn path(&self, path: &str) -> Result<PathBuf, StagingError> {
        let relative = std::path::Path::new(path);
        if relative
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(StagingError::NotFound);
        }
        Ok(self.root.join(relative))
    }
}

/// Bytes a local writer gathers before it writes them out. A typical document (a photo or
/// a short PDF) fits, so it costs one trip to the blocking pool (create, write, rename);
/// a larger one is written in pieces of at most this size, so an upload holds no more than
/// this in memory.
const LOCAL_WRITE_CHUNK: usize = 128 * 1024;

struct LocalWriter {
    partial: PathBuf,
    target: PathBuf,
    /// The open file, once the first piece was written.
    file: Option<std::fs::File>,
    /// Whether a write to the partial file was attempted (it may exist even if that write
    /// failed, so an abort must remove it).
    touched: bool,
    pending: Vec<u8>,
}

impl LocalWriter {
    /// Writes what is pending on the blocking pool, creating the file (and its directory)
    /// on the first call.
    async fn flush_pending(&mut self) -> Result<(), StagingError> {
        let pending = std::mem::take(&mut self.pending);
        let (file, partial) = (self.file.take(), self.partial.clone());
        self.touched = true;
        let file = blocking(move || append(file, &partial, &pending)).await?;
        self.file = Some(file);
        Ok(())
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StagingError> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??)
}

/// Writes `bytes` to the open partial file, or to a new one (and its directory).
fn append(
    file: Option<std::fs::File>,
    partial: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let mut file = match file {
        Some(file) => file,
        None => match std::fs::File::create(partial) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = partial.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::File::create(partial)?
            }
            other => other?,
        },
    };
    file.write_all(bytes)?;
    Ok(file)
}

impl StagedWriter for LocalWriter {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            if !self.pending.is_empty() && self.pending.len() + chunk.len() > LOCAL_WRITE_CHUNK {
                self.flush_pending().await?;
            }
            self.pending.extend_from_slice(chunk);
            if self.pending.len() >= LOCAL_WRITE_CHUNK {
                self.flush_pending().await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>> {
        let this = *self;
        async move {
            blocking(move || {
                drop(append(this.file, &this.partial, &this.pending)?);
                std::fs::rename(&this.partial, &this.target)
            })
            .await
        }
        .boxed()
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        let this = *self;
        async move {
            drop(this.file);
            if this.touched {
                let _ = tokio::fs::remove_file(&this.partial).await;
            }
        }
        .boxed()
    }
}

impl StagingStore for LocalStaging {
    fn name(&self) -> &'static str {
        "local"
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StagingError>> {
        async move { Ok(tokio::fs::create_dir_all(&self.root).await?) }.boxed()
    }

    fn create<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>> {
        async move {
            // Nothing touches the disk until the first piece is written (or the file is
            // finished): a document that is refused early leaves nothing to remove.
            let target = self.path(path)?;
            Ok(Box::new(LocalWriter {
                partial: target.with_extension("part"),
                target,
                file: None,
                touched: false,
                pending: Vec::new(),
            }) as Box<dyn StagedWriter>)
        }
        .boxed()
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move { Ok(Bytes::from(tokio::fs::read(self.path(path)?).await?)) }.boxed()
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>> {
        async move {
            match tokio::fs::metadata(self.path(path)?).await {
                Ok(meta) => Ok(meta.is_file()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err.into()),
            }
        }
        .boxed()
    }

    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            match tokio::fs::remove_dir_all(self.path(upload)?).await {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
                _ => Ok(()),
            }
        }
        .boxed()
    }

    fn remove_upload_now(&self, upload: &str) -> bool {
        if let Ok(path) = self.path(upload)
            && let Err(err) = std::fs::remove_dir_all(&path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(error = %err, dir = %path.display(), "staged upload could not be removed");
        }
        true
    }

    fn uploads(&self) -> BoxFuture<'_, Result<Vec<StagedUpload>, StagingError>> {
        async move {
            let mut entries = tokio::fs::read_dir(&self.root).await?;
            let now = SystemTime::now();
            let mut uploads = Vec::new();
            while let Some(entry) = entries.next_entry().await? {
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if meta.is_dir() {
                    let age = meta
                        .modified()
                        .ok()
                        .and_then(|m| now.duration_since(m).ok())
                        .unwrap_or_default();
                    uploads.push(StagedUpload { name, age });
                }
            }
            Ok(uploads)
        }
        .boxed()
    }
}

/// An S3-compatible bucket, through the `object_store` crate. Uploads stream in parts; a
/// document (at most 5 MiB) is one part.
pub struct S3Staging {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Staging {
    fn key(&self, path: &str) -> ObjectPath {
        ObjectPath::from(format!("{}/{path}", self.prefix))
    }
}

struct S3Writer {
    upload: WriteMultipart,
}

impl StagedWriter for S3Writer {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            self.upload.wait_for_capacity(4).await?;
            self.upload.write(chunk);
            Ok(())
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>> {
        async move {
            self.upload.finish().await?;
            Ok(())
        }
        .boxed()
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        async move {
            let _ = self.upload.abort().await;
        }
        .boxed()
    }
}

impl StagingStore for S3Staging {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StagingError>> {
        async { Ok(()) }.boxed()
    }

    fn create<'a>(
        &'a self,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>> {
        async move {
            let upload = self.store.put_multipart(&self.key(path)).await?;
            Ok(Box::new(S3Writer {
                upload: WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024),
            }) as Box<dyn StagedWriter>)
        }
        .boxed()
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move { Ok(self.store.get(&self.key(path)).await?.bytes().await?) }.boxed()
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>> {
        async move {
            match self.store.head(&self.key(path)).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(err) => Err(err.into()),
            }
        }
        .boxed()
    }

    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            let prefix = self.key(upload);
            let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
            for object in objects {
                match self.store.delete(&object.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Ok(())
        }
        .boxed()
    }

    fn remove_upload_now(&self, _upload: &str) -> bool {
        false
    }

    fn uploads(&self) -> BoxFuture<'_, Result<Vec<StagedUpload>, StagingError>> {
        async move {
            let root = ObjectPath::from(self.prefix.clone());
            let mut newest: std::collections::BTreeMap<String, UnixMillis> = Default::default();
            let mut listing = self.store.list(Some(&root));
            while let Some(object) = listing.next().await {
                let object = object?;
                let Some(upload) = object
                    .location
                    .prefix_match(&root)
                    .and_then(|mut parts| parts.next())
                    .map(|p| p.as_ref().to_owned())
                else {
                    continue;
                };
                let modified = UnixMillis::from(object.last_modified.timestamp_millis());
                let entry = newest.entry(upload).or_insert(modified);
                *entry = (*entry).max(modified);
            }
            let now = UnixMillis::now();
            Ok(newest
                .into_iter()
                .map(|(name, modified)| StagedUpload {
                    name,
                    age: now.since(modified),
                })
                .collect())
        }
        .boxed()
    }
}

/// Milliseconds since the Unix epoch: enough clock to age uploads by.
mod unix_millis {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub struct UnixMillis(i64);

    impl From<i64> for UnixMillis {
        fn from(millis: i64) -> Self {
            Self(millis)
        }
    }

    impl UnixMillis {
        pub fn now() -> Self {
            Self(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .unwrap_or(0),
            )
        }

        pub fn since(self, earlier: UnixMillis) -> Duration {
            Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The S3 client is built without a TLS provider of its own (no aws-lc); building one
    /// for an `https://` endpoint must find ring installed rather than panic, and a request
    /// that cannot connect is an error, not a crash.
    #[tokio::test]
    async fn an_s3_store_over_https_builds_with_ring_and_fails_cleanly_when_unreachable() {
        let settings = StagingSettings {
            s3_bucket: Some("intake-staging".into()),
            s3_endpoint: Some("https://127.0.0.1:9".into()),
            s3_access_key_id: Some("testing".into()),
            s3_secret_access_key: Some(secrecy::SecretString::from("testing")),
            ..StagingSettings::default()
        };
        let store = match from_settings(&settings) {
            Ok(store) => store,
            Err(err) => panic!("the S3 store did not build: {err}"),
        };
        assert_eq!(store.name(), "s3");
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            store.exists("upload/payment_receipt"),
        )
        .await;
        assert!(
            matches!(probe, Ok(Err(_))),
            "an unreachable endpoint is an error"
        );
    }
}
