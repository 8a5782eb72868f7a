//! The api's own metrics: submissions by outcome, and the HELP text of each. Request counts
//! and latency are recorded by the shared middleware (`intake_shared::http::metrics`). The
//! queue's numbers are the workers' to report (docs/contract.md §6), not the api's.

/// HELP text of the metrics only the api exports, given once at start-up.
pub fn describe() {
    metrics::describe_counter!(
        "intake_submissions_total",
        metrics::Unit::Count,
        "Registration submissions by outcome (accepted, replayed, rejected) and, for a rejection, its problem code."
    );
    metrics::describe_counter!(
        "intake_staging_syncs_total",
        metrics::Unit::Count,
        "Syncs of the staging filesystem made for strict durability (INTAKE_DURABILITY=strict); each covers every submission that asked while the one before it ran."
    );
    metrics::describe_counter!(
        "intake_staging_synced_requests_total",
        metrics::Unit::Count,
        "Submissions that waited for their staged object to reach stable storage before their answer (strict durability)."
    );
}

/// Counts one submission's outcome (`accepted`, `replayed`, `rejected`) and, for a
/// rejection, the problem code it got.
pub fn submission(outcome: &'static str, code: &'static str) {
    metrics::counter!("intake_submissions_total", "outcome" => outcome, "code" => code)
        .increment(1);
}
