//! The email of an organiser's review decision (docs/contract.md §11): a job of its own,
//! to the captain with the vice-captain in Cc, sent once per decision however often its job
//! runs, and leaving the registration's status record as it was.

use std::time::Duration;

use intake_shared::errors::JobFailureCode;
use intake_shared::job::{Purpose, RegistrationJob};
use intake_shared::status::ReviewState;
use intake_store::pg::email_deliveries::{self, MessageKey};
use intake_store::pg::registrations;
use intake_store::pg::teams::{self, NewDecision};
use intake_testkit::form::TestForm;
use intake_testkit::smtp::{ReceivedMail, SmtpBehaviour};
use intake_testkit::stack::Stack;
use intake_worker::Runtime;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_email_goes_to_the_captain_with_the_vice_captain_in_cc() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    decide(
        &stack,
        ReviewState::Approved,
        "Receipt checked: welcome to the cup",
        0,
    )
    .await;

    runtime
        .pipeline()
        .run(&decision_job(&stack, &job, 1).await, 1)
        .await
        .expect("decision email");

    let mails = stack.smtp.messages();
    assert_eq!(mails.len(), 2, "the confirmation, then the decision");
    let mail = &mails[1];
    assert_eq!(mail.from, "registrations@intake.example");
    assert_eq!(mail.to, ["arjun@example.org", "ravi@example.org"]);
    let data = unfolded(mail);
    assert!(
        data.contains("To: \"Arjun Mehta\" <arjun@example.org>"),
        "{data}"
    );
    assert!(
        data.contains("Cc: \"Ravi Kumar\" <ravi@example.org>"),
        "{data}"
    );
    assert!(
        data.contains("Subject: Registration approved: ICCT-0001"),
        "{data}"
    );
    let id = job.registration_id;
    assert!(
        data.contains(&format!("Message-ID: <decision-{id}-1@intake>")),
        "{data}"
    );
    assert!(data.contains("text/plain") && data.contains("text/html"));
    assert!(
        data.contains("Receipt checked: welcome to the cup"),
        "the reason is in the body: {data}"
    );

    let delivery =
        email_deliveries::find_message(&stack.pool, id, MessageKey::Decision { version: 1 })
            .await
            .expect("query")
            .expect("the decision's delivery");
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("sent", 1));
    let (actor, detail): (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, detail FROM audit_log
         WHERE action = 'review' AND detail->>'email' = 'decision' AND outcome = 'succeeded'",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("the email's outcome row");
    assert_eq!(actor, "olga", "under the decision's actor");
    assert_eq!(detail["version"], 1);
    assert_eq!(detail["email_status"], "sent");
}

/// A job can run twice (its worker crashed after sending, or apalis delivered it twice):
/// one message per decision, whether the runs follow each other or overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_job_that_runs_twice_sends_once() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    decide(&stack, ReviewState::Approved, "All in order", 0).await;
    let decision = decision_job(&stack, &job, 1).await;

    let pipeline = runtime.pipeline();
    let (first, twin) = tokio::join!(pipeline.run(&decision, 1), pipeline.run(&decision, 1));
    first.expect("one run");
    twin.expect("its twin");
    assert_eq!(decision_mails(&stack).len(), 1, "twins at once send once");
    pipeline.run(&decision, 2).await.expect("a later run");
    assert_eq!(decision_mails(&stack).len(), 1, "a later run does not send");
    let delivery = email_deliveries::find_message(
        &stack.pool,
        job.registration_id,
        MessageKey::Decision { version: 1 },
    )
    .await
    .expect("query")
    .expect("delivery");
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("sent", 1));
}

/// A run that stopped while sending leaves the delivery `sending`: a later run cannot tell
/// whether the message went out, so it records `unknown` and does not send.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_email_left_sending_by_a_stopped_run_is_not_sent_again() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    decide(&stack, ReviewState::Rejected, "No receipt", 0).await;
    sqlx::query(
        "INSERT INTO email_deliveries (registration_id, message, status, message_id, updated_at)
         VALUES ($1, 'decision-1', 'sending', 'x', now() - interval '1 hour')",
    )
    .bind(job.registration_id.as_uuid())
    .execute(&stack.pool)
    .await
    .expect("delivery marked sending");

    let unknown_before = decisions_unknown();
    runtime
        .pipeline()
        .run(&decision_job(&stack, &job, 1).await, 2)
        .await
        .expect("the re-run");
    assert!(decision_mails(&stack).is_empty());
    assert_eq!(
        decisions_unknown() - unknown_before,
        1.0,
        "the run that gave it up counts it"
    );
    runtime
        .pipeline()
        .run(&decision_job(&stack, &job, 1).await, 3)
        .await
        .expect("another re-run");
    assert_eq!(
        decisions_unknown() - unknown_before,
        1.0,
        "a run that finds it given up does not"
    );
    let delivery = email_deliveries::find_message(
        &stack.pool,
        job.registration_id,
        MessageKey::Decision { version: 1 },
    )
    .await
    .expect("query")
    .expect("delivery");
    assert_eq!(delivery.status, "unknown");
    assert_eq!(
        delivery.last_error.as_deref(),
        Some(intake_worker::steps::notify::UNKNOWN_OUTCOME)
    );
    let confirmation = email_deliveries::find(&stack.pool, job.registration_id)
        .await
        .expect("query")
        .expect("confirmation");
    assert_eq!(
        confirmation.status, "sent",
        "the confirmation is its own delivery"
    );
}

