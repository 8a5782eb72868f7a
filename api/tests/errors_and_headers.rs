//! Every answer is problem+json when it is an error (docs/contract.md §3), and every answer carries
//! a request id and the security headers, whatever produced it.

mod support;

use support::form::TestForm;
use support::{accepted, problem, spawn_app, spawn_app_with};

fn assert_common_headers(response: &reqwest::Response) {
    let h = response.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("referrer-policy"));
    assert!(h.contains_key("content-security-policy"));
    let id = h["x-request-id"].to_str().expect("ascii");
    assert!(!id.is_empty());
}

#[tokio::test]
async fn unknown_route_is_404_problem() {
    let app = spawn_app().await;
    let response = app.get("/no/such/thing").await;
    assert_common_headers(&response);
    problem(response, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn wrong_method_is_405_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/v1/registrations"))
        .send()
        .await
        .expect("sent");
    assert_common_headers(&response);
    assert!(response.headers().contains_key("allow"));
    problem(response, 405, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn not_multipart_is_415_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "k")
        .json(&serde_json::json!({"team_name": "Rising Stars"}))
        .send()
        .await
        .expect("sent");
    assert_common_headers(&response);
    problem(response, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert!(app.redis_keys().is_empty());
}

#[tokio::test]
async fn multipart_without_boundary_is_400_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "k")
        .header("content-type", "multipart/form-data")
        .body("garbage")
        .send()
        .await
        .expect("sent");
    let body = problem(response, 400, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["code"], "MALFORMED_BODY");
    assert!(app.staged_files().is_empty());
}

#[tokio::test]
async fn truncated_multipart_is_400_and_leaves_nothing() {
    let app = spawn_app().await;
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"payment_receipt\"; filename=\"a.png\"\r\n\r\n\u{89}PNG\r\n\u{1a}\nmore bytes but never the closing boundary";
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "k")
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .expect("sent");
    let body = problem(response, 400, "VALIDATION_FAILED").await;
    assert_eq!(body["errors"][0]["field"], "body");
    assert!(app.staged_files().is_empty(), "{:?}", app.staged_files());
    assert!(app.redis_keys().is_empty());
}

#[tokio::test]
async fn body_over_the_cap_is_413_problem() {
    let app = spawn_app_with(|s| s.api.max_body_bytes = 6 * 1024 * 1024).await;
    let form = TestForm::valid()
        .file(
            "payment_receipt",
            support::form::png(5 * 1024 * 1024),
            "a.png",
        )
        .file(
            "pastor_letter",
            support::form::pdf(5 * 1024 * 1024),
            "b.pdf",
        );
    let response = app.submit_new(form.to_form()).await;
    assert_common_headers(&response);
    problem(response, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(app.staged_files().is_empty());
    assert!(app.redis_keys().is_empty());
}

#[tokio::test]
async fn streamed_body_over_the_cap_is_413_problem() {
    // No Content-Length: the cap must hold while the body streams in.
    let app = spawn_app_with(|s| s.api.max_body_bytes = 6 * 1024 * 1024).await;
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"payment_receipt\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\n".to_vec();
    body.resize(7 * 1024 * 1024, b'A');
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "stream")
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .expect("sent");
    problem(response, 413, "PAYLOAD_TOO_LARGE").await;
    assert!(app.staged_files().is_empty());
}

#[tokio::test]
async fn unknown_and_malformed_registration_ids_are_404() {
    let app = spawn_app().await;
    problem(
        app.get(&format!("/v1/registrations/{}", uuid::Uuid::new_v4()))
            .await,
        404,
        "NOT_FOUND",
    )
    .await;
    problem(
        app.get("/v1/registrations/not-a-uuid").await,
        404,
        "NOT_FOUND",
    )
    .await;
    problem(app.get("/v1/registrations/%00%ff").await, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn accepted_answer_carries_request_id_and_security_headers() {
    let app = spawn_app().await;
    let response = app.submit_new(TestForm::valid().to_form()).await;
    assert_common_headers(&response);
    accepted(response).await;
}

#[tokio::test]
async fn sane_incoming_request_id_is_kept_and_travels_into_the_job() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "rid")
        .header("X-Request-ID", "client-req-42")
        .multipart(TestForm::valid().to_form())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "client-req-42");
    accepted(response).await;
    assert_eq!(app.queued_payloads()[0]["request_id"], "client-req-42");
}

#[tokio::test]
async fn insane_incoming_request_id_is_replaced() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .header("X-Request-ID", "has spaces and \"quotes\"")
        .send()
        .await
        .expect("sent");
    let id = response.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_ne!(id, "has spaces and \"quotes\"");
    assert!(uuid::Uuid::parse_str(&id).is_ok());
}

#[tokio::test]
async fn hsts_is_sent_only_when_configured() {
    let plain = spawn_app().await;
    assert!(
        !plain
            .get("/health/live")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );
    let https = spawn_app_with(|s| s.serve.hsts = true).await;
    assert!(
        https
            .get("/health/live")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app =
        spawn_app_with(|s| s.api.cors_allowed_origins = vec!["https://form.example".into()]).await;
    let allowed = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/registrations"))
        .header("Origin", "https://form.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "idempotency-key")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://form.example"
    );
    let refused = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/v1/registrations"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("sent");
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn slow_request_times_out_with_408_problem_and_leaves_nothing() {
    let app = spawn_app_with(|s| s.api.request_timeout = std::time::Duration::from_secs(1)).await;
    let head = b"--B\r\nContent-Disposition: form-data; name=\"team_name\"\r\n\r\nRising".to_vec();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(
        futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok::<_, std::io::Error>(b" Stars\r\n--B--\r\n".to_vec())
        }),
    );
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", "slow")
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("sent");
    problem(response, 408, "REQUEST_TIMEOUT").await;
    assert!(app.staged_files().is_empty());
    assert!(app.redis_keys().is_empty());
}

use futures::StreamExt;
