//! The staging area: where the api puts uploaded documents and the workers (and the admin
//! service) find them. A local directory by default; an S3-compatible bucket when api and
//! workers run on different hosts.
//!
//! Each submission is **one staged object**, named by the server (`{upload}`), holding its
//! documents one after another; the job carries each document's offset, length, type and
//! fingerprint (docs/contract.md §11). There is no directory per request and no rename: the
//! enqueued job is the commit point, and an object no job references is an orphan the
//! janitor removes after its grace. Registrations staged before this layout have a directory
//! per upload with one file per document (`{upload}/{field}`); they are still read, re-driven
//! and swept.

mod local;
mod s3;
pub mod sync;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::config::StagingSettings;
pub use local::LocalStaging;
pub use s3::S3Staging;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StagingError {
    #[error("staged file not found")]
    NotFound,
    /// The object is there but shorter than the job says: it was cut short (a host crash
    /// before its data reached the disk, with relaxed durability).
    #[error("staged object is incomplete")]
    Incomplete,
    #[error("staging unavailable: {0}")]
    Unavailable(String),
}

impl From<std::io::Error> for StagingError {
    fn from(err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound,
            std::io::ErrorKind::UnexpectedEof => Self::Incomplete,
            _ => Self::Unavailable(err.to_string()),
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

/// One upload (a submission's object, or an old-layout directory) and how long ago it was
/// last written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUpload {
    pub name: String,
    pub age: Duration,
}

/// Writes one staged object as it streams in, in place (nothing is renamed afterwards).
pub trait StagedWriter: Send {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>>;
    /// Every byte is written: close the object (for S3, store it).
    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>>;
    /// The object is not wanted: leave nothing of it.
    fn abort(self: Box<Self>) -> BoxFuture<'static, ()>;
}

pub trait StagingStore: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    /// Makes the store usable (creates the directory); called at start-up.
    fn prepare(&self) -> BoxFuture<'_, Result<(), StagingError>>;
    /// A new object `upload` (a plain name chosen by the server).
    fn create<'a>(
        &'a self,
        upload: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>>;
    /// A whole staged file (an old-layout document).
    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>>;
    /// Bytes `range` of a staged object; [`StagingError::Incomplete`] if it is shorter.
    fn read_range<'a>(
        &'a self,
        path: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, StagingError>>;
    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>>;
    /// Removes an upload (its object, or its old-layout directory and everything in it);
    /// removing what is gone is not an error.
    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>>;
    /// Removes an upload without waiting, where the store can (a local directory); `false`
    /// means the caller must use [`Self::remove_upload`].
    fn remove_upload_now(&self, upload: &str) -> bool;
    fn uploads(&self) -> BoxFuture<'_, Result<Vec<StagedUpload>, StagingError>>;
    /// Makes every object finished so far survive a host crash (data and directory entry).
    /// Concurrent calls share one sync (docs/operations.md, "Durability"). An S3 object is
    /// durable once stored, so there it returns at once.
    fn sync(&self) -> BoxFuture<'_, Result<(), StagingError>>;
}

/// How much `202 Accepted` promises about a host crash (`INTAKE_DURABILITY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Staged objects are in the page cache when the api answers; the kernel writes them
    /// out within seconds.
    #[default]
    Relaxed,
    /// The api answers only once the staged object is on stable storage.
    Strict,
}

/// The staging store the settings choose.
pub fn from_settings(settings: &StagingSettings) -> Result<Arc<dyn StagingStore>, StagingError> {
    match &settings.s3_bucket {
        Some(bucket) => Ok(Arc::new(S3Staging::from_settings(bucket, settings)?)),
        None => Ok(Arc::new(LocalStaging::new(settings.dir.clone()))),
    }
}

/// Whether `path` is made of plain names only (no root, no `..`, no `.`): every path a store
/// is asked for is checked, so a payload can never point outside staging.
fn is_plain(path: &str) -> bool {
    !path.is_empty()
        && std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Whether `name` is one plain name, as the server chooses for a new upload.
fn is_name(name: &str) -> bool {
    is_plain(name) && !name.contains('/')
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
