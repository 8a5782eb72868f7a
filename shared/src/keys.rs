//! Every Redis key and queue name Intake uses, built from the configured prefix. No other
//! module spells a key, so several deployments (or parallel test runs) can share one Redis.

use crate::domain::{IdempotencyKey, RegistrationId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisKeys {
    prefix: String,
}

impl RedisKeys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The apalis queue name; apalis-redis derives its own keys (`…:active`, `…:data`, …) from it.
    pub fn queue(&self) -> String {
        format!("{}:registrations", self.prefix)
    }

    /// The apalis queue of webhook deliveries (docs/contract.md §16).
    pub fn deliveries_queue(&self) -> String {
        format!("{}:webhook-deliveries", self.prefix)
    }

    /// The idempotency record of one client key.
    pub fn idempotency(&self, key: &IdempotencyKey) -> String {
        format!("{}:idem:{}", self.prefix, key.as_str())
    }

    /// The status record of one registration.
    pub fn status(&self, id: &RegistrationId) -> String {
        format!("{}:status:{id}", self.prefix)
    }

    /// The pub/sub channel on which a registration's status changes are announced.
    pub fn status_channel(&self, id: &RegistrationId) -> String {
        format!("{}{id}", self.status_channel_prefix())
    }

    /// What every status channel starts with (for one pattern subscription to them all).
    pub fn status_channel_prefix(&self) -> String {
        format!("{}:status-events:", self.prefix)
    }

    /// Registrations whose job failed for good, scored by when it failed (Unix milliseconds).
    pub fn failed_index(&self) -> String {
        format!("{}:failed", self.prefix)
    }

    /// The error of every failed attempt of a registration's job, oldest first.
    pub fn attempts(&self, id: &RegistrationId) -> String {
        format!("{}:attempts:{id}", self.prefix)
    }

    /// The payload of a registration whose job failed for good, kept for a re-drive.
    pub fn failed_job(&self, id: &RegistrationId) -> String {
        format!("{}:failed-job:{id}", self.prefix)
    }

    /// The duplicate index: one field per team registered or in progress (its
    /// [`crate::domain::TeamKey`] digest) naming the registration that holds it.
    pub fn team_index(&self) -> String {
        format!("{}:teams", self.prefix)
    }

    /// The lock that lets one worker at a time rebuild the duplicate index.
    pub fn team_index_lock(&self) -> String {
        format!("{}:teams-rebuild-lock", self.prefix)
    }

    /// The bytes one client has staged that no worker has taken yet, one field per upload.
    pub fn staging_quota(&self, client: &str) -> String {
        format!("{}:staged-bytes:{client}", self.prefix)
    }

    /// Which emails went to one recipient (its address's digest) on one UTC day.
    pub fn mail_cap(&self, day: &str, recipient_digest: &str) -> String {
        format!("{}:mail-cap:{day}:{recipient_digest}", self.prefix)
    }

    /// Which registration a staged upload directory belongs to (absent: none, yet).
    pub fn staged_upload(&self, upload: &str) -> String {
        format!("{}:staged:{upload}", self.prefix)
    }

    /// Failures for good whose Postgres record (and `registration.failed` event) could not
    /// be written yet; workers write them once Postgres answers.
    pub fn deferred_failures(&self) -> String {
        format!("{}:deferred-failures", self.prefix)
    }

    /// The lock that lets one worker at a time sweep the staging area.
    pub fn janitor_lock(&self) -> String {
        format!("{}:janitor-lock", self.prefix)
    }

    /// One fixed window of one client's submission counter.
    pub fn rate_limit(&self, client: &str, window: &str, bucket: u64) -> String {
        format!("{}:ratelimit:{window}:{bucket}:{client}", self.prefix)
    }

    /// A pattern matching every key of this deployment, for tests and tooling that clean up.
    pub fn all_pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// Calls with a missing or wrong admin token from one client (IP address) in its current
    /// one-minute window.
    pub fn admin_auth_failures(&self, client: &str) -> String {
        format!("{}:admin-auth-failures:{client}", self.prefix)
    }

    /// The lease of the one worker process that reports the queue-wide gauges (its random
    /// owner id); every other process reports 0, so a sum over workers is right.
    pub fn metrics_leader(&self) -> String {
        format!("{}:metrics-leader", self.prefix)
    }
}