/// `intake_email_outcomes_total{message="decision",outcome="unknown"}` in this process.
fn decisions_unknown() -> f64 {
    let text = intake_shared::telemetry::prometheus().render();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("intake_email_outcomes_total{message=\"decision\",outcome=\"unknown\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("not exported:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_decision_sends_a_second_email() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    let pipeline = runtime.pipeline();
    decide(&stack, ReviewState::Approved, "Looked fine", 0).await;
    pipeline
        .run(&decision_job(&stack, &job, 1).await, 1)
        .await
        .expect("first decision");
    decide(
        &stack,
        ReviewState::Rejected,
        "The receipt is for another team",
        1,
    )
    .await;
    pipeline
        .run(&decision_job(&stack, &job, 2).await, 1)
        .await
        .expect("second decision");
    pipeline
        .run(&decision_job(&stack, &job, 1).await, 2)
        .await
        .expect("the first again");

    let mails = decision_mails(&stack);
    assert_eq!(mails.len(), 2, "one per decision");
    let id = job.registration_id;
    assert!(mails[0].contains(&format!("Message-ID: <decision-{id}-1@intake>")));
    assert!(mails[1].contains(&format!("Message-ID: <decision-{id}-2@intake>")));
    assert!(
        mails[1].contains("Subject: Registration not accepted: ICCT-0001"),
        "{}",
        mails[1]
    );
    assert!(mails[1].contains("The receipt is for another team"));
    assert_eq!(
        stack
            .count("SELECT count(*) FROM email_deliveries WHERE status = 'sent'")
            .await,
        3,
        "the confirmation and two decisions, each its own delivery"
    );
    let confirmation = email_deliveries::find(&stack.pool, id)
        .await
        .expect("query")
        .expect("confirmation");
    assert_eq!(
        (confirmation.status.as_str(), confirmation.attempts),
        ("sent", 1)
    );
}

/// The decision email has no public status: neither its sending nor its failure (retried
/// or for good) changes the registration's status record or its attempt history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_email_leaves_the_status_record_alone() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    let pipeline = runtime.pipeline();
    let id = job.registration_id.to_string();
    let before = stack.status(&id).await;
    assert_eq!(before["status"], "completed", "{before}");

    decide(&stack, ReviewState::Approved, "Fine", 0).await;
    pipeline
        .run(&decision_job(&stack, &job, 1).await, 1)
        .await
        .expect("sent");
    assert_eq!(stack.status(&id).await, before);

    // A refused message: the email fails, the job does not.
    stack.smtp.set_behaviour(SmtpBehaviour::RejectPermanent);
    decide(&stack, ReviewState::Rejected, "Changed our mind", 1).await;
    let second = decision_job(&stack, &job, 2).await;
    pipeline.run(&second, 1).await.expect("the job ends");
    let delivery = email_deliveries::find_message(
        &stack.pool,
        job.registration_id,
        MessageKey::Decision { version: 2 },
    )
    .await
    .expect("query")
    .expect("delivery");
    assert_eq!(delivery.status, "failed");
    assert_eq!(stack.status(&id).await, before);

    // Failures of the job itself are not the registration's either.
    let error = intake_worker::error::StepError::transient(
        JobFailureCode::DatabaseUnavailable,
        "the database was unavailable",
    );
    pipeline.attempt_failed(&second, 1, &error).await;
    pipeline.fail(&second, 5, &error).await.expect("recorded");
    assert_eq!(stack.status(&id).await, before);
    assert_eq!(attempt_history(&stack, &job), 0);
    assert_eq!(
        stack
            .count(
                "SELECT count(*) FROM audit_log
                 WHERE action = 'review' AND detail->>'email' = 'decision' AND outcome = 'failed'"
            )
            .await,
        2,
        "the refused message and the failed job each have their outcome row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_job_for_an_unknown_decision_fails_permanently() {
    let stack = Stack::start().await;
    let (runtime, job) = one_completed_registration(&stack).await;
    let pipeline = runtime.pipeline();
    let before = stack.status(&job.registration_id.to_string()).await;

    let unknown = decision_job(&stack, &job, 1).await;
    let error = pipeline
        .run(&unknown, 1)
        .await
        .expect_err("no decision 1 was made");
    assert!(!error.is_transient(), "{error}");
    assert_eq!(error.code(), JobFailureCode::InternalError);
    assert!(error.message().contains("no review decision 1"), "{error}");
    pipeline.fail(&unknown, 1, &error).await.expect("recorded");

    // A registration that was never saved has no decisions either.
    stack
        .submit(&TestForm::valid_for_team("Never Saved XI"))
        .await;
    let unsaved = stack
        .queued_jobs()
        .into_iter()
        .find(|j| j.registration_id != job.registration_id)
        .expect("the second registration's job");
    let mut not_saved = unsaved.clone();
    not_saved.documents.clear();
    not_saved.purpose = Purpose::ReviewDecision { version: 1 };
    let error = pipeline.run(&not_saved, 1).await.expect_err("not saved");
    assert!(!error.is_transient(), "{error}");
    assert_eq!(error.code(), JobFailureCode::InternalError);

    assert!(decision_mails(&stack).is_empty());
    assert_eq!(stack.status(&job.registration_id.to_string()).await, before);
    let (actor, detail): (String, serde_json::Value) = sqlx::query_as(
        "SELECT actor, detail FROM audit_log
         WHERE action = 'review' AND detail->>'email' = 'decision' AND outcome = 'failed'",
    )
    .fetch_one(&stack.pool)
    .await
    .expect("the failed job's outcome row");
    assert_eq!(
        actor, "intake-worker",
        "no decision, so no organiser to name"
    );
    assert_eq!(detail["email_status"], "failed");
    assert!(
        detail["error"]
            .as_str()
            .is_some_and(|e| e.contains("no review decision 1")),
        "{detail}"
    );
}

/// Through the queue and a real worker: the job the admin service pushes is run and sends
/// the email.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_queued_decision_job_is_run_by_a_worker() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let done = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let registration_id = intake_shared::domain::RegistrationId::parse(&id).expect("uuid");
    decide(&stack, ReviewState::Approved, "See you on the field", 0).await;
    let saved = registrations::load(&stack.pool, registration_id)
        .await
        .expect("load")
        .expect("saved");
    let job = RegistrationJob {
        registration_id,
        request_id: "decision-test".into(),
        registration: saved.registration,
        documents: Vec::new(),
        submitted_at: time::OffsetDateTime::now_utc(),
        run: 0,
        purpose: Purpose::ReviewDecision { version: 1 },
        staged_by: None,
    };
    let redis = intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis");
    let queue = intake_shared::queue::config(&stack.settings.keys(), &stack.settings.queue);
    intake_shared::queue::push(&redis, &queue, &job, &format!("{id}:review:1"), 5)
        .await
        .expect("pushed");

    intake_testkit::eventually("the decision email", Duration::from_secs(30), || async {
        (decision_mails(&stack).len() == 1).then_some(())
    })
    .await;
    assert_eq!(stack.status(&id).await, done);
}

