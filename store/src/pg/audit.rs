//! The audit log: every support action is written as `requested` before it takes effect and
//! its outcome as a second row. The table is append-only (a trigger refuses updates and
//! deletes), so the log is evidence, not state.

use intake_shared::domain::RegistrationId;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::DbError;
use time::OffsetDateTime;

/// The action name of a confirmation resend (written by the admin service when asked, and
/// by the worker when the resend ends).
pub const RESEND_EMAIL: &str = "resend_email";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Requested,
    Succeeded,
    Failed,
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }
}

/// One action about to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub registrations: &'a [RegistrationId],
    pub reason: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

impl Entry<'_> {
    /// Writes the row, on the pool or inside the caller's transaction.
    pub async fn record(
        &self,
        db: impl sqlx::PgExecutor<'_>,
        outcome: Outcome,
        detail: Value,
    ) -> Result<i64, DbError> {
        let ids: Vec<uuid::Uuid> = self
            .registrations
            .iter()
            .map(RegistrationId::as_uuid)
            .collect();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO audit_log (actor, action, registration_ids, reason, outcome, detail, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(self.actor)
        .bind(self.action)
        .bind(&ids)
        .bind(self.reason)
        .bind(outcome.as_str())
        .bind(detail)
        .bind(self.request_id)
        .fetch_one(db)
        .await?;
        Ok(id)
    }
}

impl Entry<'_> {
    /// Records that the action failed with `error`. Best effort: the caller is already
    /// answering with that error, and a log line says if this row could not be written.
    pub async fn record_failure(
        &self,
        pool: &PgPool,
        error: &(impl std::error::Error + Sync + 'static),
    ) {
        let detail = serde_json::json!({"error": intake_shared::errors::chain(error)});
        if let Err(err) = self.record(pool, Outcome::Failed, detail).await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                action = self.action,
                "failure not audited"
            );
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub action: String,
    pub registration_ids: Vec<uuid::Uuid>,
    pub reason: Option<String>,
    pub outcome: String,
    pub detail: Value,
    pub request_id: Option<String>,
}

type Row = (
    i64,
    OffsetDateTime,
    String,
    String,
    Vec<uuid::Uuid>,
    Option<String>,
    String,
    Value,
    Option<String>,
);

fn record(
    (id, at, actor, action, registration_ids, reason, outcome, detail, request_id): Row,
) -> AuditRecord {
    AuditRecord {
        id,
        at,
        actor,
        action,
        registration_ids,
        reason,
        outcome,
        detail,
        request_id,
    }
}

/// Entries about one registration, oldest first.
pub async fn for_registration(
    pool: &PgPool,
    id: RegistrationId,
) -> Result<Vec<AuditRecord>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, action, registration_ids, reason, outcome, detail, request_id
         FROM audit_log WHERE registration_ids @> ARRAY[$1]::uuid[] ORDER BY id",
    )
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(record).collect())
}

/// The newest entries, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<AuditRecord>, DbError> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, actor, action, registration_ids, reason, outcome, detail, request_id
         FROM audit_log ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(record).collect())
}
