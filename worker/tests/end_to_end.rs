//! Through the real api and real workers: a submission ends `completed` with a team ID, its
//! documents in the store, its rows in Postgres and one confirmation email.

use std::collections::BTreeSet;
use std::time::Duration;

use intake_testkit::form::{TestForm, jpeg, pdf};
use intake_testkit::stack::{Stack, team};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn submission_completes_with_team_id_documents_rows_and_email() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(4).await;
    let form = TestForm::valid()
        .file("payment_receipt", pdf(40_000), "receipt.pdf")
        .file("pastor_letter", jpeg(30_000), "letter.jpg");
    let id = stack.submit(&form).await;

    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["team_id"], "ICCT-0001");
    assert_eq!(status["email_status"], "sent");
    assert!(status["step"].is_null() && status["error"].is_null());
    assert_eq!(status["attempts"], 1);

    // Documents: one asset each, under the deterministic public ids, signed correctly.
    let assets = stack.cloudinary.assets();
    let ids: Vec<&str> = assets.iter().map(|a| a.public_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("intake/{id}/pastor_letter"),
            format!("intake/{id}/payment_receipt")
        ]
    );
    assert_eq!(stack.cloudinary.refused_signatures(), 0);
    assert_eq!(assets[1].format, "pdf");
    assert_eq!(assets[1].bytes, 40_000);

    // Rows.
    let (team_id, team_name, phone): (String, String, String) = sqlx::query_as(
        "SELECT team_id, team_name, captain_phone FROM teams WHERE registration_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&stack.pool)
    .await
    .expect("team row");
    assert_eq!(
        (team_id.as_str(), team_name.as_str(), phone.as_str()),
        ("ICCT-0001", "Rising Stars XI", "9876543210")
    );
    assert_eq!(stack.count("SELECT count(*) FROM players").await, 11);
    let documents: Vec<(String, String)> =
        sqlx::query_as("SELECT public_id, secure_url FROM documents ORDER BY kind")
            .fetch_all(&stack.pool)
            .await
            .expect("documents");
    assert_eq!(documents.len(), 2);
    for (public_id, secure_url) in &documents {
        let asset = assets
            .iter()
            .find(|a| &a.public_id == public_id)
            .expect("asset stored");
        assert_eq!(&asset.secure_url, secure_url);
    }

    // One email to the captain, vice-captain in Cc, with the team's details.
    let mails = stack.smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.from, "registrations@intake.example");
    assert_eq!(mail.to, ["arjun@example.org", "ravi@example.org"]);
    assert!(
        mail.data
            .contains("To: \"Arjun Mehta\" <arjun@example.org>"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Cc: \"Ravi Kumar\" <ravi@example.org>"),
        "{}",
        mail.data
    );
    assert!(
        mail.data
            .contains("Subject: Registration confirmed: ICCT-0001"),
        "{}",
        mail.data
    );
    let subject = mail
        .data
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or_default();
    assert!(
        !subject.contains("Rising Stars"),
        "the team name (free text) stays out of the Subject: {subject}"
    );
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));
    assert!(mail.data.contains("Sanjay Patel"), "players are listed");

    // Nothing left in staging.
    assert_eq!(stack.staged_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_every_step_while_polling() {
    let mut stack = Stack::start().await;
    stack
        .cloudinary
        .set_default(intake_testkit::cloudinary::Behaviour::Slow(
            Duration::from_millis(700),
        ));
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let uploading = stack
        .wait_status(&id, "uploading step", |s| s["step"] == "uploading_files")
        .await;
    assert_eq!(uploading["status"], "processing");
    assert_eq!(
        uploading["team_id"],
        serde_json::Value::Null,
        "the team ID comes with the save"
    );
    let done = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["team_id"], "ICCT-0001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_registrations_by_four_workers_get_fifty_sequential_ids() {
    let mut stack = Stack::start().await;
    for _ in 0..4 {
        stack.spawn_worker(8).await;
    }
    let submissions = (0..50).map(|n| {
        let stack = &stack;
        async move { stack.submit(&team(n)).await }
    });
    let ids = futures::future::join_all(submissions).await;
    let mut team_ids = BTreeSet::new();
    for id in &ids {
        let status = stack.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "completed", "{status}");
        team_ids.insert(status["team_id"].as_str().expect("team id").to_owned());
    }
    let expected: BTreeSet<String> = (1..=50).map(|n| format!("ICCT-{n:04}")).collect();
    assert_eq!(team_ids, expected);
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 50);
    assert_eq!(
        stack
            .count("SELECT count(DISTINCT team_id) FROM teams")
            .await,
        50
    );
    assert_eq!(stack.smtp.messages().len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn team_id_format_follows_configuration() {
    let mut stack = Stack::start_with(|s| {
        s.team_ids.prefix = "CUP".into();
        s.team_ids.width = 6;
    })
    .await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["team_id"], "CUP-000001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn team_ids_are_padded_to_the_width_and_never_cut() {
    use intake_shared::config::TeamIdFormat;
    use intake_shared::domain::TeamId;
    use intake_worker::steps::save::{self, Saved};
    let stack = Stack::start().await;
    let format = TeamIdFormat {
        prefix: "CUP".into(),
        width: 4,
    };
    intake_store::pg::migrate(&stack.pool)
        .await
        .expect("migrations");
    for n in 0..3 {
        stack.submit(&team(n)).await;
    }
    sqlx::query("INSERT INTO team_id_counters (prefix, last_value) VALUES ('CUP', 9998)")
        .execute(&stack.pool)
        .await
        .expect("counter");
    let mut jobs = stack.queued_jobs();
    jobs.sort_by_key(|j| j.registration.team_name.to_string());
    for (job, n) in jobs.iter().zip([9999, 10000, 10001]) {
        let saved = save::run(&stack.pool, job, &format, &[])
            .await
            .expect("save");
        assert_eq!(saved, Saved::Inserted(TeamId::format("CUP", 4, n)));
    }
    // A second save of a job finds its ID and moves the counter no further.
    let again = save::run(&stack.pool, &jobs[0], &format, &[])
        .await
        .expect("save again");
    assert_eq!(again, Saved::AlreadySaved(TeamId::format("CUP", 4, 9999)));
    assert_eq!(
        stack
            .count("SELECT last_value FROM team_id_counters WHERE prefix = 'CUP'")
            .await,
        10001
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_backends_store_media_and_write_the_outbox() {
    let media = tempfile::tempdir().expect("media dir");
    let outbox = tempfile::tempdir().expect("outbox dir");
    let (media_path, outbox_path) = (media.path().to_path_buf(), outbox.path().to_path_buf());
    let mut stack = Stack::start_with(move |s| {
        s.cloudinary.url = None;
        s.mail.smtp_url = None;
        s.cloudinary.media_dir = media_path;
        s.mail.outbox_dir = outbox_path;
    })
    .await;
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["email_status"], "sent");
    let stored = media
        .path()
        .join(format!("intake/{id}/payment_receipt.png"));
    assert!(stored.is_file(), "{} exists", stored.display());
    let eml = outbox.path().join(format!("registration-{id}@intake.eml"));
    let text = std::fs::read_to_string(&eml).expect("outbox message");
    assert!(text.contains("ICCT-0001"));
    let (url,): (String,) = sqlx::query_as("SELECT secure_url FROM documents")
        .fetch_one(&stack.pool)
        .await
        .expect("document row");
    assert!(url.starts_with("file:///"), "{url}");
}

/// Support's resend runs as a queued job, and a job can run twice (its worker crashed after
/// sending): the same resend sends one message however often it runs, and a new resend
/// sends again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_support_resend_that_runs_twice_sends_once() {
    use intake_shared::job::Purpose;
    let stack = Stack::start().await;
    let (runtime, job) = one_registration(&stack).await;
    runtime.pipeline().run(&job, 1).await.expect("registration");
    assert_eq!(stack.smtp.messages().len(), 1);

    let resend = |audit_id| {
        let mut resend = job.clone();
        resend.documents.clear();
        resend.purpose = Purpose::ResendEmail {
            actor: "alice".into(),
            reason: "captain lost it".into(),
            audit_id,
        };
        resend
    };
    runtime.pipeline().run(&resend(7), 1).await.expect("resend");
    assert_eq!(stack.smtp.messages().len(), 2);
    runtime
        .pipeline()
        .run(&resend(7), 2)
        .await
        .expect("the same resend again");
    assert_eq!(stack.smtp.messages().len(), 2, "one message per resend");
    runtime
        .pipeline()
        .run(&resend(8), 1)
        .await
        .expect("a new resend");
    assert_eq!(stack.smtp.messages().len(), 3);
    let status = stack.status(&job.registration_id.to_string()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["email_status"], "sent", "{status}");
    assert_eq!(
        stack
            .count("SELECT count(*) FROM audit_log WHERE action = 'resend_email' AND outcome = 'succeeded'")
            .await,
        3,
        "each run of a resend records how it ended"
    );
}

/// Two deliveries of one job at once: one saves (and removes the staged files), the other
/// then fails on the missing files. The failing one must not mark the saved registration
/// failed; it backs off and its next attempt finds the registration saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_twin_run_that_fails_after_the_save_does_not_fail_the_registration() {
    use intake_shared::errors::JobFailureCode;
    use intake_worker::error::StepError;
    let stack = Stack::start().await;
    let (runtime, job) = one_registration(&stack).await;
    let pipeline = runtime.pipeline();
    pipeline
        .status
        .start(&job, 1, intake_shared::status::Step::UploadingFiles)
        .await
        .expect("the twin started");
    let documents = pipeline
        .uploader
        .run(pipeline.staging.as_ref(), &job)
        .await
        .expect("upload");
    intake_worker::steps::save::run(&stack.pool, &job, &Default::default(), &documents)
        .await
        .expect("the other run saved it");

    let expired = StepError::permanent(JobFailureCode::DocumentsExpired, "staged files gone");
    let refused = pipeline.fail(&job, 1, &expired).await;
    assert!(
        matches!(&refused, Err(e) if e.is_transient()),
        "{refused:?}"
    );
    let status = stack.status(&job.registration_id.to_string()).await;
    assert_eq!(status["status"], "processing", "{status}");
    // The next attempt finishes it.
    pipeline.run(&job, 2).await.expect("the next attempt");
    let status = stack.status(&job.registration_id.to_string()).await;
    assert_eq!(status["status"], "completed", "{status}");
}

/// A worker runtime driven by the test, and the job of one submitted registration.
async fn one_registration(
    stack: &Stack,
) -> (intake_worker::Runtime, intake_shared::job::RegistrationJob) {
    let runtime = stack.runtime(1).await;
    intake_store::pg::migrate(&stack.pool)
        .await
        .expect("migrations");
    stack.submit(&TestForm::valid()).await;
    let job = stack.queued_jobs().remove(0);
    (runtime, job)
}
