//! Health and metrics endpoints (docs/contract.md §6).

mod support;

use std::time::Duration;

use intake_api::Application;
use support::form::TestForm;
use support::{accepted, problem, spawn_app, test_settings};

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

/// The queue's numbers are the workers' (one of them reports them, docs/contract.md §6):
/// an api that reported them too would be counted twice by `sum()`.
#[tokio::test]
async fn metrics_report_requests_and_submissions_but_not_the_queue() {
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
    assert!(!text.contains("intake_queue"), "{text}");
    let build_info = format!(
        "intake_build_info{{service=\"api\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build_info), "{text}");
    for name in type_lines(&text) {
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no HELP:\n{text}"
        );
    }
}

/// The names of the metrics a Prometheus text answer declares (its `# TYPE` lines).
fn type_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[tokio::test]
async fn without_a_metrics_address_metrics_are_on_the_api_address() {
    let app = spawn_app().await;
    assert!(app.settings.api.metrics_addr.is_none());
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    assert!(response.text().await.expect("text").contains("# TYPE "));
}

/// `INTAKE_API_METRICS_ADDR`: `/metrics` on that address alone, 404 (problem+json) on the
/// public one, and both listeners stop together.
#[tokio::test]
async fn with_a_metrics_address_metrics_move_there_and_leave_the_public_port() {
    let staging = tempfile::tempdir().expect("staging directory");
    let mut settings = test_settings(staging.path());
    settings.api.metrics_addr = Some("127.0.0.1:0".parse().expect("literal address"));
    let app = Application::build(settings.clone())
        .await
        .expect("the api builds");
    let public = app.local_addr();
    let metrics = app.metrics_addr().expect("a metrics listener");
    assert_ne!(public, metrics);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = intake_testkit::http_client();

    let on_public = client
        .get(format!("http://{public}/metrics"))
        .send()
        .await
        .expect("public address answers");
    problem(on_public, 404, "NOT_FOUND").await;
    let health = client
        .get(format!("http://{public}/health/live"))
        .send()
        .await
        .expect("public address answers");
    assert_eq!(health.status(), 200, "the rest stays on the public address");

    let scraped = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("metrics address answers");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("text");
    assert!(text.contains("intake_build_info{service=\"api\""), "{text}");
    let elsewhere = client
        .get(format!("http://{metrics}/v1/registrations/x"))
        .send()
        .await
        .expect("metrics address answers");
    problem(elsewhere, 404, "NOT_FOUND").await;

    drop(client);
    let _ = stop.send(());
    let finished = tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("both listeners stop on shutdown")
        .expect("server task");
    finished.expect("served without error");
    for addr in [public, metrics] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections"
        );
    }
    intake_testkit::redis_keys::delete_matching(
        &settings.redis.url,
        &settings.redis.keys().all_pattern(),
    );
}
