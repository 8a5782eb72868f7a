//! The worker's own metrics: their HELP text, given once at start-up, and the recorders of
//! the ones steps report (email outcomes, the upload breaker). The queue-wide gauges are
//! `queue_gauges`'; the shared ones (`intake_build_info`) `intake_shared::telemetry`'s.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

/// Start-up of the worker's own metrics: their HELP text, and the series alerts take a rate
/// of started at 0, so the rate is defined before the first event.
pub fn start() {
    describe();
    for message in [
        EmailMessage::Confirmation,
        EmailMessage::Decision,
        EmailMessage::Resend,
    ] {
        for outcome in [
            EmailOutcome::Sent,
            EmailOutcome::Failed,
            EmailOutcome::Unknown,
            EmailOutcome::Suppressed,
        ] {
            email_counter(message, outcome).increment(0);
        }
    }
    upload_breaker_open(false);
}

/// HELP text of every metric only the worker exports.
pub fn describe() {
    describe_counter!(
        "intake_worker_jobs_total",
        Unit::Count,
        "Jobs ended by this process: completed, failed (with the failure code), or settled (nothing left for the run to do)."
    );
    describe_counter!(
        "intake_worker_job_retries_total",
        Unit::Count,
        "Attempts that failed transiently and will be retried, by failure code."
    );
    describe_histogram!(
        "intake_worker_job_attempt",
        Unit::Count,
        "Which attempt of its job each run is (1 for the first)."
    );
    describe_histogram!(
        "intake_worker_step_duration_seconds",
        Unit::Seconds,
        "Time one pipeline step took, by step."
    );
    describe_gauge!(
        "intake_worker_jobs_in_flight",
        Unit::Count,
        "Jobs running in this process now."
    );
    describe_counter!(
        "intake_janitor_removed_total",
        Unit::Count,
        "Staged uploads the janitor removed, by reason (orphan, expired, finished)."
    );
    describe_counter!(
        "intake_email_outcomes_total",
        Unit::Count,
        "Emails whose outcome this process decided, by message (confirmation, decision, resend) and outcome (sent, failed, unknown, suppressed)."
    );
    describe_gauge!(
        "intake_upload_breaker_open",
        "1 while this process' circuit breaker in front of the document store refuses calls, else 0."
    );
    describe_gauge!(
        "intake_queue_depth",
        Unit::Count,
        "Jobs waiting (due or scheduled for a retry). Reported by one worker at a time, 0 by the others: sum() and max() are both the queue's."
    );
    describe_gauge!(
        "intake_queue_oldest_waiting_seconds",
        Unit::Seconds,
        "How long the oldest due job has waited. Reported by one worker at a time, 0 by the others."
    );
    describe_gauge!(
        "intake_queue_in_flight",
        Unit::Count,
        "Jobs taken by a live worker and not yet finished, across all workers. Reported by one worker at a time, 0 by the others."
    );
    describe_gauge!(
        "intake_workers_alive",
        Unit::Count,
        "Worker processes with a current heartbeat. Reported by one worker at a time, 0 by the others."
    );
    describe_gauge!(
        "intake_failed_registrations",
        Unit::Count,
        "Registrations failed for good and waiting for support. Reported by one worker at a time, 0 by the others."
    );
}

/// Which email a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailMessage {
    /// The confirmation, sent when the registration completes.
    Confirmation,
    /// The email of an organiser's review decision.
    Decision,
    /// The confirmation again, at support's request.
    Resend,
}

impl EmailMessage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "confirmation",
            Self::Decision => "decision",
            Self::Resend => "resend",
        }
    }
}

/// How a delivery ended, as the run that decided it recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailOutcome {
    Sent,
    Failed,
    /// Sending stopped before the server answered; it is not sent again.
    Unknown,
    /// Every recipient was over the day's email cap.
    Suppressed,
}

impl EmailOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Suppressed => "suppressed",
        }
    }
}

fn email_counter(message: EmailMessage, outcome: EmailOutcome) -> metrics::Counter {
    metrics::counter!(
        "intake_email_outcomes_total",
        "message" => message.as_str(),
        "outcome" => outcome.as_str()
    )
}

/// Counts one email's outcome, once, by the run that decided it.
pub fn email_outcome(message: EmailMessage, outcome: EmailOutcome) {
    email_counter(message, outcome).increment(1);
}

/// Whether the upload breaker refuses calls now.
pub fn upload_breaker_open(open: bool) {
    metrics::gauge!("intake_upload_breaker_open").set(if open { 1.0 } else { 0.0 });
}
