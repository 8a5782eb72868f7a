//! The status repository against a real Redis (docs/contract.md §10): every transition is
//! one atomic compare-and-set that publishes its record, illegal ones are refused with a
//! typed error, and a re-drive racing the workers of the old run ends in one consistent
//! state with its events published.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use intake_shared::domain::RegistrationId;
use intake_shared::errors::JobFailureCode;
use intake_shared::job::{Purpose, RegistrationJob};
use intake_shared::keys::RedisKeys;
use intake_shared::status::{EmailStatus, JobState, StatusRecord, Step};
use intake_shared::validation::{RawForm, validate};
use intake_store::status::{AttemptError, StatusError, StatusRepository, TransitionError};
use time::OffsetDateTime;

fn redis_url() -> String {
    std::env::var("INTAKE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A repository over its own key prefix, whose keys are deleted when it is dropped.
struct Fixture {
    status: StatusRepository,
    keys: RedisKeys,
}

impl Fixture {
    fn new() -> Self {
        let keys = RedisKeys::new(format!("test-store-{}", uuid::Uuid::new_v4().simple()));
        let conn = intake_shared::redis_conn::connect_lazy(&redis_url()).expect("redis url");
        Self {
            status: StatusRepository::new(conn, keys.clone(), Duration::from_secs(60)),
            keys,
        }
    }

    /// A fresh registration's job, its `queued` record created as the api creates it.
    async fn accepted(&self) -> RegistrationJob {
        let job = job();
        let created = self
            .status
            .create(
                job.registration_id,
                &format!("upload-{}", job.registration_id),
            )
            .await
            .expect("create");
        assert!(created);
        job
    }

    /// Every record published for `id` from now on, in order.
    async fn events(&self, id: RegistrationId) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("pubsub");
        pubsub
            .subscribe(self.keys.status_channel(&id))
            .await
            .expect("subscribe");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                let value = serde_json::from_str(&payload).expect("event is JSON");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        rx
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        intake_testkit::redis_keys::delete_matching(&redis_url(), &self.keys.all_pattern());
    }
}

type Value = serde_json::Value;

fn job() -> RegistrationJob {
    let form = RawForm {
        team_name: Some("Rising Stars XI".into()),
        captain_name: Some("Arjun Mehta".into()),
        captain_phone: Some("9876543210".into()),
        captain_email: Some("arjun@example.org".into()),
        vice_captain_name: Some("Ravi Kumar".into()),
        vice_captain_phone: Some("9123456780".into()),
        vice_captain_email: Some("ravi@example.org".into()),
        players: Some(intake_testkit::form::players(11).to_string()),
    };
    RegistrationJob {
        registration_id: RegistrationId::new(),
        request_id: "test-request".into(),
        registration: validate(&form).expect("a valid registration"),
        documents: Vec::new(),
        submitted_at: OffsetDateTime::now_utc(),
        run: 0,
        purpose: Purpose::Register,
        staged_by: None,
    }
}

fn failure() -> AttemptError {
    AttemptError {
        attempt: 3,
        code: JobFailureCode::UploadUnavailable,
        message: "the document store stayed unreachable".into(),
        transient: true,
        at: OffsetDateTime::now_utc(),
    }
}

/// A run's first and last status writes.
async fn run_to_completion(status: &StatusRepository, job: &RegistrationJob) {
    status
        .start(job, 1, Step::ClaimingTeam)
        .await
        .expect("start");
    status
        .complete(job, &[], EmailStatus::Sent)
        .await
        .expect("complete");
}

async fn next(events: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the subscription is open")
}

fn refused(result: Result<(), StatusError>) -> TransitionError {
    match result {
        Err(StatusError::Refused(refused)) => refused,
        other => panic!("expected a refused transition, got {other:?}"),
    }
}

#[tokio::test]
async fn every_transition_publishes_the_record_it_wrote() {
    let fixture = Fixture::new();
    let job = job();
    let id = job.registration_id;
    let mut events = fixture.events(id).await;
    let status = &fixture.status;

    assert!(status.create(id, "upload-1").await.expect("create"));
    assert_eq!(next(&mut events).await["status"], "queued");
    status
        .start(&job, 1, Step::ClaimingTeam)
        .await
        .expect("start");
    assert_eq!(next(&mut events).await["step"], "claiming_team");
    status.step(&job, Step::Saving).await.expect("saving");
    assert_eq!(next(&mut events).await["step"], "saving");
    let team_id = intake_shared::domain::TeamId::from_stored("ICCT-0001".into());
    status.saved(&job, &team_id).await.expect("saved");
    let saved = next(&mut events).await;
    assert_eq!(saved["team_id"], "ICCT-0001");
    assert_eq!(saved["step"], "sending_email");
    assert_eq!(saved["email_status"], "pending");
    status
        .complete(&job, &["upload-1".to_owned()], EmailStatus::Sent)
        .await
        .expect("complete");
    let completed = next(&mut events).await;
    assert_eq!(completed["status"], "completed");
    assert!(completed.get("run").is_none(), "{completed}");
    status.email_resend_queued(id).await.expect("resend queued");
    assert_eq!(next(&mut events).await["email_status"], "pending");
    status
        .email_resent(id, EmailStatus::Failed)
        .await
        .expect("resent");
    assert_eq!(next(&mut events).await["email_status"], "failed");

    let record = status.get(id).await.expect("get").expect("a record");
    assert_eq!(record.status, JobState::Completed);
    assert_eq!(record.team_id.as_deref(), Some("ICCT-0001"));
}

#[tokio::test]
async fn a_failure_and_its_redrive_are_published_and_the_old_run_is_refused() {
    let fixture = Fixture::new();
    let job = fixture.accepted().await;
    let id = job.registration_id;
    let mut events = fixture.events(id).await;
    let status = &fixture.status;

    status
        .start(&job, 3, Step::UploadingFiles)
        .await
        .expect("start");
    next(&mut events).await;
    status.fail(&job, 3, &failure()).await.expect("fail");
    let failed = next(&mut events).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], "UPLOAD_UNAVAILABLE");
    let attempts = status.attempts(id).await.expect("attempts");
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].code, JobFailureCode::UploadUnavailable);
    assert_eq!(attempts[0].attempt, 3);
    let kept = status
        .failed_job(id)
        .await
        .expect("read")
        .expect("payload kept");
    assert_eq!(kept, job);

    let requeued = status.requeue(id, &kept).await.expect("redrive");
    assert_eq!(requeued.job.run, 1);
    let queued = next(&mut events).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["attempts"], 0);
    assert_eq!(queued["error"], Value::Null);

    // A late write from the superseded run changes nothing.
    assert_eq!(
        refused(status.complete(&job, &[], EmailStatus::Sent).await),
        TransitionError::Superseded { run: 0, current: 1 }
    );
    assert_eq!(
        status.get(id).await.expect("get").expect("record").status,
        JobState::Queued
    );
    // A second re-drive of the now queued registration is refused.
    assert!(matches!(
        status.requeue(id, &kept).await,
        Err(StatusError::Refused(TransitionError::NotFailed(
            JobState::Queued
        )))
    ));
}

