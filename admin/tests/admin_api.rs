//! The admin API (docs/contract.md §14): authentication, listing, re-drive, resend and the
//! audit log.

use std::time::Duration;

use intake_shared::errors::JobFailureCode;
use intake_testkit::admin_stack::{AdminStack, OTHER_TOKEN, TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use intake_testkit::stack::team;
use serde_json::json;

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_need_a_valid_bearer_token() {
    let admin = AdminStack::start().await;
    let url = format!("{}/admin/v1/registrations", admin.base);
    let client = &admin.stack.client;
    let none = client.get(&url).send().await.expect("sent");
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = none.json().await.expect("problem");
    assert_eq!(body["code"], "UNAUTHORIZED");
    let wrong = client
        .get(&url)
        .bearer_auth("support-token-0123456780")
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let right = client
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 200);
    let other = client
        .get(&url)
        .bearer_auth(OTHER_TOKEN)
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 200);
    let redrive = client
        .post(format!("{}/admin/v1/redrive", admin.base))
        .json(&json!({"reason": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(redrive.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_configured_token_refuses_every_call() {
    let admin = AdminStack::start_with(|s| s.admin.tokens = None).await;
    let response = admin.get("/admin/v1/queue").await;
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_registrations_are_listed_newest_first_in_pages() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(admin.failed_registration(&team(n)).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/registrations?status=failed&limit=2&cursor={c}"),
            None => "/admin/v1/registrations?status=failed&limit=2".to_owned(),
        };
        let page = admin.get_json(&path).await;
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            assert_eq!(item["error"]["code"], "DOCUMENT_REJECTED");
            assert_eq!(item["status"], "failed");
            seen.push(item["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted_seen = seen.clone();
    sorted_seen.sort();
    sorted_seen.dedup();
    assert_eq!(
        sorted_seen.len(),
        5,
        "every failed registration once: {seen:?}"
    );
    assert_eq!(seen.last(), Some(&ids[0]), "the oldest failure comes last");
    let other_code = admin
        .get_json("/admin/v1/registrations?status=failed&code=DUPLICATE_TEAM")
        .await;
    assert_eq!(other_code["items"].as_array().map(Vec::len), Some(0));
    let too_big = admin.get("/admin/v1/registrations?limit=101").await;
    assert_eq!(too_big.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_detail_shows_the_detailed_message_the_public_status_does_not() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    let public = JobFailureCode::DocumentRejected.public_message();
    assert_eq!(admin.stack.status(&id).await["error"]["message"], public);

    let shown = admin
        .get_json(&format!("/admin/v1/registrations/{id}"))
        .await;
    assert_eq!(shown["status"]["error"]["message"], public, "{shown}");
    let last = shown["attempt_errors"]
        .as_array()
        .and_then(|a| a.last())
        .unwrap_or_else(|| panic!("an attempt error: {shown}"));
    assert_eq!(last["code"], "DOCUMENT_REJECTED");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("scripted failure")),
        "support sees the document store's own words: {shown}"
    );

    // The failed list shows the code and its public message.
    let page = admin
        .get_json("/admin/v1/registrations?status=failed")
        .await;
    let item = page["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id.as_str()))
        .unwrap_or_else(|| panic!("the failed registration is listed: {page}"));
    assert_eq!(item["error"]["code"], "DOCUMENT_REJECTED");
    assert_eq!(item["error"]["message"], public);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_after_cloudinary_recovers_completes_and_takes_the_next_team_id() {
    let admin = AdminStack::start_with(|s| s.queue.max_attempts = 2).await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(500));
    let id = admin.failed_registration(&TestForm::valid()).await;
    let failed = admin.stack.status(&id).await;
    assert_eq!(failed["error"]["code"], "UPLOAD_UNAVAILABLE");
    assert_eq!(
        failed["team_id"],
        serde_json::Value::Null,
        "a registration that never saved holds no team ID"
    );

    let shown = admin
        .get_json(&format!("/admin/v1/registrations/{id}"))
        .await;
    assert!(
        shown["attempt_errors"]
            .as_array()
            .is_some_and(|a| a.len() >= 2),
        "{shown}"
    );

    admin.stack.cloudinary.set_default(Behaviour::Normal);
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "Cloudinary is back"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        status["team_id"], "ICCT-0001",
        "the first number, at its save"
    );
    assert_eq!(admin.stack.cloudinary.assets().len(), 1, "no second asset");
    assert_eq!(
        admin
            .stack
            .count("SELECT last_value FROM team_id_counters")
            .await,
        1
    );
    assert_eq!(admin.stack.staged_files(), 0);

    let audit = admin
        .get_json(&format!("/admin/v1/audit?registration_id={id}"))
        .await;
    let entries = audit["entries"].as_array().expect("entries");
    let outcomes: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [("redrive", "requested"), ("redrive", "succeeded")]
    );
    assert_eq!(entries[0]["actor"], "alice");
    assert_eq!(entries[0]["reason"], "Cloudinary is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_redrive_by_code_requeues_only_matching_failures() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let rejected = [
        admin.failed_registration(&team(1)).await,
        admin.failed_registration(&team(2)).await,
    ];
    admin.stack.cloudinary.set_default(Behaviour::Normal);
    // A duplicate fails with another code and must stay failed. (The api refuses a known
    // duplicate at the door; this one gets past it as a duplicate the index does not know
    // would: the saved registration's claim in Postgres is moved to its team.)
    let original = admin.stack.submit(&team(3)).await;
    admin.stack.wait_final(&original, FINISH).await;
    let key = intake_shared::domain::TeamKey::new(
        &intake_shared::domain::TeamName::parse("Team Number 004").expect("name"),
        &intake_shared::domain::Phone::parse("9800000004").expect("phone"),
    );
    sqlx::query("UPDATE team_claims SET team_key = $1 WHERE registration_id = $2::uuid")
        .bind(key.as_str())
        .bind(&original)
        .execute(&admin.stack.pool)
        .await
        .expect("claim");
    let duplicate = admin.failed_registration(&team(4)).await;

    let response = admin
        .post(
            "/admin/v1/redrive",
            json!({"reason": "fake fixed", "code": "DOCUMENT_REJECTED"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["requested"], 2);
    assert_eq!(body["requeued"], 2);
    for id in &rejected {
        assert_eq!(
            admin.stack.wait_final(id, FINISH).await["status"],
            "completed"
        );
    }
    assert_eq!(
        admin.stack.status(&duplicate).await["error"]["code"],
        "DUPLICATE_TEAM"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_of_a_completed_registration_is_refused() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "try"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(body["code"], "ALREADY_COMPLETED");
    let audit = admin
        .get_json(&format!("/admin/v1/audit?registration_id={id}"))
        .await;
    assert_eq!(audit["entries"][1]["outcome"], "refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_with_expired_documents_says_so_and_enqueues_nothing() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    for entry in std::fs::read_dir(admin.stack.staging.path()).expect("staging") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    let calls_before = admin.stack.cloudinary.upload_calls();
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "retry"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let body: serde_json::Value = response.json().await.expect("problem");
    assert_eq!(body["code"], "DOCUMENTS_EXPIRED");
    assert_eq!(admin.stack.status(&id).await["status"], "failed");
    let stats = admin.get_json("/admin/v1/queue").await;
    assert_eq!(stats["waiting"], 0);
    assert_eq!(admin.stack.cloudinary.upload_calls(), calls_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actions_need_a_reason() {
    let admin = AdminStack::start().await;
    let id = uuid::Uuid::new_v4();
    for path in [
        format!("/admin/v1/registrations/{id}/redrive"),
        format!("/admin/v1/registrations/{id}/resend-email"),
    ] {
        let response = admin.post(&path, json!({"reason": "   "})).await;
        assert_eq!(response.status(), 400);
        let body: serde_json::Value = response.json().await.expect("problem");
        assert_eq!(body["code"], "REASON_REQUIRED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_email_sends_exactly_one_more_message() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(admin.stack.smtp.messages().len(), 1);
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "captain lost it"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["email_status"], "pending");
    // The worker sends it, then records the outcome on the status and in the audit log.
    let status = intake_testkit::eventually("the resend to end", FINISH, || async {
        let status = admin.stack.status(&id).await;
        (status["email_status"] != "pending").then_some(status)
    })
    .await;
    assert_eq!(status["email_status"], "sent", "{status}");
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(admin.stack.smtp.messages().len(), 2);
    let outcomes = intake_testkit::eventually("the audited outcome", FINISH, || async {
        let audit = admin
            .get_json(&format!("/admin/v1/audit?registration_id={id}"))
            .await;
        let outcomes: Vec<String> = audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|e| e["outcome"].as_str().map(str::to_owned))
            .collect();
        (outcomes.len() == 2).then_some(outcomes)
    })
    .await;
    assert_eq!(outcomes, ["requested", "succeeded"]);
    // Exactly one more: no later run sends it again.
    assert_eq!(admin.stack.smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn show_masks_personal_data_unless_revealed_and_reveal_is_audited() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    let masked = admin
        .get_json(&format!("/admin/v1/registrations/{id}"))
        .await;
    let text = masked.to_string();
    assert!(
        !text.contains("9876543210") && !text.contains("arjun@example.org"),
        "{text}"
    );
    assert_eq!(masked["registration"]["captain"]["phone"], "98******10");
    assert_eq!(masked["team_id"], "ICCT-0001");
    assert_eq!(masked["email"]["status"], "sent");
    assert_eq!(masked["documents"].as_array().map(Vec::len), Some(1));
    let revealed = admin
        .get_json(&format!(
            "/admin/v1/registrations/{id}?reveal=true&reason=call%20back"
        ))
        .await;
    assert_eq!(revealed["registration"]["captain"]["phone"], "9876543210");
    let entries = revealed["audit"].as_array().expect("audit");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "reveal_personal_data" && e["reason"] == "call back")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_log_is_append_only() {
    let admin = AdminStack::start().await;
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{}/redrive", uuid::Uuid::new_v4()),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(response.status(), 404);
    let update = sqlx::query("UPDATE audit_log SET reason = 'changed'")
        .execute(&admin.stack.pool)
        .await;
    assert!(update.is_err(), "updates are refused");
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&admin.stack.pool)
        .await;
    assert!(delete.is_err(), "deletes are refused");
    assert_eq!(admin.stack.count("SELECT count(*) FROM audit_log").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queue_stats_report_waiting_failed_and_workers() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    admin.failed_registration(&TestForm::valid()).await;
    let stats = admin.get_json("/admin/v1/queue").await;
    assert_eq!(stats["failed"], 1);
    assert_eq!(stats["waiting"], 0);
    assert!(
        stats["workers_alive"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );
}

/// A completed registration's status record expires after the retention period; its
/// confirmation can still be resent (the saved row says it is completed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_works_after_the_status_record_expired() {
    let admin =
        AdminStack::start_with(|s| s.staging.retention = std::time::Duration::from_secs(1)).await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    intake_testkit::eventually("the status record to expire", FINISH, || async {
        let response = admin
            .stack
            .client
            .get(format!("{}/v1/registrations/{id}", admin.stack.api_base))
            .send()
            .await
            .ok()?;
        (response.status() == 404).then_some(())
    })
    .await;
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "captain lost it"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    intake_testkit::eventually("the resent email", FINISH, || async {
        (admin.stack.smtp.messages().len() == 2).then_some(())
    })
    .await;
}