/// A worker runtime driven by the test, and the job of one registration it ran to
/// completion (its confirmation sent).
async fn one_completed_registration(stack: &Stack) -> (Runtime, RegistrationJob) {
    let runtime = stack.runtime(1).await;
    intake_store::pg::migrate(&stack.pool)
        .await
        .expect("migrations");
    stack.submit(&TestForm::valid()).await;
    let job = stack.queued_jobs().remove(0);
    runtime.pipeline().run(&job, 1).await.expect("registration");
    assert_eq!(stack.smtp.messages().len(), 1, "the confirmation");
    (runtime, job)
}

/// Records an organiser's decision on the one team (ICCT-0001), as the admin service does.
async fn decide(stack: &Stack, decision: ReviewState, reason: &str, seen: i32) {
    teams::review(
        &stack.pool,
        "ICCT-0001",
        &NewDecision {
            decision,
            reason,
            payment_verified: decision == ReviewState::Approved,
            version: seen,
            actor: "olga",
            request_id: Some("review-request"),
        },
    )
    .await
    .expect("decision recorded");
}

/// The job the admin service pushes for decision `version`: the registration as saved, no
/// documents.
async fn decision_job(stack: &Stack, job: &RegistrationJob, version: i32) -> RegistrationJob {
    let saved = registrations::load(&stack.pool, job.registration_id)
        .await
        .expect("load")
        .expect("saved");
    RegistrationJob {
        registration: saved.registration,
        documents: Vec::new(),
        purpose: Purpose::ReviewDecision { version },
        staged_by: None,
        ..job.clone()
    }
}

/// The decision emails received (not the confirmations), as text with quoted-printable
/// soft line breaks removed.
fn decision_mails(stack: &Stack) -> Vec<String> {
    stack
        .smtp
        .messages()
        .iter()
        .map(unfolded)
        .filter(|data| data.contains("Message-ID: <decision-"))
        .collect()
}

fn unfolded(mail: &ReceivedMail) -> String {
    mail.data.replace("=\r\n", "")
}

/// How many failed attempts the registration's history holds.
fn attempt_history(stack: &Stack, job: &RegistrationJob) -> usize {
    let key = stack.settings.keys().attempts(&job.registration_id);
    redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("LLEN").arg(&key).query(&mut c))
        .expect("attempt history")
}
