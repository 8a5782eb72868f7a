//! Health and metrics endpoints (docs/contract.md §6).

mod support;

use support::form::TestForm;
use support::{accepted, spawn_app};

#[tokio::test]
async fn liveness_and_readiness_answer_when_redis_is_up() {
    let app = spawn_app().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("JSON");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn metrics_report_requests_submissions_and_queue_depth() {
    let app = spawn_app().await;
    accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let _ = app
        .submit_new(TestForm::valid().set("team_name", "X").to_form())
        .await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    assert!(
        text.contains(
            "http_requests_total{route=\"/v1/registrations\",method=\"POST\",status=\"202\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains("intake_submissions_total{outcome=\"accepted\""),
        "{text}"
    );
    assert!(
        text.contains("intake_submissions_total{outcome=\"rejected\",code=\"VALIDATION_FAILED\"}"),
        "{text}"
    );
    assert!(text.contains("intake_queue_depth 1"), "{text}");
}
