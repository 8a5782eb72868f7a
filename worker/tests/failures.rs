//! Outside services failing: transient failures are retried until they pass, permanent ones
//! fail the registration with the contract's code, and email never fails a registration.

use std::time::Duration;

use intake_shared::errors::JobFailureCode;
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::{TestForm, pdf};
use intake_testkit::proxy::TcpProxy;
use intake_testkit::smtp::SmtpBehaviour;
use intake_testkit::stack::{Stack, team};

const FINISH: Duration = Duration::from_secs(60);

/// Waits until the worker whose health address is `health` says it is ready (migrated).
async fn worker_ready(health: std::net::SocketAddr) {
    intake_testkit::eventually("worker ready", Duration::from_secs(30), || async {
        let ok = intake_testkit::http_client()
            .get(format!("http://{health}/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        ok.then_some(())
    })
    .await;
}

/// The ids of the submissions accepted; every other one was refused at the door as a
/// duplicate (once the first claim of the team reached the duplicate index).
fn accepted_or_refused_at_the_door(
    answers: Vec<Result<String, (u16, serde_json::Value)>>,
) -> Vec<String> {
    answers
        .into_iter()
        .filter_map(|answer| match answer {
            Ok(id) => Some(id),
            Err((status, problem)) => {
                assert_eq!(status, 409, "{problem}");
                assert_eq!(problem["code"], "DUPLICATE_TEAM", "{problem}");
                None
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_5xx_then_success_completes_after_retries() {
    let mut stack = Stack::start().await;
    stack.cloudinary.script([
        Behaviour::Fail(500),
        Behaviour::Fail(503),
        Behaviour::Fail(502),
    ]);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        stack.cloudinary.assets().len(),
        1,
        "one asset despite the retries"
    );
    assert!(stack.cloudinary.upload_calls() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_connection_broken_before_or_after_storing_uploads_once() {
    let mut stack = Stack::start().await;
    // The second break happens after the fake stored the asset: the retry must find it
    // (same public_id, overwrite=false), not store a second one.
    stack
        .cloudinary
        .script([Behaviour::Reset, Behaviour::LostAnswer]);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(stack.cloudinary.assets().len(), 1, "one asset");
    assert_eq!(
        stack.cloudinary.upload_calls(),
        3,
        "two broken calls, one that answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_outage_longer_than_one_attempt_is_retried_by_the_queue() {
    let mut stack = Stack::start().await;
    // More failures than the in-attempt retries absorb (1 + 3): the job itself is retried.
    stack
        .cloudinary
        .script(std::iter::repeat_n(Behaviour::Fail(500), 6));
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert!(
        status["attempts"].as_u64().is_some_and(|a| a >= 2),
        "{status}"
    );
    assert_eq!(stack.cloudinary.assets().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_hang_times_out_and_is_retried() {
    let mut stack =
        Stack::start_with(|s| s.cloudinary.timeout = std::time::Duration::from_secs(1)).await;
    stack.cloudinary.script([Behaviour::Hang]);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(stack.cloudinary.assets().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_rate_limit_420_is_waited_out() {
    let mut stack = Stack::start().await;
    stack.cloudinary.script([Behaviour::Fail(420)]);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cloudinary_400_fails_document_rejected_and_keeps_staged_files() {
    let mut stack = Stack::start().await;
    stack.cloudinary.set_default(Behaviour::Fail(400));
    stack.spawn_worker(2).await;
    let id = stack
        .submit(&TestForm::valid().file("pastor_letter", pdf(1000), "l.pdf"))
        .await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "DOCUMENT_REJECTED");
    // The public record says the code's fixed sentence, never the document store's words.
    assert_eq!(
        status["error"]["message"],
        JobFailureCode::DocumentRejected.public_message(),
        "{status}"
    );
    assert!(
        !status.to_string().contains("scripted failure"),
        "the fake Cloudinary's error text reached the public status: {status}"
    );
    assert_eq!(
        status["team_id"],
        serde_json::Value::Null,
        "a registration that never saved takes no team ID"
    );
    assert_eq!(
        stack.staged_files(),
        1,
        "the staged object (both documents) is kept for a re-drive"
    );
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 0);
    assert!(stack.smtp.messages().is_empty());
    let failed: Vec<String> = redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| {
            redis::cmd("ZRANGE")
                .arg(stack.settings.keys().failed_index())
                .arg(0)
                .arg(-1)
                .query(&mut c)
        })
        .expect("failed index");
    assert_eq!(failed, [id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_cloudinary_secret_is_refused_by_the_fake() {
    let mut stack = Stack::start_with(|s| {
        s.cloudinary.url = Some(secrecy::SecretString::from(format!(
            "cloudinary://{}:wrong-secret@{}",
            intake_testkit::cloudinary::API_KEY,
            intake_testkit::cloudinary::CLOUD_NAME
        )));
    })
    .await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "failed");
    assert_eq!(status["error"]["code"], "DOCUMENT_REJECTED");
    assert!(stack.cloudinary.refused_signatures() >= 1);
    assert!(stack.cloudinary.assets().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_down_completes_with_email_failed() {
    let mut stack = Stack::start().await;
    stack.smtp.set_behaviour(SmtpBehaviour::Down);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["email_status"], "failed");
    assert_eq!(
        stack
            .count("SELECT count(*) FROM email_deliveries WHERE status = 'failed'")
            .await,
        1
    );
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_permanent_refusal_is_not_retried() {
    let mut stack = Stack::start().await;
    stack.smtp.set_behaviour(SmtpBehaviour::RejectPermanent);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["email_status"], "failed");
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM email_deliveries")
        .fetch_one(&stack.pool)
        .await
        .expect("delivery row");
    assert_eq!(attempts, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_transient_refusal_is_retried_and_sent_once() {
    let mut stack = Stack::start().await;
    stack.smtp.script([
        SmtpBehaviour::RejectTransient,
        SmtpBehaviour::RejectTransient,
    ]);
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["email_status"], "sent", "{status}");
    assert_eq!(stack.smtp.messages().len(), 1);
}

/// A duplicate the door let through (here: the api finds no duplicate index, as after a
/// Redis restart before a worker rebuilt it) is refused by the worker's claim, which Postgres decides,
/// and its staged files go at once rather than after the retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_team_with_a_different_key_fails_duplicate_team() {
    let mut stack = Stack::start().await;
    // The duplicate below gets through the door and is refused by the workers' claim.
    stack.spawn_worker_past_the_door(2).await;
    let first = stack.submit(&TestForm::valid()).await;
    assert_eq!(
        stack.wait_final(&first, FINISH).await["status"],
        "completed"
    );
    // Same team and captain's phone, other capitals, other key.
    let again = TestForm::valid().set("team_name", "RISING  stars xi");
    let second = stack.submit(&again).await;
    let status = stack.wait_final(&second, FINISH).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "DUPLICATE_TEAM");
    assert!(status["team_id"].is_null(), "a duplicate takes no team ID");
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    assert_eq!(stack.smtp.messages().len(), 1);
    assert_eq!(
        stack.staged_files(),
        0,
        "a duplicate's staged files go at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_duplicates_register_one_team() {
    let mut stack = Stack::start().await;
    for _ in 0..3 {
        stack.spawn_worker(4).await;
    }
    let submissions = (0..12).map(|_| {
        let stack = &stack;
        async move { stack.try_submit(&TestForm::valid()).await }
    });
    let ids = accepted_or_refused_at_the_door(futures::future::join_all(submissions).await);
    let mut completed = 0;
    for id in &ids {
        let status = stack.wait_final(id, FINISH).await;
        match status["status"].as_str() {
            Some("completed") => completed += 1,
            _ => assert_eq!(status["error"]["code"], "DUPLICATE_TEAM", "{status}"),
        }
    }
    assert_eq!(completed, 1);
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_during_a_job_is_retried_and_completes() {
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("literal")).await;
    let proxy_addr = proxy.addr.to_string();
    let mut stack = Stack::start_with(|s| s.queue.max_attempts = 20).await;
    stack.settings.database.url = secrecy::SecretString::from(stack.db.url_via(&proxy_addr));
    let health = stack.spawn_worker(2).await;
    // Wait until the worker has migrated and is ready, then cut Postgres off.
    worker_ready(health).await;
    proxy.cut();
    let id = stack.submit(&TestForm::valid()).await;
    let during = stack
        .wait_status(&id, "an attempt against the cut database", |s| {
            s["status"] == "processing"
        })
        .await;
    assert!(during["team_id"].is_null());
    let not_ready = intake_testkit::http_client()
        .get(format!("http://{health}/health/ready"))
        .send()
        .await
        .expect("health");
    assert_eq!(not_ready.status(), 503);
    // Intake keeps accepting while Postgres is cut off: the api never needs it.
    let mut during_cut = Vec::new();
    for n in 0..10 {
        during_cut.push(stack.submit(&intake_testkit::stack::team(100 + n)).await);
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage lasts a while
    assert_ne!(stack.status(&id).await["status"], "completed");
    proxy.restore();
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    for other in &during_cut {
        assert_eq!(stack.wait_final(other, FINISH).await["status"], "completed");
    }
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_authentication_from_the_url_is_used() {
    let server = intake_testkit::smtp::SmtpServer::start_with_auth("intake", "s3cret").await;
    let url = format!("smtp://intake:s3cret@{}", server.addr);
    let mut stack =
        Stack::start_with(move |s| s.mail.smtp_url = Some(secrecy::SecretString::from(url))).await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["email_status"], "sent", "{status}");
    let mails = server.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].user.as_deref(), Some("intake"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn smtp_wrong_password_means_email_failed_not_registration_failed() {
    let server = intake_testkit::smtp::SmtpServer::start_with_auth("intake", "s3cret").await;
    let url = format!("smtp://intake:wrong@{}", server.addr);
    let mut stack =
        Stack::start_with(move |s| s.mail.smtp_url = Some(secrecy::SecretString::from(url))).await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["email_status"], "failed");
    assert!(server.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_simultaneous_registrations_of_one_team_make_one_row() {
    let mut stack = Stack::start().await;
    for _ in 0..4 {
        stack.spawn_worker(16).await;
    }
    let submissions = (0..200).map(|_| {
        let stack = &stack;
        async move { stack.try_submit(&TestForm::valid()).await }
    });
    let ids = accepted_or_refused_at_the_door(futures::future::join_all(submissions).await);
    let mut completed = 0;
    for id in &ids {
        let status = stack.wait_final(id, Duration::from_secs(120)).await;
        match status["status"].as_str() {
            Some("completed") => completed += 1,
            _ => assert_eq!(status["error"]["code"], "DUPLICATE_TEAM", "{status}"),
        }
    }
    assert_eq!(completed, 1);
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    assert_eq!(stack.smtp.messages().len(), 1);
    // The team is claimed before any upload: the duplicates uploaded nothing, and took no
    // team ID (one number was given out).
    assert_eq!(
        stack.count("SELECT last_value FROM team_id_counters").await,
        1
    );
    assert_eq!(
        stack.cloudinary.assets().len(),
        1,
        "one asset, the winner's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_whose_registration_failed_for_good_can_register_again() {
    let mut stack = Stack::start().await;
    stack.cloudinary.script([Behaviour::Fail(400)]);
    stack.spawn_worker(2).await;
    let first = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&first, FINISH).await;
    assert_eq!(status["error"]["code"], "DOCUMENT_REJECTED", "{status}");
    // The captain submits again (a new key): the failed registration's claim on the team
    // is taken over.
    let second = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&second, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        status["team_id"], "ICCT-0001",
        "the failed one took no number"
    );
    // Re-running the first one now finds the team taken and uploads nothing.
    let uploads = stack.cloudinary.upload_calls();
    let job = stack
        .queued_jobs()
        .into_iter()
        .find(|j| j.registration_id.to_string() == first)
        .expect("the first job's payload");
    let runtime = stack.runtime(1).await;
    // Support re-drives it: its next run finds the team taken.
    let requeued = runtime
        .pipeline()
        .status
        .requeue(job.registration_id, &job)
        .await
        .expect("re-drive");
    let error = runtime
        .pipeline()
        .run(&requeued.job, 1)
        .await
        .expect_err("a duplicate now");
    assert_eq!(error.code().as_str(), "DUPLICATE_TEAM");
    assert_eq!(stack.cloudinary.upload_calls(), uploads, "nothing uploaded");
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
}

/// A worker whose host vanishes in the middle of a save sends Postgres no FIN: its
/// session stays open, inside the transaction, holding the team ID counter. Postgres ends
/// such a session after `INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS`, and meanwhile
/// the other workers' allocations give up waiting after `INTAKE_DATABASE_LOCK_TIMEOUT_MS`
/// and try again, instead of queueing behind the lock for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_vanished_workers_open_transaction_does_not_block_team_ids() {
    let mut stack = Stack::start_with(|s| {
        s.database.lock_timeout = std::time::Duration::from_millis(300);
        s.database.idle_in_transaction_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let health = stack.spawn_worker(2).await;
    worker_ready(health).await;
    // The vanished worker: a session set up as the worker's are, that takes the counter's
    // lock (as a save does) and then says nothing more.
    let vanished = intake_store::pg::pool(
        &stack.settings.database,
        intake_worker::db::WORKER_APPLICATION_NAME,
        1,
    )
    .expect("pool");
    let mut tx = vanished.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO team_id_counters AS c (prefix, last_value) VALUES ($1, 1)
         ON CONFLICT (prefix) DO UPDATE SET last_value = c.last_value + 1",
    )
    .bind(&stack.settings.team_ids.prefix)
    .execute(&mut *tx)
    .await
    .expect("counter locked");

    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    // The vanished session's increment was rolled back with it: no number burnt.
    assert_eq!(status["team_id"], "ICCT-0001", "{status}");
    let ended = tx
        .commit()
        .await
        .expect_err("Postgres ended the idle session");
    assert!(
        ended.to_string().contains("idle-in-transaction") || matches!(ended, sqlx::Error::Io(_)),
        "{ended}"
    );
    stack.stop_workers().await;
}

/// Team IDs have no holes (docs/contract.md §5): a registration the document store refuses
/// never takes a number, so the next team saved gets the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_that_fail_take_no_team_id_and_leave_no_hole() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let mut saved = Vec::new();
    for n in 0..3 {
        let id = stack.submit(&team(n)).await;
        saved.push(stack.wait_final(&id, FINISH).await);
    }
    stack.cloudinary.set_default(Behaviour::Fail(400));
    for n in 3..5 {
        let id = stack.submit(&team(n)).await;
        let status = stack.wait_final(&id, FINISH).await;
        assert_eq!(status["error"]["code"], "DOCUMENT_REJECTED", "{status}");
        assert_eq!(status["team_id"], serde_json::Value::Null, "{status}");
    }
    stack.cloudinary.set_default(Behaviour::Normal);
    let id = stack.submit(&team(5)).await;
    saved.push(stack.wait_final(&id, FINISH).await);
    let ids: Vec<&str> = saved
        .iter()
        .map(|s| s["team_id"].as_str().expect("a saved team has its ID"))
        .collect();
    assert_eq!(ids, ["ICCT-0001", "ICCT-0002", "ICCT-0003", "ICCT-0004"]);
    let (stored,): (Vec<String>,) =
        sqlx::query_as("SELECT array_agg(team_id ORDER BY team_id) FROM teams")
            .fetch_one(&stack.pool)
            .await
            .expect("team rows");
    assert_eq!(stored, ids);
}
