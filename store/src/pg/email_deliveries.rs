//! Email deliveries: one row per message of a registration that was attempted (its
//! confirmation, the email of each review decision). A delivery is marked `sending` before
//! the message goes out, and only one run can mark it, which is what keeps a captain from
//! getting any message twice.

use std::fmt;
use std::time::Duration;

use intake_shared::domain::RegistrationId;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{DbError, retrying};

/// Which of a registration's messages a delivery is: `email_deliveries.message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKey {
    /// The confirmation, sent when the registration completes and by support's resends.
    Confirmation,
    /// The email telling the captain decision `version` of the organisers' review.
    Decision { version: i32 },
}

impl fmt::Display for MessageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Confirmation => f.write_str("confirmation"),
            Self::Decision { version } => write!(f, "decision-{version}"),
        }
    }
}

/// How a delivery stands, as `email_deliveries.status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Sending,
    Sent,
    Failed,
    /// A run stopped mid-send, or sending outran its deadline: the message may or may not
    /// have gone out. Only a support resend sends again.
    Unknown,
    /// Not sent: every recipient was over the day's email cap. A later run (a re-drive)
    /// may send it, as after `failed`; so may a support resend.
    Suppressed,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Suppressed => "suppressed",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            Self::Sending,
            Self::Sent,
            Self::Failed,
            Self::Unknown,
            Self::Suppressed,
        ]
        .into_iter()
        .find(|d| d.as_str() == raw)
    }
}

/// What [`mark_sending`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// This run marked it `sending`: it sends.
    Marked,
    /// It stands as `delivery`; `stale` when it was marked longer ago than the lease.
    Found { delivery: Delivery, stale: bool },
}

/// Who marks a delivery `sending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    /// The job the message belongs to: the registration's run for the confirmation, the
    /// decision's job for a decision email.
    Registration,
    /// The support resend opened by this audit log entry.
    Resend { audit_id: i64 },
}

/// Marks the delivery of `message` `sending`, which only one run can do: from nothing, or
/// from `failed` (the server refused it before; a re-driven job tries again); a support
/// resend marks it whatever it was, unless this same resend marked it already (its job ran
/// twice). Otherwise says how it stands, and whether it was marked more than `lease` ago.
pub async fn mark_sending(
    pool: &PgPool,
    id: RegistrationId,
    message: MessageKey,
    message_id: &str,
    sender: Sender,
    lease: Duration,
) -> Result<Marked, DbError> {
    let resend_of = match sender {
        Sender::Registration => None,
        Sender::Resend { audit_id } => Some(audit_id),
    };
    let message = message.to_string();
    retrying(|| async {
        let marked = sqlx::query(
            "INSERT INTO email_deliveries
                 (registration_id, message, status, message_id, attempts, resend_of)
             VALUES ($1, $2, 'sending', $3, 1, $4)
             ON CONFLICT (registration_id, message) DO UPDATE
             SET status = 'sending', attempts = email_deliveries.attempts + 1,
                 last_error = NULL, updated_at = now(), resend_of = $4
             WHERE email_deliveries.status IN ('failed', 'suppressed')
                OR ($4 IS NOT NULL AND email_deliveries.resend_of IS DISTINCT FROM $4)",
        )
        .bind(id.as_uuid())
        .bind(&message)
        .bind(message_id)
        .bind(resend_of)
        .execute(pool)
        .await?
        .rows_affected();
        if marked == 1 {
            return Ok(Marked::Marked);
        }
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT status, updated_at < now() - make_interval(secs => $3)
             FROM email_deliveries WHERE registration_id = $1 AND message = $2",
        )
        .bind(id.as_uuid())
        .bind(&message)
        .bind(lease.as_secs_f64())
        .fetch_optional(pool)
        .await?;
        Ok(match found {
            // Deleted between the two statements: nothing stands in the way now.
            None => Marked::Found {
                delivery: Delivery::Failed,
                stale: false,
            },
            Some((status, stale)) => Marked::Found {
                delivery: Delivery::parse(&status).unwrap_or(Delivery::Unknown),
                stale,
            },
        })
    })
    .await
}

/// Records how the delivery of `message` ended.
pub async fn record(
    pool: &PgPool,
    id: RegistrationId,
    message: MessageKey,
    delivery: Delivery,
    last_error: Option<&str>,
) -> Result<(), DbError> {
    let message = message.to_string();
    retrying(|| async {
        sqlx::query(
            "UPDATE email_deliveries SET status = $3, last_error = $4, updated_at = now()
             WHERE registration_id = $1 AND message = $2",
        )
        .bind(id.as_uuid())
        .bind(&message)
        .bind(delivery.as_str())
        .bind(last_error)
        .execute(pool)
        .await?;
        Ok(())
    })
    .await
}

/// A delivery as support staff see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: OffsetDateTime,
}

/// The delivery of the registration's confirmation, if it was ever attempted.
pub async fn find(pool: &PgPool, id: RegistrationId) -> Result<Option<DeliveryRecord>, DbError> {
    find_message(pool, id, MessageKey::Confirmation).await
}

/// The delivery of one of the registration's messages, if it was ever attempted.
pub async fn find_message(
    pool: &PgPool,
    id: RegistrationId,
    message: MessageKey,
) -> Result<Option<DeliveryRecord>, DbError> {
    let row: Option<(String, i32, Option<String>, OffsetDateTime)> = sqlx::query_as(
        "SELECT status, attempts, last_error, updated_at FROM email_deliveries
         WHERE registration_id = $1 AND message = $2",
    )
    .bind(id.as_uuid())
    .bind(message.to_string())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(status, attempts, last_error, updated_at)| DeliveryRecord {
            status,
            attempts,
            last_error,
            updated_at,
        },
    ))
}
