//! Discarding a failed registration (docs/contract.md §14): its staged files and personal
//! data go, its claim on the team is freed, and the audit log keeps the tombstone.

use std::time::Duration;

use intake_testkit::admin_stack::{AdminStack, VIEWER_TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_discarded_registration_leaves_only_its_audited_tombstone_and_frees_its_team() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    assert_eq!(admin.stack.staged_files(), 1, "kept for a re-drive");
    let path = format!("/admin/v1/registrations/{id}/discard");

    let viewer = admin
        .post_as(VIEWER_TOKEN, &path, json!({"reason": "spam"}))
        .await;
    assert_eq!(viewer.status(), 403);
    let no_reason = admin.post(&path, json!({})).await;
    assert_eq!(no_reason.status(), 400);

    let discarded = admin
        .post(&path, json!({"reason": "the captain registered again"}))
        .await;
    assert_eq!(discarded.status(), 200);
    let body: Value = discarded.json().await.expect("json");
    assert_eq!(body["status"], "discarded");

    assert_eq!(admin.stack.staged_files(), 0, "staged files removed");
    let status = admin
        .stack
        .client
        .get(format!("{}/v1/registrations/{id}", admin.stack.api_base))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), 404, "its status record is gone");
    let shown = admin.get(&format!("/admin/v1/registrations/{id}")).await;
    assert_eq!(shown.status(), 404, "no personal data left to show");
    let failed = admin
        .get_json("/admin/v1/registrations?status=failed")
        .await;
    assert_eq!(failed["items"].as_array().map(Vec::len), Some(0));
    // Only the queue's own idempotency entry (the registration id and its job's id, no
    // personal data) remains, until it expires.
    let leftovers: Vec<String> = intake_testkit::redis_keys::matching(
        &admin.stack.settings.redis.url,
        &format!("{}:*{id}*", admin.stack.settings.redis.prefix),
    )
    .into_iter()
    .filter(|k| !k.contains(":registrations:idempotency:"))
    .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let audit = admin
        .get_json(&format!("/admin/v1/audit?registration_id={id}"))
        .await;
    let tombstone = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["action"] == "discard" && e["outcome"] == "succeeded")
        .cloned()
        .expect("the tombstone");
    assert_eq!(tombstone["actor"], "alice");
    assert_eq!(tombstone["reason"], "the captain registered again");
    assert_eq!(tombstone["detail"]["code"], "DOCUMENT_REJECTED");
    assert_eq!(tombstone["detail"]["claim_freed"], true);
    assert!(!tombstone.to_string().contains("arjun@example.org"));

    // The team is free: the same team registers again and is saved with the first number.
    admin.stack.cloudinary.set_default(Behaviour::Normal);
    let again = admin.stack.submit(&TestForm::valid()).await;
    let status = admin.stack.wait_final(&again, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["team_id"], "ICCT-0001");

    let twice = admin.post(&path, json!({"reason": "again"})).await;
    assert_eq!(twice.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_failed_registration_can_be_discarded() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    let refused = admin
        .post(
            &format!("/admin/v1/registrations/{id}/discard"),
            json!({"reason": "mistake"}),
        )
        .await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("problem");
    assert_eq!(body["code"], "ALREADY_COMPLETED");
    assert_eq!(admin.stack.count("SELECT count(*) FROM teams").await, 1);
    let audit = admin
        .get_json(&format!("/admin/v1/audit?registration_id={id}"))
        .await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .any(|e| e["action"] == "discard" && e["outcome"] == "refused"),
        "{audit}"
    );
}
