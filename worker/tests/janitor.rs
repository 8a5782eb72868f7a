//! The staging janitor: orphans after the grace period, failed registrations' files after
//! retention, and nothing that a queued job still needs.

use std::time::Duration;

use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use intake_testkit::stack::{Stack, team};
use intake_worker::janitor::Janitor;

fn janitor(stack: &Stack, retention: Duration, orphan_grace: Duration) -> Janitor {
    Janitor {
        queue: intake_shared::queue::config(&stack.settings.keys(), &stack.settings.queue),
        staging: std::sync::Arc::new(intake_shared::staging::LocalStaging::new(
            stack.staging.path(),
        )),
        keys: stack.settings.keys(),
        redis: intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url)
            .expect("redis url"),
        retention,
        orphan_grace,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphans_go_after_the_grace_period_and_queued_uploads_stay() {
    let stack = Stack::start().await;
    // An upload an api left behind when it crashed mid-request: no job references it.
    let orphan = stack
        .staging
        .path()
        .join("0123456789abcdef0123456789abcdef");
    std::fs::create_dir(&orphan).expect("orphan dir");
    std::fs::write(orphan.join("payment_receipt.part"), b"half a file").expect("orphan file");
    // A queued registration (no worker runs in this test).
    stack.submit(&TestForm::valid()).await;
    assert_eq!(stack.staged_files(), 2);

    let within_grace = janitor(&stack, Duration::from_secs(3600), Duration::from_secs(3600))
        .sweep()
        .await
        .expect("sweep");
    assert_eq!(within_grace.orphans_removed, 0);
    assert_eq!(stack.staged_files(), 2);

    let past_grace = janitor(&stack, Duration::from_secs(3600), Duration::ZERO)
        .sweep()
        .await
        .expect("sweep");
    assert_eq!(past_grace.orphans_removed, 1);
    assert_eq!(past_grace.kept, 1, "the queued job's upload stays");
    assert!(!orphan.exists());
    assert_eq!(stack.staged_files(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_registrations_keep_their_files_until_retention_ends() {
    let mut stack = Stack::start().await;
    stack.cloudinary.set_default(Behaviour::Fail(400));
    stack.spawn_worker(2).await;
    let id = stack.submit(&team(1)).await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(60)).await["status"],
        "failed"
    );
    assert_eq!(stack.staged_files(), 1);

    let kept = janitor(&stack, Duration::from_secs(3600), Duration::ZERO)
        .sweep()
        .await
        .expect("sweep");
    assert_eq!((kept.kept, kept.expired_removed), (1, 0));
    assert_eq!(stack.staged_files(), 1);

    let expired = janitor(&stack, Duration::ZERO, Duration::ZERO)
        .sweep()
        .await
        .expect("sweep");
    assert_eq!(expired.expired_removed, 1);
    assert_eq!(stack.staged_files(), 0);
    let marks = intake_testkit::redis_keys::matching(
        &stack.settings.redis.url,
        &format!("{}:staged:*", stack.settings.redis.prefix),
    );
    assert!(
        marks.is_empty(),
        "the upload's mark goes with it: {marks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_worker_sweeps_per_interval() {
    let stack = Stack::start().await;
    let a = janitor(&stack, Duration::from_secs(3600), Duration::from_secs(3600));
    let b = janitor(&stack, Duration::from_secs(3600), Duration::from_secs(3600));
    assert!(
        a.sweep_if_due(Duration::from_secs(60))
            .await
            .expect("redis")
            .is_some()
    );
    assert!(
        b.sweep_if_due(Duration::from_secs(60))
            .await
            .expect("redis")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_tasks_leave_no_payload_in_the_queue() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let completed = stack.submit(&team(1)).await;
    assert_eq!(
        stack.wait_final(&completed, Duration::from_secs(60)).await["status"],
        "completed"
    );
    stack.cloudinary.set_default(Behaviour::Fail(400));
    let failed = stack.submit(&team(2)).await;
    assert_eq!(
        stack.wait_final(&failed, Duration::from_secs(60)).await["status"],
        "failed"
    );
    let queue = intake_shared::queue::config(&stack.settings.keys(), &stack.settings.queue);
    // apalis acknowledges a task just after the handler returns.
    let finished = || {
        let done: i64 = redis::Client::open(stack.settings.redis.url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::pipe()
                    .scard(queue.done_jobs_set())
                    .scard(queue.dead_jobs_set())
                    .query::<(i64, i64)>(&mut c)
            })
            .map(|(d, k)| d + k)
            .unwrap_or(0);
        done
    };
    intake_testkit::eventually(
        "both tasks acknowledged",
        Duration::from_secs(10),
        || async { (finished() == 2).then_some(()) },
    )
    .await;
    assert_eq!(stack.queued_jobs().len(), 2, "apalis keeps both payloads");
    let sweep = janitor(&stack, Duration::from_secs(3600), Duration::from_secs(3600))
        .sweep()
        .await
        .expect("sweep");
    assert_eq!(sweep.tasks_forgotten, 2);
    assert!(
        stack.queued_jobs().is_empty(),
        "no personal data left in the queue"
    );
    assert_eq!(finished(), 0);
    // A re-drive still works: the failed registration kept its own copy.
    let payload: Option<String> = redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| {
            redis::cmd("GET")
                .arg(format!(
                    "{}:failed-job:{failed}",
                    stack.settings.redis.prefix
                ))
                .query(&mut c)
        })
        .expect("redis");
    assert!(payload.is_some());
}
