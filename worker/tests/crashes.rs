//! At-least-once delivery, exactly-once effects: a job that runs again after a crash at any
//! step, a worker killed with SIGKILL mid-job, and a worker draining on SIGTERM.

use std::time::Duration;

use intake_store::status::TransitionError;
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::eventually;
use intake_testkit::form::TestForm;
use intake_testkit::stack::{Stack, team};
use intake_worker::error::StepError;
use intake_worker::steps::claim_team::{self, Claim};
use intake_worker::steps::save;

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn job_run_again_after_a_crash_at_each_step_has_its_effects_once() {
    let stack = Stack::start().await;
    let runtime = stack.runtime(2).await;
    intake_store::pg::migrate(&stack.pool)
        .await
        .expect("migrations");
    for n in 0..6 {
        stack.submit(&team(n)).await;
    }
    let mut jobs = stack.queued_jobs();
    jobs.sort_by_key(|j| j.registration.team_name.to_string());
    let pipeline = runtime.pipeline();
    let staging = pipeline.staging.as_ref();

    // Crash right after the team was claimed.
    let claim = claim_team::run(&stack.pool, &jobs[0], None)
        .await
        .expect("claim");
    assert_eq!(claim, Claim::Held);
    pipeline.run(&jobs[0], 2).await.expect("re-run completes");
    assert_eq!(
        stack.status(&jobs[0].registration_id.to_string()).await["team_id"],
        "ICCT-0001"
    );

    // Crash right after the documents were uploaded.
    pipeline
        .uploader
        .run(staging, &jobs[1])
        .await
        .expect("upload");
    pipeline.run(&jobs[1], 2).await.expect("re-run completes");

    // Crash right after the registration was saved.
    claim_team::run(&stack.pool, &jobs[2], None)
        .await
        .expect("claim");
    let docs = pipeline
        .uploader
        .run(staging, &jobs[2])
        .await
        .expect("upload");
    let saved = save::run(&stack.pool, &jobs[2], &Default::default(), &docs)
        .await
        .expect("save");
    pipeline.run(&jobs[2], 2).await.expect("re-run completes");
    assert_eq!(
        stack.status(&jobs[2].registration_id.to_string()).await["team_id"],
        saved.team_id().as_str(),
        "the re-run finds the ID it was saved with"
    );

    // Crash after the email was accepted (the whole job ran; its staged files are gone).
    pipeline.run(&jobs[3], 1).await.expect("first run");
    // The delivery of a completed job again: its first status write is refused, and the
    // run ends there (the handler acknowledges it), touching nothing.
    assert_eq!(
        pipeline.run(&jobs[3], 2).await,
        Err(StepError::Settled(TransitionError::AlreadyCompleted))
    );

    // Crash while sending the email: the delivery was marked `sending` an hour ago and
    // nothing says how it ended. The re-run does not send (the captain may have the
    // message already) and records it `unknown` (`failed` to clients), for support.
    sqlx::query(
        "INSERT INTO email_deliveries (registration_id, status, message_id, updated_at)
         VALUES ($1, 'sending', 'x', now() - interval '1 hour')",
    )
    .bind(jobs[4].registration_id.as_uuid())
    .execute(&stack.pool)
    .await
    .expect("delivery marked sending");
    pipeline.run(&jobs[4], 2).await.expect("re-run completes");
    let status = stack.status(&jobs[4].registration_id.to_string()).await;
    assert_eq!(status["email_status"], "failed", "{status}");
    let (delivery, last_error): (String, String) = sqlx::query_as(
        "SELECT status, last_error FROM email_deliveries WHERE registration_id = $1",
    )
    .bind(jobs[4].registration_id.as_uuid())
    .fetch_one(&stack.pool)
    .await
    .expect("delivery");
    assert_eq!(delivery, "unknown");
    assert_eq!(last_error, intake_worker::steps::notify::UNKNOWN_OUTCOME);

    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 5);

    // A delivery marked `sending` just now belongs to a run that may still be sending (two
    // runs of one job at once): this run waits for its outcome instead of sending too.
    sqlx::query(
        "INSERT INTO email_deliveries (registration_id, status, message_id, updated_at)
         VALUES ($1, 'sending', 'x', now())",
    )
    .bind(jobs[5].registration_id.as_uuid())
    .execute(&stack.pool)
    .await
    .expect("delivery marked sending");
    let pool = stack.pool.clone();
    let other_run = jobs[5].registration_id.as_uuid();
    let finisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        sqlx::query("UPDATE email_deliveries SET status = 'sent' WHERE registration_id = $1")
            .bind(other_run)
            .execute(&pool)
            .await
            .expect("the other run records its send");
    });
    pipeline.run(&jobs[5], 1).await.expect("the twin run");
    finisher.await.expect("finisher");
    let status = stack.status(&jobs[5].registration_id.to_string()).await;
    assert_eq!(status["email_status"], "sent", "{status}");
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT team_id) FROM teams")
            .await,
        6
    );
    assert_eq!(
        stack.count("SELECT last_value FROM team_id_counters").await,
        6,
        "no number was taken twice or skipped"
    );
    assert_eq!(stack.cloudinary.assets().len(), 6, "one asset per document");
    assert_eq!(
        stack.smtp.messages().len(),
        4,
        "one email per registration, none for the one stopped mid-send"
    );
    for job in &jobs {
        let status = stack.status(&job.registration_id.to_string()).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_job_is_replaced_by_another() {
    let mut stack = Stack::start().await;
    stack
        .cloudinary
        .script([Behaviour::Slow(Duration::from_secs(5))]);
    let mut doomed = stack.worker_process(env!("CARGO_BIN_EXE_intake-worker"), 2);
    let id = stack.submit(&TestForm::valid()).await;
    stack
        .wait_status(&id, "the doomed worker to start uploading", |s| {
            s["step"] == "uploading_files"
        })
        .await;
    doomed.kill().expect("SIGKILL");
    let _ = doomed.wait();

    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        status["team_id"], "ICCT-0001",
        "the rescued job kept its team ID"
    );
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    assert_eq!(
        stack.count("SELECT last_value FROM team_id_counters").await,
        1
    );
    assert_eq!(stack.cloudinary.assets().len(), 1);
    assert_eq!(stack.smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_jobs_finish_and_takes_no_new_ones() {
    let stack = Stack::start().await;
    stack
        .cloudinary
        .script([Behaviour::Slow(Duration::from_secs(2))]);
    let worker = stack.worker_process(env!("CARGO_BIN_EXE_intake-worker"), 2);
    let id = stack.submit(&TestForm::valid()).await;
    stack
        .wait_status(&id, "the worker to start uploading", |s| {
            s["step"] == "uploading_files"
        })
        .await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let later = stack.submit(&team(7)).await;
    let worker = std::sync::Mutex::new(worker);
    let exit = eventually("the worker to exit", Duration::from_secs(30), || {
        let exited = worker.lock().expect("lock").try_wait().expect("wait");
        async move { exited }
    })
    .await;
    assert!(exit.success(), "clean exit: {exit:?}");
    let status = stack.status(&id).await;
    assert_eq!(
        status["status"], "completed",
        "the in-flight job finished: {status}"
    );
    assert_eq!(stack.smtp.messages().len(), 1);
    assert_eq!(
        stack.status(&later).await["status"],
        "queued",
        "no job taken after SIGTERM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_reports_health_and_metrics() {
    let mut stack = Stack::start().await;
    let health = stack.spawn_worker(2).await;
    let ready = eventually("worker ready", Duration::from_secs(30), || async {
        let response = intake_testkit::http_client()
            .get(format!("http://{health}/health/ready"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(response)
    })
    .await;
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["checks"]["redis"], "ok");
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(
        intake_testkit::http_client()
            .get(format!("http://{health}/health/live"))
            .send()
            .await
            .expect("live")
            .status(),
        200
    );
    let id = stack.submit(&TestForm::valid()).await;
    stack.wait_final(&id, FINISH).await;
    let metrics = intake_testkit::http_client()
        .get(format!("http://{health}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("intake_worker_jobs_total{outcome=\"completed\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("intake_worker_step_duration_seconds_bucket{step=\"uploading_files\""),
        "{metrics}"
    );
    assert!(metrics.contains("intake_queue_depth"), "{metrics}");
    assert!(
        metrics.contains("intake_worker_jobs_in_flight"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_resumes_by_itself_after_redis_restarts() {
    let mut redis = intake_testkit::private_redis::PrivateRedis::start();
    let url = redis.url();
    let mut stack = Stack::start_with(move |s| s.redis.url = url).await;
    stack.spawn_worker(2).await;
    let before = stack.submit(&team(1)).await;
    assert_eq!(
        stack.wait_final(&before, FINISH).await["status"],
        "completed"
    );

    // Redis dies and comes back empty (no persistence): the worker must register again
    // and take new jobs without anybody restarting it (docs/contract.md §9).
    redis.kill();
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage lasts two seconds
    redis.resume();
    let api_ready = eventually("api ready again", Duration::from_secs(30), || async {
        let response = stack
            .client
            .get(format!("{}/health/ready", stack.api_base))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    let () = api_ready;
    let after = stack.submit(&team(2)).await;
    let status = stack.wait_final(&after, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_restart_loses_no_accepted_registration() {
    let mut redis = intake_testkit::private_redis::PrivateRedis::start_persistent();
    let url = redis.url();
    let mut stack = Stack::start_with(move |s| {
        s.redis.url = url;
        s.queue.max_attempts = 25;
    })
    .await;
    // Slow uploads keep jobs in the queue and in flight when Redis goes down.
    stack
        .cloudinary
        .set_default(Behaviour::Slow(Duration::from_millis(500)));
    stack.spawn_worker(2).await;
    let mut accepted = Vec::new();
    for n in 0..10 {
        accepted.push(stack.submit(&team(n)).await);
    }

    redis.kill();
    // While Redis is down the api refuses with 503 and stages nothing.
    let staged_before = stack.staged_files();
    for n in 10..13 {
        let response = stack
            .client
            .post(format!("{}/v1/registrations", stack.api_base))
            .header("Idempotency-Key", format!("during-outage-{n}"))
            .multipart(team(n).to_form())
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
    }
    assert!(
        stack.staged_files() <= staged_before,
        "refused requests left no files"
    );

    redis.resume();
    for id in &accepted {
        let status = stack.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 10);
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT team_id) FROM teams")
            .await,
        10
    );
}
