//! `GET /admin/v1/stats` (docs/contract.md §15): registration figures for the console's
//! dashboard. Saved teams and their review states come from Postgres, which keeps them for
//! good; queued, in-flight and failed registrations from Redis, where they live.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use intake_shared::domain::RegistrationId;
use intake_store::pg::teams;
use serde::Serialize;
use time::{Date, Duration, OffsetDateTime};

use crate::auth::Viewer;
use crate::error::AdminError;
use crate::state::AdminState;

/// Days the per-day figures cover, today included.
pub const DAYS: i64 = 30;
/// Failed registrations whose codes are counted, newest first: enough for any tournament,
/// bounded so one call stays one round of reads.
const MAX_FAILED_READ: usize = 10_000;

#[derive(Debug, Serialize)]
pub struct Stats {
    pub registrations: Registrations,
    pub teams: TeamStates,
    pub per_day: Vec<Day>,
    pub failure_codes: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Registrations {
    /// Waiting in the queue (new, retrying or re-driven).
    pub queued: u64,
    /// Being run by a worker now.
    pub processing: u64,
    /// Saved teams.
    pub completed: i64,
    /// Failed for good, waiting for support.
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct TeamStates {
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Day {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub completed: i64,
    pub failed: i64,
}

pub async fn stats(
    State(state): State<AdminState>,
    _actor: Viewer,
) -> Result<Json<Stats>, AdminError> {
    let keys = state.settings.redis.keys();
    let queue =
        intake_shared::queue::stats(&mut state.redis(), &state.queue, &keys.failed_index()).await?;
    let counts = teams::counts_by_state(&state.pool).await?;
    let today = OffsetDateTime::now_utc().date();
    let first = today - Duration::days(DAYS - 1);
    let since = first.midnight().assume_utc();
    let saved = teams::saved_per_day(&state.pool, since).await?;
    let failed = state
        .status
        .failed_range("+inf", "-inf", 0, MAX_FAILED_READ)
        .await?;
    let mut per_day: BTreeMap<Date, Day> = (0..DAYS)
        .map(|n| {
            let date = first + Duration::days(n);
            (
                date,
                Day {
                    date: date.to_string(),
                    completed: 0,
                    failed: 0,
                },
            )
        })
        .collect();
    for (date, n) in saved {
        if let Some(day) = per_day.get_mut(&date) {
            day.completed = n;
        }
    }
    for (_, at_ms) in &failed {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(*at_ms) * 1_000_000).ok();
        if let Some(day) = at.and_then(|at| per_day.get_mut(&at.date())) {
            day.failed += 1;
        }
    }
    let ids: Vec<RegistrationId> = failed
        .iter()
        .filter_map(|(id, _)| RegistrationId::parse(id))
        .collect();
    let mut failure_codes = BTreeMap::new();
    for record in state.status.get_many(&ids).await?.into_iter().flatten() {
        if let Some(error) = record.error {
            *failure_codes
                .entry(error.code.as_str().to_owned())
                .or_insert(0) += 1;
        }
    }
    Ok(Json(Stats {
        registrations: Registrations {
            queued: queue.waiting,
            processing: queue.in_flight,
            completed: counts.total(),
            failed: queue.failed,
        },
        teams: TeamStates {
            pending: counts.pending,
            approved: counts.approved,
            rejected: counts.rejected,
        },
        per_day: per_day.into_values().collect(),
        failure_codes,
    }))
}
