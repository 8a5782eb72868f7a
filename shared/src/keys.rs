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
        format!("{}:status-events:{id}", self.prefix)
    }

    /// Registrations whose job failed for good, scored by the time it failed.
    pub fn failed_index(&self) -> String {
        format!("{}:failed", self.prefix)
    }

    /// One fixed window of one client's submission counter.
    pub fn rate_limit(&self, client: &str, window: &str, bucket: u64) -> String {
        format!("{}:ratelimit:{window}:{bucket}:{client}", self.prefix)
    }

    /// A pattern matching every key of this deployment, for tests and tooling that clean up.
    pub fn all_pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }
}
