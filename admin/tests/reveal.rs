//! Revealing personal data needs a reason (docs/contract.md §14): without one the call is
//! refused before anything is read, and nothing is audited.

use std::time::Duration;

use intake_testkit::admin_stack::AdminStack;
use intake_testkit::form::TestForm;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reveal_without_a_reason_is_refused_and_not_audited() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, Duration::from_secs(60)).await;
    for query in ["reveal=true", "reveal=true&reason=%20%20"] {
        let refused = admin
            .get(&format!("/admin/v1/registrations/{id}?{query}"))
            .await;
        assert_eq!(refused.status(), 400, "{query}");
        let body: Value = refused.json().await.expect("problem");
        assert_eq!(body["code"], "REASON_REQUIRED", "{query}: {body}");
    }
    let reveals = admin
        .stack
        .count("SELECT count(*) FROM audit_log WHERE action = 'reveal_personal_data'")
        .await;
    assert_eq!(reveals, 0);
    let revealed = admin
        .get_json(&format!(
            "/admin/v1/registrations/{id}?reveal=true&reason=captain%20called"
        ))
        .await;
    assert_eq!(revealed["personal_data"], "revealed");
}
