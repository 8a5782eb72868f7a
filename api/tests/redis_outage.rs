//! Redis unreachable (docs/contract.md §3): 503 `SERVICE_UNAVAILABLE` with `Retry-After`, nothing
//! left behind, and the api recovers by itself when Redis is back.

mod support;

use std::time::{Duration, Instant};

use intake_testkit::private_redis::PrivateRedis;
use support::form::TestForm;
use support::{accepted, problem, spawn_app_with};

#[tokio::test]
async fn redis_never_reachable_is_503_and_leaves_no_staged_file() {
    let app = spawn_app_with(|s| s.redis.url = "redis://127.0.0.1:1".into()).await;
    let response = app.submit_new(TestForm::valid().to_form()).await;
    assert!(response.headers().contains_key("retry-after"));
    problem(response, 503, "SERVICE_UNAVAILABLE").await;
    assert!(app.staged_files().is_empty());
    let ready = app.get("/health/ready").await;
    problem(ready, 503, "SERVICE_UNAVAILABLE").await;
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn rate_limited_api_also_answers_503_when_redis_is_down() {
    let app = spawn_app_with(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.api.rate_limit_per_minute = 10;
    })
    .await;
    let response = app.submit_new(TestForm::valid().to_form()).await;
    problem(response, 503, "SERVICE_UNAVAILABLE").await;
}

#[tokio::test]
async fn redis_stopped_gives_503_and_clean_state_then_recovers() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    let app = spawn_app_with(|s| s.redis.url = url).await;
    accepted(
        app.submit_new(TestForm::valid_for_team("Before Outage").to_form())
            .await,
    )
    .await;
    assert_eq!(app.staged_uploads().len(), 1);

    redis.kill();
    let response = app
        .submit(
            TestForm::valid_for_team("During Outage").to_form(),
            "during",
        )
        .await;
    let retry_after = response.headers().get("retry-after").cloned();
    problem(response, 503, "SERVICE_UNAVAILABLE").await;
    assert!(retry_after.is_some());
    assert_eq!(
        app.staged_uploads().len(),
        1,
        "the refused request staged nothing that stayed"
    );
    problem(app.get("/health/ready").await, 503, "SERVICE_UNAVAILABLE").await;

    redis.resume();
    // The api reconnects on its own; poll with a deadline rather than sleeping blindly.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if app.get("/health/ready").await.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "api did not reconnect to Redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The same key is free again: nothing of the refused attempt was left in Redis.
    accepted(
        app.submit(
            TestForm::valid_for_team("During Outage").to_form(),
            "during",
        )
        .await,
    )
    .await;
}
