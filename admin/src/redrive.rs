//! Re-driving a failed registration: the same registration id, so the job finds its team ID
//! and re-uses its staged files, pushed as a new apalis job. The status moves from `failed` to
//! `queued` by compare-and-set, so two support staff re-driving one registration at once
//! enqueue it once.

use std::sync::LazyLock;

use intake_shared::domain::RegistrationId;
use intake_shared::job::RegistrationJob;
use intake_shared::status::{JobState, StatusRecord};
use redis::Script;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::AdminError;
use crate::state::AdminState;

static COMPARE_AND_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: status record, KEYS[2]: failed index. ARGV: expected, replacement, member, score.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
return 1
"#,
    )
});

/// What happened to one registration asked to be re-driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Requeued,
    DocumentsExpired,
    AlreadyCompleted,
    NotFailed,
    NotFound,
}

impl Outcome {
    pub fn into_result(self) -> Result<(), AdminError> {
        match self {
            Self::Requeued => Ok(()),
            Self::DocumentsExpired => Err(AdminError::DocumentsExpired),
            Self::AlreadyCompleted => Err(AdminError::AlreadyCompleted),
            Self::NotFailed => Err(AdminError::InvalidState(
                "only a failed registration can be re-driven; this one is queued or in progress"
                    .into(),
            )),
            Self::NotFound => Err(AdminError::NotFound),
        }
    }
}

async fn status(
    state: &AdminState,
    id: RegistrationId,
) -> Result<Option<(String, StatusRecord)>, AdminError> {
    let raw: Option<String> = redis::cmd("GET")
        .arg(state.keys.status(&id))
        .query_async(&mut state.redis())
        .await?;
    Ok(raw.and_then(|raw| serde_json::from_str(&raw).ok().map(|record| (raw, record))))
}

/// Re-drives one registration; `attempt_key` makes the new job distinct from earlier ones.
pub async fn one(
    state: &AdminState,
    id: RegistrationId,
    attempt_key: &str,
) -> Result<Outcome, AdminError> {
    let Some((raw, record)) = status(state, id).await? else {
        return Ok(Outcome::NotFound);
    };
    match record.status {
        JobState::Completed => return Ok(Outcome::AlreadyCompleted),
        JobState::Queued | JobState::Processing => return Ok(Outcome::NotFailed),
        JobState::Failed => {}
    }
    let payload: Option<String> = redis::cmd("GET")
        .arg(state.keys.failed_job(&id))
        .query_async(&mut state.redis())
        .await?;
    let Some(job) = payload.and_then(|p| serde_json::from_str::<RegistrationJob>(&p).ok()) else {
        return Ok(Outcome::DocumentsExpired);
    };
    for doc in &job.documents {
        let present = state
            .staging
            .exists(&doc.staged_path)
            .await
            .map_err(|e| AdminError::Internal(format!("staging: {e}")))?;
        if !present {
            return Ok(Outcome::DocumentsExpired);
        }
    }
    let mut queued = record.clone();
    queued.status = JobState::Queued;
    queued.step = None;
    queued.error = None;
    queued.attempts = 0;
    queued.updated_at = OffsetDateTime::now_utc();
    let replacement =
        serde_json::to_string(&queued).map_err(|e| AdminError::Internal(e.to_string()))?;
    let moved: i64 = COMPARE_AND_SET
        .key(state.keys.status(&id))
        .key(state.keys.failed_index())
        .arg(&raw)
        .arg(&replacement)
        .arg(id.to_string())
        .arg("")
        .invoke_async(&mut state.redis())
        .await?;
    if moved == 0 {
        // Someone else re-drove it (or it changed) since we looked.
        return Ok(Outcome::NotFailed);
    }
    let pushed = intake_shared::queue::push(
        &state.redis,
        &state.queue,
        &job,
        &format!("{id}:redrive:{attempt_key}"),
        state.settings.job_max_attempts,
    )
    .await;
    if let Err(err) = pushed {
        // Put the registration back as it was, so it can be re-driven again.
        let _: Result<i64, _> = COMPARE_AND_SET
            .key(state.keys.status(&id))
            .key(state.keys.failed_index())
            .arg(&replacement)
            .arg(&raw)
            .arg(id.to_string())
            .arg(intake_worker::status::unix_millis(record.updated_at))
            .invoke_async(&mut state.redis())
            .await;
        return Err(AdminError::Internal(format!(
            "re-drive not enqueued: {err}"
        )));
    }
    tracing::info!(registration_id = %id, "registration re-driven");
    Ok(Outcome::Requeued)
}