#[tokio::test]
async fn a_failure_shows_the_codes_fixed_message_and_keeps_the_detail_in_the_attempts() {
    let fixture = Fixture::new();
    let job = fixture.accepted().await;
    let id = job.registration_id;
    let mut events = fixture.events(id).await;
    let status = &fixture.status;
    let detail = "the pastor_letter was refused by the document store: Invalid image file";
    let failure = AttemptError {
        attempt: 1,
        code: JobFailureCode::DocumentRejected,
        message: detail.into(),
        transient: false,
        at: OffsetDateTime::now_utc(),
    };

    status
        .start(&job, 1, Step::UploadingFiles)
        .await
        .expect("start");
    next(&mut events).await;
    status.fail(&job, 1, &failure).await.expect("fail");

    let public = JobFailureCode::DocumentRejected.public_message();
    let published = next(&mut events).await;
    assert_eq!(published["error"]["code"], "DOCUMENT_REJECTED");
    assert_eq!(published["error"]["message"], public);
    let record = status.get(id).await.expect("get").expect("a record");
    let error = record.error.expect("a failed record has an error");
    assert_eq!(error.message, public);
    assert!(!error.message.contains("Invalid image file"), "{error:?}");
    let attempts = status.attempts(id).await.expect("attempts");
    assert_eq!(
        attempts,
        vec![failure],
        "the attempt keeps the detailed message"
    );
}

