//! An S3-compatible bucket, through the `object_store` crate: each submission one object,
//! `{prefix}/{upload}`, stored with one PUT when it is at most [`SINGLE_PUT_BYTES`] (every
//! typical submission) and as a multipart upload of such parts beyond. Old-layout uploads
//! are objects under `{prefix}/{upload}/`.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::unix_millis::UnixMillis;
use super::{StagedUpload, StagedWriter, StagingError, StagingStore, is_name, is_plain};
use crate::config::StagingSettings;

/// The largest object stored with one PUT, and the part size beyond it: what a request
/// holds in memory at most (S3 takes no part smaller than 5 MiB but the last).
pub const SINGLE_PUT_BYTES: usize = 5 * 1024 * 1024;

pub struct S3Staging {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl S3Staging {
    pub(super) fn from_settings(
        bucket: &str,
        settings: &StagingSettings,
    ) -> Result<Self, StagingError> {
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
        Ok(Self {
            store: Arc::new(builder.build()?),
            prefix: settings.s3_prefix.trim_matches('/').to_owned(),
        })
    }

    fn key(&self, path: &str) -> Result<ObjectPath, StagingError> {
        if !is_plain(path) {
            return Err(StagingError::NotFound);
        }
        Ok(ObjectPath::from(format!("{}/{path}", self.prefix)))
    }
}

struct S3Writer {
    upload: BufWriter,
}

impl StagedWriter for S3Writer {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            self.upload
                .write_all(chunk)
                .await
                .map_err(|e| StagingError::Unavailable(e.to_string()))
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>> {
        let mut this = *self;
        async move {
            this.upload
                .shutdown()
                .await
                .map_err(|e| StagingError::Unavailable(e.to_string()))
        }
        .boxed()
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        let mut this = *self;
        async move {
            let _ = this.upload.abort().await;
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
        upload: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>> {
        async move {
            if !is_name(upload) {
                return Err(StagingError::NotFound);
            }
            let upload =
                BufWriter::with_capacity(self.store.clone(), self.key(upload)?, SINGLE_PUT_BYTES);
            Ok(Box::new(S3Writer { upload }) as Box<dyn StagedWriter>)
        }
        .boxed()
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move { Ok(self.store.get(&self.key(path)?).await?.bytes().await?) }.boxed()
    }

    fn read_range<'a>(
        &'a self,
        path: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move {
            let key = self.key(path)?;
            let (wanted, end) = (range.end.saturating_sub(range.start), range.end);
            let content = match self.store.get_range(&key, range).await {
                Ok(content) => content,
                // S3 refuses a range that starts past the end (416) as it refuses anything
                // else; the object's size says whether it is short or the store failed.
                Err(err @ object_store::Error::Generic { .. }) => {
                    return match self.store.head(&key).await {
                        Ok(meta) if meta.size < end => Err(StagingError::Incomplete),
                        _ => Err(err.into()),
                    };
                }
                Err(err) => return Err(err.into()),
            };
            if content.len() as u64 != wanted {
                return Err(StagingError::Incomplete);
            }
            Ok(content)
        }
        .boxed()
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>> {
        async move {
            match self.store.head(&self.key(path)?).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(err) => Err(err.into()),
            }
        }
        .boxed()
    }

    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            let key = self.key(upload)?;
            // The object itself, and (old layout) everything under it.
            let mut objects = vec![key.clone()];
            let under: Vec<_> = self.store.list(Some(&key)).try_collect().await?;
            objects.extend(under.into_iter().map(|o| o.location).filter(|l| *l != key));
            for object in objects {
                match self.store.delete(&object).await {
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

    fn sync(&self) -> BoxFuture<'_, Result<(), StagingError>> {
        // A stored object is durable: S3 answers a PUT only once it is.
        async { Ok(()) }.boxed()
    }
}
