//! The status model of docs/contract.md §4: what a polling client sees of a registration. It holds
//! no personal data, so it can be stored in Redis and served as it is.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::RegistrationId;
use crate::errors::JobFailureCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Processing,
    Completed,
    Failed,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    ClaimingTeam,
    UploadingFiles,
    Saving,
    SendingEmail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailStatus {
    Pending,
    Sent,
    Failed,
    /// Not sent: every recipient had had the day's capped number of emails already
    /// (`INTAKE_MAIL_CAP_PER_RECIPIENT_PER_DAY`); support can still resend it.
    Suppressed,
}

/// Where the organisers' review of a saved team stands (docs/contract.md §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Approved,
    Rejected,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Rejected]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// Why a job failed, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: JobFailureCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusRecord {
    #[schema(value_type = String, format = Uuid)]
    pub id: RegistrationId,
    pub status: JobState,
    pub step: Option<Step>,
    pub attempts: u32,
    /// Set once the registration is saved, e.g. `ICCT-0007`.
    pub team_id: Option<String>,
    pub email_status: Option<EmailStatus>,
    /// The organisers' review of the saved team: `pending` from the save, then `approved`
    /// or `rejected` (docs/contract.md §15).
    #[serde(default)]
    pub review_state: Option<ReviewState>,
    /// Set only when the registration failed.
    pub error: Option<JobError>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl StatusRecord {
    /// The record written when the api accepts a submission.
    pub fn queued(id: RegistrationId, now: OffsetDateTime) -> Self {
        Self {
            id,
            status: JobState::Queued,
            step: None,
            attempts: 0,
            team_id: None,
            email_status: None,
            review_state: None,
            error: None,
            created_at: now,
            updated_at: now,
        }
    }
}
