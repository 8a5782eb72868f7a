//! The fault suite. Each scenario starts its own system from the real binaries
//! ([`harness::Harness`]), drives load through the HTTP API while it injects its fault,
//! and checks the invariants from outside ([`invariants`]), returning a [`report::Report`].
//! `scripts/chaos` runs them at full size; `tests/ci_size.rs` runs them smaller in CI.

pub mod harness;
pub mod invariants;
pub mod load;
pub mod report;
pub mod scenarios;

use std::path::Path;

use harness::Binaries;
use report::Report;

/// How big a run is: the full sizes (docs/reliability.md), or the reduced ones CI runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    Ci,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Crashes,
    Flaky,
    Postgres,
    Redis,
    Hostile,
    Contention,
    Webhooks,
}

impl Scenario {
    pub const ALL: [Scenario; 7] = [
        Scenario::Crashes,
        Scenario::Flaky,
        Scenario::Postgres,
        Scenario::Redis,
        Scenario::Hostile,
        Scenario::Contention,
        Scenario::Webhooks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Crashes => "crashes",
            Scenario::Flaky => "flaky",
            Scenario::Postgres => "postgres",
            Scenario::Redis => "redis",
            Scenario::Hostile => "hostile",
            Scenario::Contention => "contention",
            Scenario::Webhooks => "webhooks",
        }
    }
}

/// Runs one scenario; its processes log under `logs`.
pub async fn run(
    scenario: Scenario,
    size: Size,
    bins: Binaries,
    logs: &Path,
) -> anyhow::Result<Report> {
    match scenario {
        Scenario::Crashes => scenarios::crashes::run(bins, size, logs).await,
        Scenario::Flaky => scenarios::flaky::run(bins, size, logs).await,
        Scenario::Postgres => scenarios::postgres::run(bins, size, logs).await,
        Scenario::Redis => scenarios::redis::run(bins, size, logs).await,
        Scenario::Hostile => scenarios::hostile::run(bins, size, logs).await,
        Scenario::Contention => scenarios::contention::run(bins, size, logs).await,
        Scenario::Webhooks => scenarios::webhooks::run(bins, size, logs).await,
    }
}
