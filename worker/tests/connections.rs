//! A worker's Postgres connections follow its concurrency without a connection per job
//! (docs/operations.md, "Scaling rules"): jobs hold a connection only for their statements,
//! so many workers stay well under Postgres' `max_connections`, and every job still runs.

use std::time::Duration;

use intake_testkit::cloudinary::Behaviour;
use intake_testkit::stack::{Stack, team};

async fn worker_sessions(stack: &Stack) -> i64 {
    stack
        .count(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'intake-worker'",
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_of_32_hold_at_most_six_connections_each_and_finish_every_job() {
    let mut stack = Stack::start().await;
    // Uploads take long enough that all 64 jobs are in flight at once.
    stack
        .cloudinary
        .set_default(Behaviour::Slow(Duration::from_millis(300)));
    for _ in 0..2 {
        stack.spawn_worker(32).await;
    }
    let submissions = (0..128).map(|n| {
        let stack = &stack;
        async move { stack.submit(&team(n)).await }
    });
    let ids = futures::future::join_all(submissions).await;
    let mut peak = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while stack.count("SELECT count(*) FROM teams").await < 128 {
        peak = peak.max(worker_sessions(&stack).await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all saved in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in &ids {
        let status = stack.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
    assert!(peak > 0, "the sampling saw the workers' sessions");
    assert!(
        peak <= 2 * 6,
        "{peak} sessions for two workers of concurrency 32"
    );
}
