//! `INTAKE_DURABILITY` (docs/operations.md, "Durability"): with `strict` the api answers
//! `202` only after the submission's staged object was synced to stable storage, and the
//! syncs of concurrent submissions are shared; with `relaxed` (the default) it never waits
//! for one. (That a sync makes the bytes survive a power cut is the kernel's promise; what
//! is ours is that every accepted submission waited for one, which the counters show.)

mod support;

use intake_shared::staging::Durability;
use support::form::TestForm;
use support::{accepted, spawn_app, spawn_app_with};

/// A counter's value in the api's `/metrics`, 0 when it is absent.
async fn counter(app: &support::TestApp, name: &str) -> u64 {
    let text = app
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn distinct(n: usize) -> TestForm {
    TestForm::valid().set("team_name", &format!("Durable Team {n:03}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_durability_syncs_every_accepted_submission_before_its_answer() {
    let app = spawn_app_with(|s| s.staging.durability = Durability::Strict).await;
    let answers =
        futures::future::join_all((0..24).map(|n| app.submit_new(distinct(n).to_form()))).await;
    for answer in answers {
        accepted(answer).await;
    }
    let synced = counter(&app, "intake_staging_synced_requests_total").await;
    let syncs = counter(&app, "intake_staging_syncs_total").await;
    assert_eq!(synced, 24, "each accepted submission waited for a sync");
    assert!(
        (1..=24).contains(&syncs),
        "{syncs} syncs for 24 submissions"
    );
    // A refused submission stages nothing that needs a sync.
    let refused = app
        .submit_new(TestForm::valid().set("captain_phone", "12").to_form())
        .await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        counter(&app, "intake_staging_synced_requests_total").await,
        24
    );
    assert_eq!(
        app.staged_files().len(),
        24,
        "one object per accepted submission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relaxed_durability_answers_without_a_sync() {
    let app = spawn_app().await;
    assert_eq!(
        app.settings.staging.durability,
        Durability::Relaxed,
        "the default"
    );
    for n in 0..3 {
        accepted(app.submit_new(distinct(n).to_form()).await).await;
    }
    assert_eq!(
        counter(&app, "intake_staging_synced_requests_total").await,
        0
    );
    assert_eq!(counter(&app, "intake_staging_syncs_total").await, 0);
}
