//! `Idempotency-Key` semantics (docs/contract.md §2): replay, reuse with other content, a request
//! still in progress, abandoned claims, and one job per key under heavy concurrency.

mod support;

use std::collections::HashSet;

use intake_api::intake::idempotency::{Claim, ClaimOutcome, Idempotency};
use intake_shared::domain::IdempotencyKey;
use support::form::TestForm;
use support::{accepted, problem, spawn_app};

#[tokio::test]
async fn replay_with_same_key_returns_same_id() {
    let app = spawn_app().await;
    let form = TestForm::valid();
    let first = app.submit(form.to_form(), "key-1").await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let id = accepted(first).await;
    let second = app.submit(form.to_form(), "key-1").await;
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(accepted(second).await, id);
    assert_eq!(app.queued_jobs(), 1, "a replay enqueues no second job");
    assert_eq!(
        app.staged_uploads().len(),
        1,
        "a replay stages nothing that stays"
    );
}

#[tokio::test]
async fn replay_ignores_part_order_and_file_names() {
    let app = spawn_app().await;
    let id = accepted(app.submit(TestForm::valid().to_form(), "key-order").await).await;
    // Same content, parts in another order and another client file name.
    let reordered = TestForm::valid()
        .remove("team_name")
        .set("team_name", "Rising Stars XI")
        .file("payment_receipt", support::form::png(2048), "IMG_0001.PNG");
    assert_eq!(
        accepted(app.submit(reordered.to_form(), "key-order").await).await,
        id
    );
    assert_eq!(app.queued_jobs(), 1);
}

