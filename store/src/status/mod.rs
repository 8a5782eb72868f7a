//! The status record of docs/contract.md §10: the only code that reads or writes a
//! registration's status in Redis, and the only code that publishes its events. Every
//! transition is checked by [`transition::apply`] against the record as read, then written
//! by one Lua script that changes nothing unless the record is still exactly what was read
//! (compare-and-set); in the same script it keeps the failed index and the attempt history,
//! and publishes the new record. A transition that lost the race reads again and is checked
//! again, so two writers can never both act on the same state.

pub mod transition;

use std::sync::LazyLock;
use std::time::Duration;

use intake_shared::domain::{RegistrationId, TeamId};
use intake_shared::errors::JobFailureCode;
use intake_shared::job::RegistrationJob;
use intake_shared::keys::RedisKeys;
use intake_shared::status::{EmailStatus, JobError, JobState, ReviewState, StatusRecord, Step};
use redis::Script;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

pub use transition::{Actor, Change, Stored, TransitionError};

/// How many attempt errors are kept per registration.
const MAX_ATTEMPT_ENTRIES: i64 = 50;

/// How often a transition reads again after losing a compare-and-set before giving up.
const CAS_TRIES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("the status store is unavailable")]
    Unavailable(#[from] redis::RedisError),
    #[error("the status record of {id} is unreadable")]
    Corrupt {
        id: RegistrationId,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Refused(#[from] TransitionError),
    #[error("the status record of {0} kept changing under this transition")]
    Contended(RegistrationId),
}

/// One line of a registration's attempt history (support staff see every attempt's error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttemptError {
    pub attempt: u32,
    pub code: JobFailureCode,
    pub message: String,
    pub transient: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A registration moved from `failed` to `queued` by a re-drive, with the job to push for
/// its new run; [`StatusRepository::undo_requeue`] puts it back if the push fails.
#[derive(Debug, Clone)]
pub struct Requeued {
    pub job: RegistrationJob,
    previous: String,
    replaced: String,
    failed_at: i64,
}

/// A transition as written: the record before (if there was one) and after, and the
/// stored JSON of after.
struct Written {
    before: Option<Stored>,
    after: Stored,
    raw: String,
}

/// What a transition does besides writing the record, in the same script.
#[derive(Default)]
struct Effects {
    /// Keys to delete.
    delete: Vec<String>,
    /// Keys to set.
    set: Vec<(String, String)>,
    /// Keys to set that expire after the retention period (personal data kept for support).
    set_expiring: Vec<(String, String)>,
    /// Lists to append to (and trim to the last [`MAX_ATTEMPT_ENTRIES`]).
    append: Vec<(String, String)>,
}

/// Compare-and-set of one status record, with its effects, and the event.
///
/// KEYS: status record, failed index, then one key per effect.
/// ARGV: expected (`""`: no record), new stored record, channel, public record, ttl
/// (`keep`, `persist`, `delete` (the record goes) or seconds), failed-index score (`""`: not
/// failed), member, effect count, then per effect its kind (`del`, `set`, `setex`, `append`)
/// and value, then the length lists are trimmed to and the retention in seconds (`setex`).
static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if current then return 0 end
elseif current ~= ARGV[1] then
  return 0
end
if ARGV[5] == 'keep' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
elseif ARGV[5] == 'persist' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif ARGV[5] == 'delete' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[5])
end
if ARGV[6] == '' then
  redis.call('ZREM', KEYS[2], ARGV[7])
else
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[7])
end
local effects = tonumber(ARGV[8])
for i = 1, effects do
  local kind = ARGV[7 + 2 * i]
  local value = ARGV[8 + 2 * i]
  local key = KEYS[2 + i]
  if kind == 'del' then
    redis.call('DEL', key)
  elseif kind == 'set' then
    redis.call('SET', key, value)
  elseif kind == 'setex' then
    redis.call('SET', key, value, 'EX', ARGV[10 + 2 * effects])
  elseif kind == 'append' then
    redis.call('RPUSH', key, value)
    redis.call('LTRIM', key, -tonumber(ARGV[9 + 2 * effects]), -1)
  end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"#,
    )
});

/// The api's first write: the `queued` record unless one exists, and the mark that says
/// which registration an upload directory belongs to; the event if the record is new.
///
/// KEYS: status record, upload mark. ARGV: record, channel, registration id.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local created = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
  created = 1
end
redis.call('SET', KEYS[2], ARGV[3])
return created
"#,
    )
});

#[derive(Clone)]
pub struct StatusRepository {
    conn: ConnectionManager,
    keys: RedisKeys,
    /// How long a completed registration's status stays readable.
    completed_ttl: Duration,
}

