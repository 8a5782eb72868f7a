//! Step 2: the documents, uploaded concurrently under deterministic public ids
//! (`{folder}/{registration id}/{field}`), so a second run finds the assets of the first.
//! Transient failures are retried with exponential backoff and jitter; a process-wide
//! circuit breaker opens after consecutive failures, and while it is open jobs wait in this
//! step instead of each spending its attempts against a store that is down. Whether it lets
//! calls through is `intake_upload_breaker_open`, set wherever a call observes it.

use bytes::Bytes;
use intake_shared::staging::{StagingError, StagingStore};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use failsafe::StateMachine;
use failsafe::backoff::EqualJittered;
use failsafe::failure_policy::ConsecutiveFailures;
use intake_shared::errors::JobFailureCode;
use intake_shared::job::{RegistrationJob, StagedDocument};
use sha2::{Digest, Sha256};

use crate::backends::store::{DocumentStore, DocumentUpload, StoreError, StoredDocument};
use crate::error::StepError;

/// Consecutive transient failures after which the breaker opens.
const BREAKER_THRESHOLD: u32 = 5;

/// A staged document's content, checked against the fingerprint the api took of it, with
/// its SHA-256 (what the documents table keeps, docs/contract.md §9). Reads a range of the
/// submission's object, or (a job of the old layout) the document's own file. A missing
/// object means its retention ran out; a short or damaged one, that it was lost in a crash.
async fn read_staged(
    staging: &dyn StagingStore,
    doc: &StagedDocument,
) -> Result<(Bytes, String), StepError> {
    let field = doc.kind.field();
    let read = || async {
        match doc.offset {
            Some(_) => staging.read_range(&doc.staged_path, doc.range()).await,
            None => staging.read(&doc.staged_path).await,
        }
    };
    let content = read
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(100))
                .with_max_times(3)
                .with_jitter(),
        )
        .when(|e| matches!(e, StagingError::Unavailable(_)))
        .await
        .map_err(|err| match err {
            StagingError::NotFound => StepError::permanent(
                JobFailureCode::DocumentsExpired,
                format!("the staged {field} is no longer available; submit the registration again"),
            ),
            StagingError::Incomplete => damaged(field),
            StagingError::Unavailable(message) => StepError::transient(
                JobFailureCode::InternalError,
                format!("the staging area is unavailable: {message}"),
            ),
        })?;
    let checked = content.clone();
    let fingerprints = (doc.blake3.clone(), doc.sha256.clone());
    let (intact, sha256) = tokio::task::spawn_blocking(move || {
        let sha256 = hex::encode(Sha256::digest(&checked));
        let intact = match fingerprints {
            (Some(blake3), _) => blake3::hash(&checked).to_hex().as_str() == blake3,
            (None, Some(old)) => old == sha256,
            (None, None) => false,
        };
        (intact, sha256)
    })
    .await
    .map_err(|err| StepError::transient(JobFailureCode::InternalError, err.to_string()))?;
    if !intact {
        return Err(damaged(field));
    }
    Ok((content, sha256))
}

/// A staged document that is not what the api received: no attempt can get it back.
fn damaged(field: &str) -> StepError {
    StepError::permanent(
        JobFailureCode::DocumentsExpired,
        format!("the staged {field} is incomplete or damaged; submit the registration again"),
    )
}

/// The document store with its circuit breaker, shared by every job of the process.
#[derive(Clone)]
pub struct Uploader {
    store: Arc<dyn DocumentStore>,
    breaker: Arc<StateMachine<ConsecutiveFailures<EqualJittered>, ()>>,
    folder: String,
    retry: ExponentialBuilder,
    /// How long one call waits for an open breaker to let calls through again.
    breaker_wait: Duration,
}

