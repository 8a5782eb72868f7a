//! Roles of admin tokens (docs/contract.md §14): a viewer reads, support also acts on
//! registrations, an organiser may do everything support may. A call the token's role does not
//! allow is `403 FORBIDDEN` and leaves no audit row.

use std::time::Duration;

use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, OTHER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);

async fn assert_forbidden(response: reqwest::Response, what: &str) -> Value {
    assert_eq!(response.status(), 403, "{what}");
    let body: Value = response.json().await.expect("problem");
    assert_eq!(body["code"], "FORBIDDEN", "{what}: {body}");
    body
}

async fn completed_registration(admin: &AdminStack) -> String {
    let id = admin.stack.submit(&TestForm::valid()).await;
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    id
}

async fn audit_actors(admin: &AdminStack, id: &str) -> Vec<String> {
    let audit = admin
        .get_json(&format!("/admin/v1/audit?registration_id={id}"))
        .await;
    audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["actor"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_token_lists_but_cannot_redrive() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    admin.stack.cloudinary.set_default(Behaviour::Normal);

    let list = admin
        .get_as(VIEWER_TOKEN, "/admin/v1/registrations?status=failed")
        .await;
    assert_eq!(list.status(), 200);
    let list: Value = list.json().await.expect("JSON");
    assert_eq!(list["items"][0]["id"], id.as_str());
    for path in [
        format!("/admin/v1/registrations/{id}"),
        "/admin/v1/registrations?status=completed".to_owned(),
        "/admin/v1/queue".to_owned(),
        "/admin/v1/audit".to_owned(),
        format!("/admin/v1/audit?registration_id={id}"),
    ] {
        assert_eq!(
            admin.get_as(VIEWER_TOKEN, &path).await.status(),
            200,
            "GET {path}"
        );
    }

    let one = admin
        .post_as(
            VIEWER_TOKEN,
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "Cloudinary is back"}),
        )
        .await;
    assert_forbidden(one, "re-drive").await;
    let bulk = admin
        .post_as(
            VIEWER_TOKEN,
            "/admin/v1/redrive",
            json!({"reason": "Cloudinary is back", "ids": [id]}),
        )
        .await;
    assert_forbidden(bulk, "bulk re-drive").await;
    assert_eq!(admin.stack.status(&id).await["status"], "failed");
    assert_eq!(admin.get_json("/admin/v1/queue").await["waiting"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_cannot_reveal_personal_data() {
    let admin = AdminStack::start().await;
    let id = completed_registration(&admin).await;
    let masked = admin
        .get_as(VIEWER_TOKEN, &format!("/admin/v1/registrations/{id}"))
        .await;
    assert_eq!(masked.status(), 200);
    let masked: Value = masked.json().await.expect("JSON");
    assert_eq!(masked["personal_data"], "masked");
    assert_eq!(masked["registration"]["captain"]["phone"], "98******10");

    let revealed = admin
        .get_as(
            VIEWER_TOKEN,
            &format!("/admin/v1/registrations/{id}?reveal=true&reason=call%20back"),
        )
        .await;
    let refused = assert_forbidden(revealed, "reveal").await.to_string();
    assert!(!refused.contains("9876543210"), "{refused}");
    assert_eq!(audit_actors(&admin, &id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_cannot_resend_email() {
    let admin = AdminStack::start().await;
    let id = completed_registration(&admin).await;
    let response = admin
        .post_as(
            VIEWER_TOKEN,
            &format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "captain lost it"}),
        )
        .await;
    assert_forbidden(response, "resend").await;
    assert_eq!(admin.stack.status(&id).await["email_status"], "sent");
    assert_eq!(admin.get_json("/admin/v1/queue").await["waiting"], 0);
    assert_eq!(admin.stack.smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forbidden_answer_is_problem_json_with_code_forbidden() {
    let admin = AdminStack::start().await;
    let response = admin
        .post_as(
            VIEWER_TOKEN,
            &format!("/admin/v1/registrations/{}/redrive", uuid::Uuid::new_v4()),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("problem");
    assert_eq!(body["code"], "FORBIDDEN");
    assert_eq!(body["title"], "Forbidden");
    assert_eq!(body["status"], 403);
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("support")),
        "the detail names the role needed: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forbidden_calls_write_no_audit_row() {
    let admin = AdminStack::start().await;
    let id = completed_registration(&admin).await;
    let before = admin.stack.count("SELECT count(*) FROM audit_log").await;
    for (path, body) in [
        (
            format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "x"}),
        ),
        ("/admin/v1/redrive".to_owned(), json!({"reason": "x"})),
        (
            format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "x"}),
        ),
        // Even a call that support would be refused for (no reason) is refused for the role.
        (
            format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": " "}),
        ),
    ] {
        assert_forbidden(admin.post_as(VIEWER_TOKEN, &path, body).await, &path).await;
    }
    let reveal = admin
        .get_as(
            VIEWER_TOKEN,
            &format!("/admin/v1/registrations/{id}?reveal=true&reason=x"),
        )
        .await;
    assert_forbidden(reveal, "reveal").await;
    assert_eq!(
        admin.stack.count("SELECT count(*) FROM audit_log").await,
        before
    );
    let audit = admin.get_json("/admin/v1/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .all(|e| e["actor"] != "carol"),
        "{audit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_legacy_name_token_pair_is_support() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    admin.stack.cloudinary.set_default(Behaviour::Normal);
    let response = admin
        .post_as(
            TOKEN,
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "Cloudinary is back"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        admin.stack.wait_final(&id, FINISH).await["status"],
        "completed"
    );
    let revealed = admin
        .get_as(
            OTHER_TOKEN,
            &format!("/admin/v1/registrations/{id}?reveal=true&reason=call%20back"),
        )
        .await;
    assert_eq!(revealed.status(), 200);
    assert_eq!(audit_actors(&admin, &id).await, ["alice", "alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_can_do_what_support_can() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;
    admin.stack.cloudinary.set_default(Behaviour::Normal);
    for path in [
        "/admin/v1/registrations".to_owned(),
        "/admin/v1/queue".to_owned(),
        "/admin/v1/audit".to_owned(),
    ] {
        assert_eq!(
            admin.get_as(ORGANISER_TOKEN, &path).await.status(),
            200,
            "GET {path}"
        );
    }
    let bulk = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/redrive",
            json!({"reason": "Cloudinary is back", "ids": [id]}),
        )
        .await;
    assert_eq!(bulk.status(), 200);
    assert_eq!(
        admin.stack.wait_final(&id, FINISH).await["status"],
        "completed"
    );
    let revealed = admin
        .get_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/registrations/{id}?reveal=true&reason=call%20back"),
        )
        .await;
    assert_eq!(revealed.status(), 200);
    let revealed: Value = revealed.json().await.expect("JSON");
    assert_eq!(revealed["registration"]["captain"]["phone"], "9876543210");
    let resend = admin
        .post_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "captain lost it"}),
        )
        .await;
    assert_eq!(resend.status(), 202);
    let single = admin
        .post_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/registrations/{id}/redrive"),
            json!({"reason": "again"}),
        )
        .await;
    assert_eq!(single.status(), 409, "allowed, and refused for its state");
    let actors = audit_actors(&admin, &id).await;
    assert!(
        actors.len() >= 5 && actors.iter().all(|a| a == "dave"),
        "{actors:?}"
    );
}
