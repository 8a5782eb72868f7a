//! The staging janitor. Staged files of completed registrations are removed by the job
//! itself; this sweep removes the rest when their time is up: the files of failed
//! registrations after `INTAKE_STAGING_RETENTION_SECS` (a re-drive then answers
//! `DOCUMENTS_EXPIRED`), and uploads no job references (an api that crashed mid-request)
//! after `INTAKE_STAGING_ORPHAN_GRACE_SECS`. Every worker runs it; a Redis lock lets one sweep
//! per interval, and every removal is safe to repeat, so two sweeping at once do no harm.
//! It also forgets finished apalis tasks, whose payloads would otherwise stay in Redis.

use std::sync::Arc;
use std::time::Duration;

use intake_shared::domain::RegistrationId;
use intake_shared::keys::RedisKeys;
use intake_shared::lease::Lease;
use intake_shared::staging::StagingStore;
use intake_shared::status::{JobState, StatusRecord};
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

#[derive(Clone)]
pub struct Janitor {
    /// apalis-redis' keys, for forgetting finished tasks.
    pub queue: apalis_redis::Config,
    pub staging: Arc<dyn StagingStore>,
    pub keys: RedisKeys,
    pub redis: ConnectionManager,
    pub retention: Duration,
    pub orphan_grace: Duration,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub orphans_removed: usize,
    pub expired_removed: usize,
    pub finished_removed: usize,
    pub kept: usize,
    /// Finished apalis tasks whose payload and metadata were removed.
    pub tasks_forgotten: usize,
}

impl Janitor {
    /// Sweeps if no other worker holds the sweep lock for this interval.
    pub async fn sweep_if_due(
        &self,
        interval: Duration,
    ) -> Result<Option<Sweep>, redis::RedisError> {
        // Taken for the interval and never released: one sweep per interval.
        let lease = Lease::new(self.redis.clone(), self.keys.janitor_lock());
        if !lease.take(interval).await? {
            return Ok(None);
        }
        self.sweep().await.map(Some)
    }

    /// apalis-redis keeps every task's payload (with the team's personal data) and metadata
    /// for ever. Tasks in its `done` and `dead` sets are acknowledged and can never be
    /// fetched again (only in-flight tasks are re-queued), so their copies can go.
    pub async fn forget_finished_tasks(&self) -> Result<usize, redis::RedisError> {
        let mut conn = self.redis.clone();
        let mut forgotten = 0;
        for set in [self.queue.done_jobs_set(), self.queue.dead_jobs_set()] {
            loop {
                let ids: Vec<String> = redis::cmd("SRANDMEMBER")
                    .arg(&set)
                    .arg(500)
                    .query_async(&mut conn)
                    .await?;
                if ids.is_empty() {
                    break;
                }
                let mut pipe = redis::pipe();
                pipe.atomic();
                pipe.hdel(self.queue.job_data_hash(), &ids);
                for id in &ids {
                    pipe.del(format!("{}:{id}", self.queue.job_meta_hash()));
                }
                pipe.srem(&set, &ids);
                pipe.query_async::<()>(&mut conn).await?;
                forgotten += ids.len();
            }
        }
        Ok(forgotten)
    }

    /// One pass over the staging area and the queue's finished tasks.
    pub async fn sweep(&self) -> Result<Sweep, redis::RedisError> {
        let mut sweep = Sweep {
            tasks_forgotten: self.forget_finished_tasks().await?,
            ..Sweep::default()
        };
        let uploads = match self.staging.uploads().await {
            Ok(uploads) => uploads,
            Err(err) => {
                tracing::warn!(error = %err, "staging area not readable");
                return Ok(sweep);
            }
        };
        for upload in uploads {
            let name = upload.name;
            let verdict = self.verdict(&name, upload.age).await?;
            if verdict == Verdict::Keep {
                sweep.kept += 1;
                continue;
            }
            if let Err(err) = self.staging.remove_upload(&name).await {
                tracing::warn!(error = %err, upload = %name, "staged upload not removed");
                continue;
            }
            let _: () = redis::cmd("DEL")
                .arg(self.keys.staged_upload(&name))
                .query_async(&mut self.redis.clone())
                .await?;
            let reason = match verdict {
                Verdict::Orphan => {
                    sweep.orphans_removed += 1;
                    "orphan"
                }
                Verdict::Expired => {
                    sweep.expired_removed += 1;
                    "expired"
                }
                Verdict::Finished | Verdict::Keep => {
                    sweep.finished_removed += 1;
                    "finished"
                }
            };
            metrics::counter!("intake_janitor_removed_total", "reason" => reason).increment(1);
            tracing::info!(upload = %name, reason, "staged upload removed");
        }
        Ok(sweep)
    }

    async fn verdict(&self, upload: &str, age: Duration) -> Result<Verdict, redis::RedisError> {
        let mut conn = self.redis.clone();
        let owner: Option<String> = redis::cmd("GET")
            .arg(self.keys.staged_upload(upload))
            .query_async(&mut conn)
            .await?;
        let Some(id) = owner.as_deref().and_then(RegistrationId::parse) else {
            return Ok(if age >= self.orphan_grace {
                Verdict::Orphan
            } else {
                Verdict::Keep
            });
        };
        let status: Option<String> = redis::cmd("GET")
            .arg(self.keys.status(&id))
            .query_async(&mut conn)
            .await?;
        let record = status.and_then(|s| serde_json::from_str::<StatusRecord>(&s).ok());
        Ok(match record.map(|r| r.status) {
            Some(JobState::Completed) => Verdict::Finished,
            Some(JobState::Failed) => {
                let failed_ms: Option<f64> = redis::cmd("ZSCORE")
                    .arg(self.keys.failed_index())
                    .arg(id.to_string())
                    .query_async(&mut conn)
                    .await?;
                let now_ms = intake_store::status::unix_millis(OffsetDateTime::now_utc()) as f64;
                let failed_for =
                    failed_ms.map(|f| Duration::from_millis((now_ms - f).max(0.0) as u64));
                if failed_for.unwrap_or(age) >= self.retention {
                    Verdict::Expired
                } else {
                    Verdict::Keep
                }
            }
            Some(JobState::Queued | JobState::Processing) => Verdict::Keep,
            // The status is gone (it outlived its own retention): so has the upload's purpose.
            None if age >= self.retention => Verdict::Expired,
            None => Verdict::Keep,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Orphan,
    Expired,
    Finished,
}
