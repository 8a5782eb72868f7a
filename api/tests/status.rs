//! `GET /v1/registrations/{id}` right after intake (docs/contract.md §4).

mod support;

use support::form::TestForm;
use support::{accepted, spawn_app};

#[tokio::test]
async fn status_is_queued_right_after_acceptance() {
    let app = spawn_app().await;
    let id = accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let response = app.get(&format!("/v1/registrations/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["retry-after"], "1");
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "queued");
    assert!(body["step"].is_null());
    assert_eq!(body["attempts"], 0);
    assert!(body["team_id"].is_null());
    assert!(body["email_status"].is_null());
    assert!(body["error"].is_null());
    assert!(body["created_at"].is_string() && body["updated_at"].is_string());
}

#[tokio::test]
async fn status_carries_no_personal_data() {
    let app = spawn_app().await;
    let id = accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let text = app
        .get(&format!("/v1/registrations/{id}"))
        .await
        .text()
        .await
        .expect("body");
    for personal in [
        "9876543210",
        "arjun@example.org",
        "Arjun",
        "Ravi",
        "Rising Stars",
    ] {
        assert!(!text.contains(personal), "{personal} found in {text}");
    }
}
