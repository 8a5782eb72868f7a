//! The staging quota (docs/contract.md §2, "Limits"): the bytes one client has staged that no
//! worker has taken yet are capped; past the cap the api answers `429` with `Retry-After`
//! and keeps nothing of the request, other clients are not affected, and the quota comes
//! back as workers take the jobs.

use std::time::Duration;

use intake_testkit::stack::{Stack, team};
use serde_json::Value;

/// Each test form stages one 2 KiB document; the cap holds two of them, not three.
const CAP: u64 = 5_000;

async fn start() -> Stack {
    Stack::start_with(|s| {
        s.api.staging_quota_bytes = CAP;
        s.api.trusted_proxy_header = Some("x-forwarded-for".into());
    })
    .await
}

/// Submits team `n` as the client at `address`.
async fn submit_as(stack: &Stack, address: &str, n: usize) -> reqwest::Response {
    stack
        .client
        .post(format!("{}/v1/registrations", stack.api_base))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("x-forwarded-for", address)
        .multipart(team(n).to_form())
        .send()
        .await
        .expect("submitted")
}

fn held(stack: &Stack, address: &str) -> u64 {
    let total: Option<u64> = redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .and_then(|mut c| {
            redis::cmd("HGET")
                .arg(stack.settings.keys().staging_quota(address))
                .arg("!total")
                .query(&mut c)
        })
        .expect("quota");
    total.unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_over_its_staging_quota_gets_429_and_stages_nothing() {
    let mut stack = start().await;
    for n in 0..2 {
        assert_eq!(submit_as(&stack, "203.0.113.7", n).await.status(), 202);
    }
    assert_eq!(held(&stack, "203.0.113.7"), 2 * 2048);
    let staged = stack.staged_files();
    assert_eq!(staged, 2);

    let refused = submit_as(&stack, "203.0.113.7", 2).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "30");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.expect("problem");
    assert_eq!(problem["code"], "RATE_LIMITED", "{problem}");
    assert_eq!(
        stack.staged_files(),
        staged,
        "the refused request left nothing"
    );
    assert_eq!(
        held(&stack, "203.0.113.7"),
        2 * 2048,
        "nor counted anything"
    );

    // Another client has its own quota.
    assert_eq!(submit_as(&stack, "198.51.100.9", 3).await.status(), 202);

    // Workers take the jobs: the quota comes back.
    stack.spawn_worker(2).await;
    intake_testkit::eventually("quota given back", Duration::from_secs(30), || async {
        (held(&stack, "203.0.113.7") == 0).then_some(())
    })
    .await;
    // Nothing taken is left counted: the client's hash is gone.
    let left = intake_testkit::redis_keys::matching(
        &stack.settings.redis.url,
        &stack.settings.keys().staging_quota("203.0.113.7"),
    );
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(submit_as(&stack, "203.0.113.7", 4).await.status(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_or_replayed_request_gives_its_quota_back() {
    let stack = start().await;
    let key = uuid::Uuid::new_v4().to_string();
    let send = |n: usize| {
        stack
            .client
            .post(format!("{}/v1/registrations", stack.api_base))
            .header("Idempotency-Key", &key)
            .header("x-forwarded-for", "203.0.113.8")
            .multipart(team(n).to_form())
            .send()
    };
    assert_eq!(send(0).await.expect("first").status(), 202);
    // The same key again: a replay, whose staged copy is not needed.
    let replay = send(0).await.expect("replay");
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    // The same key with other content: refused.
    assert_eq!(send(1).await.expect("mismatch").status(), 422);
    assert_eq!(
        held(&stack, "203.0.113.8"),
        2048,
        "only the queued job counts"
    );
    assert_eq!(stack.staged_files(), 1);
}
