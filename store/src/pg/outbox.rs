//! The transactional outbox (docs/contract.md §16): the events other systems are told of,
//! each written in the transaction of the change that causes it (the registration's save,
//! an organiser's decision), never on its own. Here: what an event is, and reading them.

use intake_shared::domain::RegistrationId;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::DbError;

/// The kinds of event, as their `type` is spelled on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    RegistrationCompleted,
    RegistrationFailed,
    TeamApproved,
    TeamRejected,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        Self::RegistrationCompleted,
        Self::RegistrationFailed,
        Self::TeamApproved,
        Self::TeamRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RegistrationCompleted => "registration.completed",
            Self::RegistrationFailed => "registration.failed",
            Self::TeamApproved => "team.approved",
            Self::TeamRejected => "team.rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the outbox: events are handed on in this order.
    pub seq: i64,
    /// The `webhook-id` of every delivery of it.
    pub event_id: uuid::Uuid,
    pub event_type: EventType,
    pub registration_id: RegistrationId,
    pub data: Value,
    pub created_at: OffsetDateTime,
}

type EventRow = (i64, uuid::Uuid, String, uuid::Uuid, Value, OffsetDateTime);

fn event_of((seq, event_id, kind, registration_id, data, created_at): EventRow) -> Option<Event> {
    Some(Event {
        seq,
        event_id,
        // The column's CHECK admits only the four types.
        event_type: EventType::parse(&kind)?,
        registration_id: RegistrationId::from_uuid(registration_id),
        data,
        created_at,
    })
}

/// The events of one registration, oldest first.
pub async fn of_registration(pool: &PgPool, id: RegistrationId) -> Result<Vec<Event>, DbError> {
    super::retrying(|| async {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, event_id, type, registration_id, data, created_at FROM outbox_events
             WHERE registration_id = $1 ORDER BY id",
        )
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().filter_map(event_of).collect())
    })
    .await
}

/// Up to `limit` events not yet handed to delivery, oldest first.
pub async fn undispatched(pool: &PgPool, limit: i64) -> Result<Vec<Event>, DbError> {
    super::retrying(|| async {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, event_id, type, registration_id, data, created_at FROM outbox_events
             WHERE dispatched_at IS NULL ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().filter_map(event_of).collect())
    })
    .await
}

/// How an event's data writes a time: RFC 3339 in UTC, to the second
/// (`2026-12-01T10:00:00Z`).
pub(crate) fn wire_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

/// A registration's failure for good, as the worker recorded it in the status record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    pub registration_id: RegistrationId,
    pub run: u32,
    /// The job failure code (docs/contract.md §4).
    pub code: String,
    pub team_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub failed_at: OffsetDateTime,
}

/// Writes a registration's failure with its `registration.failed` event, in one statement
/// (so one transaction); a failure of that run recorded already writes nothing. Whether it
/// was written now.
pub async fn record_failure(pool: &PgPool, failure: &Failure) -> Result<bool, DbError> {
    super::retrying(|| async {
        let written: Option<(uuid::Uuid,)> = sqlx::query_as(
            "WITH failure AS (
                 INSERT INTO registration_failures (registration_id, run, code, failed_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (registration_id, run) DO NOTHING
                 RETURNING registration_id)
             INSERT INTO outbox_events (type, registration_id, data)
             SELECT 'registration.failed', failure.registration_id,
                 jsonb_build_object('registration_id', failure.registration_id,
                     'run', $2::integer, 'code', $3::text, 'team_name', $5::text,
                     'failed_at', $6::text)
             FROM failure
             RETURNING registration_id",
        )
        .bind(failure.registration_id.as_uuid())
        .bind(i32::try_from(failure.run).unwrap_or(i32::MAX))
        .bind(&failure.code)
        .bind(failure.failed_at)
        .bind(&failure.team_name)
        .bind(wire_time(failure.failed_at))
        .fetch_optional(pool)
        .await?;
        Ok(written.is_some())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_are_utc_to_the_second() {
        let at = time::macros::datetime!(2026-12-01 11:30:05.75 +01:00);
        assert_eq!(wire_time(at), "2026-12-01T10:30:05Z");
    }
}