impl std::fmt::Debug for StatusRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusRepository")
            .field("prefix", &self.keys.prefix())
            .field("completed_ttl", &self.completed_ttl)
            .finish_non_exhaustive()
    }
}

impl StatusRepository {
    pub fn new(conn: ConnectionManager, keys: RedisKeys, completed_ttl: Duration) -> Self {
        Self {
            conn,
            keys,
            completed_ttl,
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The record as clients see it; `None` if there is none. (Decoded straight into the
    /// public record, which ignores `run`: this is the api's hot path, and the flattened
    /// stored form costs a second pass.)
    pub async fn get(&self, id: RegistrationId) -> Result<Option<StatusRecord>, StatusError> {
        self.decoded(id, self.keys.status(&id)).await
    }

    /// The JSON value at `key` (one of `id`'s), decoded; `None` if there is none.
    async fn decoded<T: serde::de::DeserializeOwned>(
        &self,
        id: RegistrationId,
        key: String,
    ) -> Result<Option<T>, StatusError> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn())
            .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw).map_err(|source| StatusError::Corrupt { id, source })
        })
        .transpose()
    }

    /// The records of many registrations at once, in order; unreadable ones are `None`.
    pub async fn get_many(
        &self,
        ids: &[RegistrationId],
    ) -> Result<Vec<Option<StatusRecord>>, StatusError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.status(id)).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.conn())
            .await?;
        Ok(raw
            .into_iter()
            .map(|r| r.and_then(|r| serde_json::from_str(&r).ok()))
            .collect())
    }

    async fn read(&self, id: RegistrationId) -> Result<Option<(String, Stored)>, StatusError> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.status(&id))
            .query_async(&mut self.conn())
            .await?;
        raw.map(|raw| {
            serde_json::from_str(&raw)
                .map(|stored| (raw, stored))
                .map_err(|source| StatusError::Corrupt { id, source })
        })
        .transpose()
    }

    /// Creates the `queued` record of a newly accepted registration (`true`) unless it has
    /// one already (`false`: a request that took over an abandoned claim), and marks the
    /// upload directory as this registration's.
    pub async fn create(&self, id: RegistrationId, upload: &str) -> Result<bool, StatusError> {
        let record = serde_json::to_string(&StatusRecord::queued(id, OffsetDateTime::now_utc()))
            .map_err(|source| StatusError::Corrupt { id, source })?;
        let created: i64 = CREATE
            .key(self.keys.status(&id))
            .key(self.keys.staged_upload(upload))
            .arg(record)
            .arg(self.keys.status_channel(&id))
            .arg(id.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(created == 1)
    }

    /// Undoes [`Self::create`] for a job that was certainly not enqueued: the upload mark
    /// always, the record only if that call created it.
    pub async fn withdraw(
        &self,
        id: RegistrationId,
        upload: &str,
        created: bool,
    ) -> Result<(), StatusError> {
        let mut pipe = redis::pipe();
        pipe.del(self.keys.staged_upload(upload));
        if created {
            pipe.del(self.keys.status(&id));
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// Applies `change` for `actor`: read, check, compare-and-set, again if the record
    /// changed in between. `effects` says what else the same script does.
    async fn transition(
        &self,
        id: RegistrationId,
        actor: Actor,
        change: Change,
        effects: Effects,
    ) -> Result<Written, StatusError> {
        for _ in 0..CAS_TRIES {
            let current = self.read(id).await?;
            let now = OffsetDateTime::now_utc();
            let next = transition::apply(
                id,
                current.as_ref().map(|(_, s)| s.clone()),
                actor,
                change.clone(),
                now,
            )?;
            let expected = current.as_ref().map(|(raw, _)| raw.as_str()).unwrap_or("");
            let extra = &effects;
            let stored_json = encode(id, &next)?;
            let public_json = encode(id, &next.record)?;
            let ttl = match (next.record.status, &change) {
                (_, Change::Discard) => "delete".to_owned(),
                (JobState::Completed, Change::EmailResendQueued | Change::EmailResent { .. }) => {
                    "keep".to_owned()
                }
                (JobState::Completed, _) => self.completed_ttl.as_secs().max(1).to_string(),
                _ => "persist".to_owned(),
            };
            let failed_score =
                if next.record.status == JobState::Failed && change != Change::Discard {
                    unix_millis(now).to_string()
                } else {
                    String::new()
                };
            let mut invocation = COMPARE_AND_SET.prepare_invoke();
            invocation
                .key(self.keys.status(&id))
                .key(self.keys.failed_index())
                .arg(expected)
                .arg(&stored_json)
                .arg(self.keys.status_channel(&id))
                .arg(&public_json)
                .arg(ttl)
                .arg(failed_score)
                .arg(id.to_string())
                .arg(
                    extra.delete.len()
                        + extra.set.len()
                        + extra.set_expiring.len()
                        + extra.append.len(),
                );
            for key in &extra.delete {
                invocation.key(key).arg("del").arg("");
            }
            for (key, value) in &extra.set {
                invocation.key(key).arg("set").arg(value);
            }
            for (key, value) in &extra.set_expiring {
                invocation.key(key).arg("setex").arg(value);
            }
            for (key, value) in &extra.append {
                invocation.key(key).arg("append").arg(value);
            }
            invocation
                .arg(MAX_ATTEMPT_ENTRIES)
                .arg(self.completed_ttl.as_secs().max(1));
            let written: i64 = invocation.invoke_async(&mut self.conn()).await?;
            if written == 1 {
                return Ok(Written {
                    before: current.map(|(_, before)| before),
                    after: next,
                    raw: stored_json,
                });
            }
        }
        Err(StatusError::Contended(id))
    }

    async fn run_change(&self, job: &RegistrationJob, change: Change) -> Result<(), StatusError> {
        self.transition(
            job.registration_id,
            Actor::Run(job.run),
            change,
            Effects::default(),
        )
        .await
        .map(drop)
    }

    /// The job's run starts attempt `attempt` at its first `step`.
    pub async fn start(
        &self,
        job: &RegistrationJob,
        attempt: u32,
        step: Step,
    ) -> Result<(), StatusError> {
        self.run_change(job, Change::Start { attempt, step }).await
    }

    pub async fn step(&self, job: &RegistrationJob, step: Step) -> Result<(), StatusError> {
        self.run_change(job, Change::Step(step)).await
    }

    /// The registration is saved with `team_id`; the job goes on to its confirmation email
    /// (`step: sending_email`, `email_status: pending`).
    pub async fn saved(&self, job: &RegistrationJob, team_id: &TeamId) -> Result<(), StatusError> {
        let change = Change::Saved {
            team_id: team_id.to_string(),
        };
        self.run_change(job, change).await
    }

    /// The registration is done: its failure payload (from an earlier, re-driven run) and
    /// the marks of its staged uploads go with it.
    pub async fn complete(
        &self,
        job: &RegistrationJob,
        uploads: &[String],
        email: EmailStatus,
    ) -> Result<(), StatusError> {
        let id = job.registration_id;
        let mut delete = vec![self.keys.failed_job(&id)];
        delete.extend(uploads.iter().map(|u| self.keys.staged_upload(u)));
        let effects = Effects {
            delete,
            ..Effects::default()
        };
        self.transition(id, Actor::Run(job.run), Change::Complete { email }, effects)
            .await
            .map(drop)
    }

    /// The registration failed for good: the record says why, the payload is kept for a
    /// re-drive, and the attempt joins the history. The public record carries only the
    /// code's fixed message (an outside service's own words never reach anonymous clients);
    /// the detailed message is kept in the attempt history, for support.
    pub async fn fail(
        &self,
        job: &RegistrationJob,
        attempt: u32,
        error: &AttemptError,
    ) -> Result<(), StatusError> {
        let id = job.registration_id;
        let payload = encode(id, job)?;
        let entry = encode(id, error)?;
        let change = Change::Fail {
            attempt,
            error: JobError {
                code: error.code,
                message: error.code.public_message().to_owned(),
            },
        };
        // The payload holds the team's personal data: it is kept for a re-drive only as long
        // as the staged files are.
        let effects = Effects {
            set_expiring: vec![(self.keys.failed_job(&id), payload)],
            append: vec![(self.keys.attempts(&id), entry)],
            ..Effects::default()
        };
        self.transition(id, Actor::Run(job.run), change, effects)
            .await
            .map(drop)
    }

    /// Remembers why one attempt failed; the job will be retried (history, not state).
    pub async fn attempt_failed(
        &self,
        id: RegistrationId,
        error: &AttemptError,
    ) -> Result<(), StatusError> {
        let entry = encode(id, error)?;
        redis::pipe()
            .atomic()
            .rpush(self.keys.attempts(&id), entry)
            .ltrim(self.keys.attempts(&id), -(MAX_ATTEMPT_ENTRIES as isize), -1)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The payload a failed registration keeps for a re-drive.
    pub async fn failed_job(
        &self,
        id: RegistrationId,
    ) -> Result<Option<RegistrationJob>, StatusError> {
        self.decoded(id, self.keys.failed_job(&id)).await
    }

    /// Every attempt's error, oldest first.
    pub async fn attempts(&self, id: RegistrationId) -> Result<Vec<AttemptError>, StatusError> {
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(self.keys.attempts(&id))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await?;
        Ok(raw
            .iter()
            .filter_map(|a| serde_json::from_str(a).ok())
            .collect())
    }

    /// Moves a failed registration back to `queued` as its next run, and gives the job to
    /// push for that run. `job` is its kept payload ([`Self::failed_job`]), which the
    /// caller has checked can still run (its staged documents are there).
    pub async fn requeue(
        &self,
        id: RegistrationId,
        job: &RegistrationJob,
    ) -> Result<Requeued, StatusError> {
        let written = self
            .transition(id, Actor::Support, Change::Redrive, Effects::default())
            .await?;
        // A re-drive needs a record, so there was one before.
        let before = written.before.ok_or(TransitionError::NotFound)?;
        // Put back, if the push fails, as it was but with the new run: the run's job key
        // may exist (a push whose answer was lost), so the next re-drive must use another.
        let previous = encode(
            id,
            &Stored {
                record: before.record.clone(),
                run: written.after.run,
            },
        )?;
        let mut job = job.clone();
        job.run = written.after.run;
        Ok(Requeued {
            job,
            previous,
            replaced: written.raw,
            failed_at: unix_millis(before.record.updated_at),
        })
    }

    /// Puts a re-driven registration back as it was (`failed`, keeping the new run), when
    /// its job could not be pushed, so it can be re-driven again. `false` if the record
    /// changed since (its job ran after all).
    pub async fn undo_requeue(&self, requeued: &Requeued) -> Result<bool, StatusError> {
        let id = requeued.job.registration_id;
        let public: StatusRecord = serde_json::from_str(&requeued.previous)
            .map_err(|source| StatusError::Corrupt { id, source })?;
        let public = encode(id, &public)?;
        let restored: i64 = COMPARE_AND_SET
            .key(self.keys.status(&id))
            .key(self.keys.failed_index())
            .arg(&requeued.replaced)
            .arg(&requeued.previous)
            .arg(self.keys.status_channel(&id))
            .arg(public)
            .arg("persist")
            .arg(requeued.failed_at)
            .arg(id.to_string())
            .arg(0)
            .arg(MAX_ATTEMPT_ENTRIES)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(restored == 1)
    }

    /// Support asked for a completed registration's confirmation again: `pending` until the
    /// queued resend ends.
    pub async fn email_resend_queued(&self, id: RegistrationId) -> Result<(), StatusError> {
        self.transition(
            id,
            Actor::Support,
            Change::EmailResendQueued,
            Effects::default(),
        )
        .await
        .map(drop)
    }

    /// A resent confirmation ended with `email`.
    pub async fn email_resent(
        &self,
        id: RegistrationId,
        email: EmailStatus,
    ) -> Result<(), StatusError> {
        let change = Change::EmailResent { email };
        self.transition(id, Actor::Support, change, Effects::default())
            .await
            .map(drop)
    }

    /// Support drops a failed registration for good: its record, its place in the failed
    /// index, its kept payload (with the personal data) and its attempt history go. Refused
    /// unless it is failed.
    /// `uploads` are its staged uploads, whose marks go too (the files are the caller's to
    /// remove; a file left behind has no mark and the janitor removes it).
    pub async fn discard(&self, id: RegistrationId, uploads: &[String]) -> Result<(), StatusError> {
        let mut delete = vec![self.keys.failed_job(&id), self.keys.attempts(&id)];
        delete.extend(uploads.iter().map(|u| self.keys.staged_upload(u)));
        let effects = Effects {
            delete,
            ..Effects::default()
        };
        self.transition(id, Actor::Support, Change::Discard, effects)
            .await
            .map(drop)
    }

    /// An organiser decided on the saved team: its public record shows the review state.
    pub async fn reviewed(
        &self,
        id: RegistrationId,
        state: ReviewState,
    ) -> Result<(), StatusError> {
        let change = Change::Reviewed { state };
        self.transition(id, Actor::Support, change, Effects::default())
            .await
            .map(drop)
    }

    /// Failed registrations with when they failed (Unix milliseconds), newest first, within
    /// `[min, max]` (Redis score bounds such as `-inf`), from `offset`.
    pub async fn failed_range(
        &self,
        max: &str,
        min: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, i64)>, StatusError> {
        Ok(redis::cmd("ZREVRANGEBYSCORE")
            .arg(self.keys.failed_index())
            .arg(max)
            .arg(min)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(offset)
            .arg(count)
            .query_async(&mut self.conn())
            .await?)
    }
}

/// A time as Unix milliseconds, the score of the failed index.
pub fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn encode(id: RegistrationId, value: &impl serde::Serialize) -> Result<String, StatusError> {
    serde_json::to_string(value).map_err(|source| StatusError::Corrupt { id, source })
}