#[tokio::test]
async fn same_key_with_different_content_is_refused() {
    let app = spawn_app().await;
    accepted(app.submit(TestForm::valid().to_form(), "key-2").await).await;
    let other = TestForm::valid().set("team_name", "Another Team");
    problem(
        app.submit(other.to_form(), "key-2").await,
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(app.queued_jobs(), 1);
    assert_eq!(
        app.staged_uploads().len(),
        1,
        "the refused request's files are gone"
    );
}

/// Claims `key` for `form`'s content the way another api replica would, mid-request.
async fn claim_elsewhere(app: &support::TestApp, key: &str, form: &TestForm) -> Claim {
    let mut conn = redis::Client::open(app.settings.redis.url.as_str())
        .expect("url")
        .get_connection_manager()
        .await
        .expect("redis");
    let idempotency = Idempotency::new(
        app.settings.redis.keys(),
        app.settings.queue.idempotency_ttl,
    );
    let key = IdempotencyKey::parse(key).expect("valid key");
    match idempotency
        .claim(&mut conn, &key, &support::fingerprint(form))
        .await
        .expect("claim")
    {
        ClaimOutcome::Claimed(claim) => claim,
        other => panic!("the first claim is fresh, not {other:?}"),
    }
}

#[tokio::test]
async fn same_key_while_first_is_in_progress_is_409_with_retry_after() {
    let app = spawn_app().await;
    let form = TestForm::valid();
    // Another api replica holds the claim for this exact content right now.
    claim_elsewhere(&app, "key-busy", &form).await;

    let response = app.submit(form.to_form(), "key-busy").await;
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After on 409");
    assert!((1..=15).contains(&retry_after), "retry after {retry_after}");
    problem(response, 409, "REQUEST_IN_PROGRESS").await;
    assert_eq!(app.queued_jobs(), 0);
    assert!(app.staged_files().is_empty());
}

#[tokio::test]
async fn abandoned_claim_is_taken_over_with_its_registration_id() {
    let app = spawn_app().await;
    let form = TestForm::valid();
    let claim = claim_elsewhere(&app, "key-abandoned", &form).await;
    let key = IdempotencyKey::parse("key-abandoned").expect("valid key");
    // The replica that held it died: its lock runs out.
    let _: () = app.redis_command(
        redis::cmd("HSET")
            .arg(app.settings.redis.keys().idempotency(&key))
            .arg("lock_until")
            .arg(0),
    );
    let id = accepted(app.submit(form.to_form(), "key-abandoned").await).await;
    assert_eq!(
        id,
        claim.id.to_string(),
        "the retry keeps the claimed registration id"
    );
    assert_eq!(app.queued_jobs(), 1);
    let replay = app.submit(form.to_form(), "key-abandoned").await;
    assert_eq!(accepted(replay).await, id);
    assert_eq!(app.queued_jobs(), 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_exactly_one_job() {
    let app = std::sync::Arc::new(spawn_app().await);
    let form = TestForm::valid();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let app = app.clone();
        let form = form.clone();
        tasks.push(tokio::spawn(async move {
            let response = app.submit(form.to_form(), "one-key-for-all").await;
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.expect("JSON answer");
            (status, retry_after, body)
        }));
    }
    let mut ids = HashSet::new();
    let mut accepted_count = 0;
    for task in tasks {
        let (status, retry_after, body) = task.await.expect("task");
        match status {
            202 => {
                accepted_count += 1;
                ids.insert(body["id"].as_str().expect("id").to_owned());
            }
            409 => {
                assert_eq!(body["code"], "REQUEST_IN_PROGRESS");
                assert!(retry_after);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(accepted_count >= 1);
    assert_eq!(ids.len(), 1, "every 202 names the same registration");
    assert_eq!(app.queued_jobs(), 1, "exactly one job for one key");
    assert_eq!(
        app.staged_uploads().len(),
        1,
        "only the enqueued job's files stay"
    );
}

#[tokio::test]
async fn missing_key_is_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/registrations"))
        .multipart(TestForm::valid().to_form())
        .send()
        .await
        .expect("sent");
    problem(response, 400, "IDEMPOTENCY_KEY_MISSING").await;
    assert!(app.staged_files().is_empty());
    assert!(app.redis_keys().is_empty());
}

#[tokio::test]
async fn key_of_256_characters_is_invalid() {
    let app = spawn_app().await;
    let response = app
        .submit(TestForm::valid().to_form(), &"k".repeat(256))
        .await;
    problem(response, 400, "IDEMPOTENCY_KEY_INVALID").await;
    assert!(app.redis_keys().is_empty());
}

#[tokio::test]
async fn key_of_255_visible_characters_is_accepted() {
    let app = spawn_app().await;
    accepted(
        app.submit(TestForm::valid().to_form(), &"k~!".repeat(85))
            .await,
    )
    .await;
}

#[tokio::test]
async fn key_with_a_space_is_invalid() {
    let app = spawn_app().await;
    let response = app.submit(TestForm::valid().to_form(), "two words").await;
    problem(response, 400, "IDEMPOTENCY_KEY_INVALID").await;
}

#[tokio::test]
async fn keys_are_kept_for_the_configured_ttl() {
    let app =
        support::spawn_app_with(|s| s.queue.idempotency_ttl = std::time::Duration::from_secs(3600))
            .await;
    accepted(app.submit(TestForm::valid().to_form(), "ttl-key").await).await;
    let key = IdempotencyKey::parse("ttl-key").expect("valid");
    let ttl: i64 =
        app.redis_command(redis::cmd("TTL").arg(app.settings.redis.keys().idempotency(&key)));
    assert!((3500..=3600).contains(&ttl), "ttl {ttl}");
}

/// A key claimed by an api before BLAKE3 holds a bare SHA-256 fingerprint, which this one
/// cannot compare: the key's retry after an upgrade is answered as that key's registration
/// (a replay), never refused as a reuse and never a second job.
#[tokio::test]
async fn a_key_claimed_before_blake3_fingerprints_is_replayed() {
    let app = spawn_app().await;
    let form = TestForm::valid();
    let id = accepted(app.submit(form.to_form(), "key-before-upgrade").await).await;
    let key = IdempotencyKey::parse("key-before-upgrade").expect("key");
    let record = app.settings.redis.keys().idempotency(&key);
    let fingerprint: String = app.redis_command(redis::cmd("HGET").arg(&record).arg("fp"));
    assert!(fingerprint.starts_with("b3:"), "{fingerprint}");
    let () = app.redis_command(
        redis::cmd("HSET")
            .arg(&record)
            .arg("fp")
            .arg("ab".repeat(32)),
    );

    let retry = app.submit(form.to_form(), "key-before-upgrade").await;
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    assert_eq!(accepted(retry).await, id);
    assert_eq!(app.queued_jobs(), 1);
}