#[tokio::test]
async fn illegal_transitions_are_refused_and_write_nothing() {
    let fixture = Fixture::new();
    let status = &fixture.status;
    let job = fixture.accepted().await;
    let id = job.registration_id;

    assert_eq!(
        refused(status.step(&job, Step::Saving).await),
        TransitionError::NotStarted
    );
    assert!(matches!(
        status.requeue(id, &job).await,
        Err(StatusError::Refused(TransitionError::NotFailed(
            JobState::Queued
        )))
    ));
    assert_eq!(
        refused(status.email_resend_queued(id).await),
        TransitionError::NotCompleted(JobState::Queued)
    );
    run_to_completion(status, &job).await;
    let before = status.get(id).await.expect("get");
    assert_eq!(
        refused(status.start(&job, 2, Step::ClaimingTeam).await),
        TransitionError::AlreadyCompleted
    );
    assert_eq!(
        refused(status.fail(&job, 2, &failure()).await),
        TransitionError::AlreadyCompleted
    );
    assert!(matches!(
        status.requeue(id, &job).await,
        Err(StatusError::Refused(TransitionError::AlreadyCompleted))
    ));
    assert_eq!(status.get(id).await.expect("get"), before);
    assert!(matches!(
        status.requeue(RegistrationId::new(), &job).await,
        Err(StatusError::Refused(TransitionError::NotFound))
    ));
}