impl Uploader {
    pub fn new(store: Arc<dyn DocumentStore>, folder: impl Into<String>) -> Self {
        let breaker = failsafe::Config::new()
            .failure_policy(failsafe::failure_policy::consecutive_failures(
                BREAKER_THRESHOLD,
                failsafe::backoff::equal_jittered(Duration::from_secs(2), Duration::from_secs(30)),
            ))
            .build();
        Self {
            store,
            breaker: Arc::new(breaker),
            folder: folder.into(),
            retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(10))
                .with_max_times(8)
                .with_jitter(),
            breaker_wait: Duration::from_secs(60),
        }
    }

    /// Overrides how long a call waits for an open breaker (tests make it short).
    pub fn with_breaker_wait(mut self, wait: Duration) -> Self {
        self.breaker_wait = wait;
        self
    }

    /// Waits while the breaker is open, up to `breaker_wait`: during an outage jobs queue up
    /// here instead of spending their retries and attempts.
    async fn wait_for_breaker(&self) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + self.breaker_wait;
        while !self.breaker.is_call_permitted() {
            crate::metrics::upload_breaker_open(true);
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Unavailable(
                    "circuit open after repeated failures".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200).min(self.breaker_wait)).await;
        }
        crate::metrics::upload_breaker_open(false);
        Ok(())
    }

    /// Overrides the in-step retry policy (tests make it fast).
    pub fn with_retry(mut self, retry: ExponentialBuilder) -> Self {
        self.retry = retry;
        self
    }

    pub fn store_name(&self) -> &'static str {
        self.store.name()
    }

    pub fn public_id(&self, job: &RegistrationJob, field: &str) -> String {
        format!("{}/{}/{field}", self.folder, job.registration_id)
    }

    pub async fn run(
        &self,
        staging: &dyn StagingStore,
        job: &RegistrationJob,
    ) -> Result<Vec<StoredDocument>, StepError> {
        // Every document is read and checked before any is stored: a submission with one
        // damaged document leaves nothing in the document store.
        let read = job.documents.iter().map(|doc| async move {
            let (content, sha256) = read_staged(staging, doc).await?;
            Ok::<_, StepError>(DocumentUpload {
                kind: doc.kind,
                public_id: self.public_id(job, doc.kind.field()),
                content,
                content_type: doc.content_type,
                sha256,
            })
        });
        let documents: Vec<DocumentUpload> = futures::future::join_all(read)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let uploads = documents.iter().map(|upload| self.one(upload));
        futures::future::join_all(uploads)
            .await
            .into_iter()
            .collect()
    }

    async fn one(&self, upload: &DocumentUpload) -> Result<StoredDocument, StepError> {
        let attempt = || async {
            self.wait_for_breaker().await?;
            let result = self.store.store(upload).await;
            match &result {
                Err(err) if err.is_transient() => self.breaker.on_error(),
                _ => self.breaker.on_success(),
            }
            crate::metrics::upload_breaker_open(!self.breaker.is_call_permitted());
            result
        };
        attempt
            .retry(self.retry)
            .when(StoreError::is_transient)
            // Cloudinary's 420 and 429 ask for patience: wait at least a few seconds.
            .adjust(|err, delay| match err {
                StoreError::RateLimited(_) => delay.map(|d| d.max(Duration::from_secs(5))),
                _ => delay,
            })
            .notify(|err, delay| {
                tracing::warn!(error = %err, retry_in_ms = delay.as_millis() as u64, "upload failed; retrying");
            })
            .await
            .map_err(|err| match err {
                StoreError::Rejected(message) => StepError::permanent(
                    JobFailureCode::DocumentRejected,
                    format!("the {} was refused by the document store: {message}", upload.kind.field()),
                ),
                StoreError::Missing => StepError::permanent(
                    JobFailureCode::DocumentsExpired,
                    format!("the staged {} is no longer available; submit the registration again", upload.kind.field()),
                ),
                StoreError::RateLimited(message) | StoreError::Unavailable(message) => StepError::transient(
                    JobFailureCode::UploadUnavailable,
                    format!("the document store is unavailable: {message}"),
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;
    use futures::future::BoxFuture;
    use intake_shared::domain::{DocumentKind, DocumentType};

    use super::*;

    /// A store that is down: it counts the calls that reach it.
    struct DownStore(AtomicUsize);

    impl DocumentStore for DownStore {
        fn name(&self) -> &'static str {
            "down"
        }

        fn store<'a>(
            &'a self,
            _: &'a DocumentUpload,
        ) -> BoxFuture<'a, Result<StoredDocument, StoreError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            async { Err(StoreError::Unavailable("HTTP 503".into())) }.boxed()
        }
    }

    fn upload() -> DocumentUpload {
        DocumentUpload {
            kind: DocumentKind::PaymentReceipt,
            public_id: "intake/x/payment_receipt".into(),
            content: Bytes::from_static(b"\x89PNG"),
            content_type: DocumentType::Png,
            sha256: String::new(),
        }
    }

    #[tokio::test]
    async fn breaker_stops_calling_a_store_that_keeps_failing() {
        let metrics = intake_shared::telemetry::prometheus();
        let store = Arc::new(DownStore(AtomicUsize::new(0)));
        let uploader = Uploader::new(store.clone(), "intake")
            .with_breaker_wait(Duration::from_millis(1))
            .with_retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(1))
                    .with_max_delay(Duration::from_millis(2))
                    .with_max_times(20),
            );
        let err = uploader.one(&upload()).await.expect_err("store is down");
        assert_eq!(err.code(), JobFailureCode::UploadUnavailable);
        assert!(err.is_transient());
        // 21 tries were made, but only the first BREAKER_THRESHOLD reached the store.
        assert_eq!(store.0.load(Ordering::SeqCst), BREAKER_THRESHOLD as usize);
        let text = metrics.render();
        assert!(text.contains("intake_upload_breaker_open 1"), "{text}");
    }
}
