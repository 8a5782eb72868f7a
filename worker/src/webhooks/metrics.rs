//! The delivery metrics (docs/operations.md "Webhooks"): attempts by outcome, and the
//! backlog gauges every worker reads from Postgres (the same value from each: take the
//! `max`, not the sum).

use metrics::{Unit, describe_counter, describe_gauge};

/// What became of an attempt (or of a job that made none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed this time; another attempt is scheduled.
    Retried,
    /// Failed for good: the retry window is spent.
    Failed,
    /// The endpoint answered `410 Gone` and is disabled.
    Gone,
    /// The target is not one deliveries may reach.
    Refused,
    /// Put off without an attempt: the endpoint had its most sends in flight.
    Deferred,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Self::Delivered,
        Self::Retried,
        Self::Failed,
        Self::Gone,
        Self::Refused,
        Self::Deferred,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
            Self::Gone => "gone",
            Self::Refused => "refused",
            Self::Deferred => "deferred",
        }
    }
}

pub fn count(outcome: Outcome) {
    metrics::counter!("intake_webhook_deliveries_total", "outcome" => outcome.as_str())
        .increment(1);
}

/// HELP text, and every outcome's series started at 0.
pub fn start() {
    describe_counter!(
        "intake_webhook_deliveries_total",
        Unit::Count,
        "Webhook delivery attempts by outcome (delivered, retried, failed, gone, refused; deferred: put off without an attempt)."
    );
    describe_gauge!(
        "intake_webhook_oldest_undelivered_seconds",
        Unit::Seconds,
        "Age of the oldest event not yet delivered to every endpoint it goes to (0 when none waits). Every worker reports the same value: take the max."
    );
    describe_gauge!(
        "intake_webhook_deliveries_pending",
        Unit::Count,
        "Webhook deliveries waiting for their next attempt. Every worker reports the same value: take the max."
    );
    describe_gauge!(
        "intake_webhook_endpoints_disabled",
        Unit::Count,
        "Webhook endpoints disabled (by an organiser or by a 410 Gone) and not deleted. Every worker reports the same value: take the max."
    );
    for outcome in Outcome::ALL {
        metrics::counter!("intake_webhook_deliveries_total", "outcome" => outcome.as_str())
            .increment(0);
    }
}

pub fn backlog(backlog: &intake_store::pg::deliveries::Backlog) {
    metrics::gauge!("intake_webhook_oldest_undelivered_seconds")
        .set(backlog.oldest_undelivered.as_secs_f64());
    metrics::gauge!("intake_webhook_deliveries_pending").set(backlog.pending as f64);
    metrics::gauge!("intake_webhook_endpoints_disabled").set(backlog.endpoints_disabled as f64);
}
