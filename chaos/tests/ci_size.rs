//! The fault suite's scenarios at CI size, against the binaries of this build; `scripts/chaos
//! --full` runs the same code at full size.

use intake_chaos::harness::Binaries;
use intake_chaos::{Scenario, Size};

async fn scenario(scenario: Scenario) {
    let bins = Binaries::beside_current_exe().expect("intake-api and intake-worker are built");
    let logs = tempfile::tempdir().expect("log dir");
    let report = intake_chaos::run(scenario, Size::Ci, bins, logs.path()).await;
    let passed = report.as_ref().is_ok_and(|r| r.passed());
    if !passed {
        // The processes' logs are what tells a failure's cause: kept, and named.
        eprintln!("the system's logs are kept in {}", logs.keep().display());
    }
    let report = report.expect("the scenario ran");
    eprintln!("{}", report.render());
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_crashes() {
    scenario(Scenario::Crashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flaky_outside_services() {
    scenario(Scenario::Flaky).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outage() {
    scenario(Scenario::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart() {
    scenario(Scenario::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input() {
    scenario(Scenario::Hostile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contention() {
    scenario(Scenario::Contention).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_under_worker_crashes() {
    scenario(Scenario::Webhooks).await;
}