/// Support re-drives a failed registration several times at once while a late worker of
/// the failed run still writes: exactly one re-drive wins, the old run's writes are
/// refused, and the new run then completes with every step published.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrives_racing_the_old_runs_writes_end_in_one_consistent_state() {
    let fixture = Arc::new(Fixture::new());
    for _ in 0..10 {
        let job = fixture.accepted().await;
        let id = job.registration_id;
        let status = fixture.status.clone();
        status
            .start(&job, 1, Step::UploadingFiles)
            .await
            .expect("start");
        status.fail(&job, 1, &failure()).await.expect("fail");
        let mut events = fixture.events(id).await;

        let redrives: Vec<_> = (0..4)
            .map(|_| {
                let (status, job) = (status.clone(), job.clone());
                tokio::spawn(async move { status.requeue(id, &job).await })
            })
            .collect();
        let late_writes: Vec<_> = (0..2)
            .map(|n| {
                let (status, job) = (status.clone(), job.clone());
                tokio::spawn(async move {
                    if n == 0 {
                        status.complete(&job, &[], EmailStatus::Sent).await
                    } else {
                        status.start(&job, 2, Step::ClaimingTeam).await
                    }
                })
            })
            .collect();
        let mut winners = Vec::new();
        for redrive in redrives {
            match redrive.await.expect("task") {
                Ok(requeued) => winners.push(requeued),
                Err(StatusError::Refused(TransitionError::NotFailed(JobState::Queued))) => {}
                Err(other) => panic!("unexpected re-drive outcome {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "exactly one re-drive wins");
        for write in late_writes {
            let refusal = refused(write.await.expect("task"));
            assert!(
                matches!(
                    refusal,
                    TransitionError::AlreadyFailed
                        | TransitionError::Superseded { run: 0, current: 1 }
                ),
                "{refusal:?}"
            );
        }
        let record: StatusRecord = status.get(id).await.expect("get").expect("record");
        assert_eq!(record.status, JobState::Queued);
        assert_eq!(next(&mut events).await["status"], "queued");

        let new_run = winners.remove(0).job;
        assert_eq!(new_run.run, 1);
        run_to_completion(&status, &new_run).await;
        assert_eq!(next(&mut events).await["status"], "processing");
        assert_eq!(next(&mut events).await["status"], "completed");
        assert_eq!(
            refused(status.complete(&job, &[], EmailStatus::Sent).await),
            TransitionError::Superseded { run: 0, current: 1 }
        );
    }
}

/// A worker failing a registration while support re-drives it: either the re-drives all see
/// it still processing and are refused (it ends failed), or one comes after the failure and
/// wins (it ends queued as the next run). Never both, never neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redrive_racing_the_final_failure_is_all_or_nothing() {
    let fixture = Fixture::new();
    for _ in 0..20 {
        let job = fixture.accepted().await;
        let id = job.registration_id;
        let status = fixture.status.clone();
        status
            .start(&job, 1, Step::UploadingFiles)
            .await
            .expect("start");
        let fail = {
            let (status, job) = (status.clone(), job.clone());
            tokio::spawn(async move { status.fail(&job, 1, &failure()).await })
        };
        let redrives: Vec<_> = (0..3)
            .map(|_| {
                let (status, job) = (status.clone(), job.clone());
                tokio::spawn(async move { status.requeue(id, &job).await })
            })
            .collect();
        fail.await.expect("task").expect("the failure is written");
        let mut won = 0;
        for redrive in redrives {
            match redrive.await.expect("task") {
                Ok(_) => won += 1,
                Err(StatusError::Refused(TransitionError::NotFailed(_))) => {}
                Err(other) => panic!("unexpected re-drive outcome {other:?}"),
            }
        }
        let record = status.get(id).await.expect("get").expect("record");
        match won {
            0 => assert_eq!(record.status, JobState::Failed),
            1 => assert_eq!(record.status, JobState::Queued),
            n => panic!("{n} re-drives won"),
        }
    }
}

/// A failed registration's kept payload holds the team's personal data: it expires with the
/// retention, as its staged files do (docs/contract.md §10).
#[tokio::test]
async fn a_failed_registrations_payload_expires_with_the_retention() {
    let fixture = Fixture::new();
    let job = fixture.accepted().await;
    let id = job.registration_id;
    fixture
        .status
        .start(&job, 1, Step::ClaimingTeam)
        .await
        .expect("start");
    fixture
        .status
        .fail(&job, 1, &failure())
        .await
        .expect("fail");
    let mut conn = redis::Client::open(redis_url())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let ttl: i64 = redis::cmd("TTL")
        .arg(fixture.keys.failed_job(&id))
        .query(&mut conn)
        .expect("ttl");
    assert!((1..=60).contains(&ttl), "payload TTL {ttl}");
    assert!(fixture.status.failed_job(id).await.expect("read").is_some());
}

/// Support discards a failed registration: its record, failed-index entry, payload and
/// attempt history go in one step; anything but a failed registration is refused.
#[tokio::test]
async fn a_discard_removes_a_failed_registration_and_refuses_any_other() {
    let fixture = Fixture::new();
    let job = fixture.accepted().await;
    let id = job.registration_id;
    assert_eq!(
        refused(fixture.status.discard(id, &[]).await),
        TransitionError::NotFailed(JobState::Queued)
    );
    fixture
        .status
        .start(&job, 1, Step::ClaimingTeam)
        .await
        .expect("start");
    fixture
        .status
        .fail(&job, 1, &failure())
        .await
        .expect("fail");
    fixture.status.discard(id, &[]).await.expect("discard");
    assert!(fixture.status.get(id).await.expect("read").is_none());
    assert!(fixture.status.failed_job(id).await.expect("read").is_none());
    assert!(fixture.status.attempts(id).await.expect("read").is_empty());
    let failed = fixture
        .status
        .failed_range("+inf", "-inf", 0, 10)
        .await
        .expect("failed index");
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        refused(fixture.status.discard(id, &[]).await),
        TransitionError::NotFound
    );

    let done = fixture.accepted().await;
    run_to_completion(&fixture.status, &done).await;
    assert_eq!(
        refused(fixture.status.discard(done.registration_id, &[]).await),
        TransitionError::AlreadyCompleted
    );
}
