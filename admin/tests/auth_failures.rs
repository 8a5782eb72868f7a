//! The limit on failed token attempts (docs/contract.md §14): a client that presented a missing
//! or wrong token `INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE` times (default 10) within a minute has
//! every further call refused `429 RATE_LIMITED` with `Retry-After`, a good token included,
//! until the minute is over. Counted in Redis under the deployment's prefix, per client.

use std::net::IpAddr;
use std::time::Duration;

use intake_admin::AdminApp;
use intake_admin::auth_failures::{AuthFailures, Verdict, WINDOW};
use intake_shared::keys::RedisKeys;
use intake_testkit::admin_stack::{AdminStack, TOKEN, VIEWER_TOKEN};
use intake_testkit::redis_keys;
use intake_testkit::settings::StackSettings;
use serde_json::Value;

const WRONG_TOKEN: &str = "wrong-token-0123456789-abcdefghijklmnop";

/// One call of the admin API from this test (one client, 127.0.0.1), with `token` if any.
async fn call(admin: &AdminStack, token: Option<&str>) -> reqwest::Response {
    let request = admin
        .stack
        .client
        .get(format!("{}/admin/v1/queue", admin.base));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.expect("admin reachable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_failed_tokens_then_every_call_is_refused_even_with_a_good_token() {
    let admin = AdminStack::start().await;
    for attempt in 1..=10 {
        let token = (attempt % 2 == 1).then_some(WRONG_TOKEN);
        let response = call(&admin, token).await;
        assert_eq!(response.status(), 401, "attempt {attempt} ({token:?})");
        assert!(response.headers().contains_key("www-authenticate"));
    }

    let refused = call(&admin, Some(TOKEN)).await;
    assert_eq!(refused.status(), 429, "a good token after ten failures");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body: Value = refused.json().await.expect("problem");
    assert_eq!(body["code"], "RATE_LIMITED", "{body}");
    assert_eq!(body["status"], 429);
    assert_eq!(body["title"], "Too many requests");
    assert!(body["request_id"].is_string(), "{body}");

    // Guessing on is refused the same way, whatever the role or the route.
    assert_eq!(call(&admin, Some(WRONG_TOKEN)).await.status(), 429);
    assert_eq!(call(&admin, None).await.status(), 429);
    assert_eq!(
        admin
            .get_as(VIEWER_TOKEN, "/admin/v1/registrations")
            .await
            .status(),
        429
    );
    // What needs no token (probes, the page) is not behind the limit.
    let live = admin
        .stack
        .client
        .get(format!("{}/health/live", admin.base))
        .send()
        .await
        .expect("admin reachable");
    assert_eq!(live.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_with_a_good_token_are_not_counted() {
    let admin = AdminStack::start_with(|s| s.admin.auth_failures_per_minute = 3).await;
    for _ in 0..20 {
        assert_eq!(call(&admin, Some(TOKEN)).await.status(), 200);
    }
    for attempt in 1..=3 {
        assert_eq!(
            call(&admin, Some(WRONG_TOKEN)).await.status(),
            401,
            "attempt {attempt}"
        );
    }
    assert_eq!(
        call(&admin, Some(TOKEN)).await.status(),
        429,
        "the configured limit, 3"
    );
}

/// The counters of a test of its own, removed when it ends (however it ends).
struct Counters {
    url: String,
    keys: RedisKeys,
}

impl Counters {
    fn new() -> Self {
        Self {
            url: std::env::var("INTAKE_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
            keys: RedisKeys::new(format!("test-{}", uuid::Uuid::new_v4().simple())),
        }
    }

    fn limiter(&self, per_minute: u64) -> AuthFailures {
        AuthFailures::new(self.keys.clone(), per_minute)
    }

    fn redis(&self) -> redis::aio::ConnectionManager {
        intake_shared::redis_conn::connect_lazy(&self.url).expect("Redis URL")
    }

    fn keys(&self) -> Vec<String> {
        redis_keys::matching(&self.url, &self.keys.all_pattern())
    }
}

impl Drop for Counters {
    fn drop(&mut self) {
        redis_keys::delete_matching(&self.url, &self.keys.all_pattern());
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

#[tokio::test]
async fn failures_of_one_client_do_not_refuse_another() {
    let counters = Counters::new();
    let limiter = counters.limiter(10);
    let mut redis = counters.redis();
    let (guesser, colleague) = (ip("192.0.2.10"), ip("2001:db8::20"));
    for attempt in 1..=10 {
        assert_eq!(
            limiter
                .count_failure(&mut redis, guesser)
                .await
                .expect("Redis"),
            Verdict::Allowed,
            "failure {attempt} is answered 401"
        );
    }
    assert!(matches!(
        limiter
            .count_failure(&mut redis, guesser)
            .await
            .expect("Redis"),
        Verdict::Refused { .. }
    ));
    assert!(matches!(
        limiter.check(&mut redis, guesser).await.expect("Redis"),
        Verdict::Refused { .. }
    ));

    assert_eq!(
        limiter.check(&mut redis, colleague).await.expect("Redis"),
        Verdict::Allowed
    );
    assert_eq!(
        limiter
            .count_failure(&mut redis, colleague)
            .await
            .expect("Redis"),
        Verdict::Allowed,
        "a colleague's mistyped token counts for the colleague only"
    );
    assert_eq!(
        limiter.check(&mut redis, colleague).await.expect("Redis"),
        Verdict::Allowed
    );
}

#[tokio::test]
async fn the_counter_lives_under_the_prefix_and_expires_with_its_window() {
    let counters = Counters::new();
    let limiter = counters.limiter(2);
    let mut redis = counters.redis();
    let client = ip("198.51.100.7");
    for _ in 0..3 {
        limiter
            .count_failure(&mut redis, client)
            .await
            .expect("Redis");
    }
    let key = counters.keys.admin_auth_failures("198.51.100.7");
    assert_eq!(
        counters.keys(),
        vec![key.clone()],
        "one counter, nothing else"
    );
    let left: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("PTTL");
    assert!(
        left > 0 && left <= i64::try_from(WINDOW.as_millis()).expect("small"),
        "expires within the window: {left} ms"
    );
    let Verdict::Refused { retry_after } = limiter.check(&mut redis, client).await.expect("Redis")
    else {
        panic!("refused past the limit");
    };
    assert!(
        retry_after <= WINDOW && !retry_after.is_zero(),
        "{retry_after:?}"
    );

    // The window ends when the counter expires; bring that forward instead of waiting a minute.
    let _: bool = redis::cmd("PEXPIRE")
        .arg(&key)
        .arg(50)
        .query_async(&mut redis)
        .await
        .expect("PEXPIRE");
    intake_testkit::eventually("the window to end", Duration::from_secs(5), || {
        let (limiter, mut redis) = (limiter.clone(), redis.clone());
        async move {
            (limiter.check(&mut redis, client).await.ok()? == Verdict::Allowed).then_some(())
        }
    })
    .await;
    assert!(counters.keys().is_empty(), "nothing is left behind");
}

/// With Redis unreachable a failed attempt cannot be counted: it is answered `401` as before
/// (never a panic or a `500`), and a good token is let through to a handler that then says
/// what it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_unreachable_a_wrong_token_is_still_401() {
    let staging = tempfile::tempdir().expect("staging dir");
    let mut settings = StackSettings::default();
    // Nothing listens on port 1 of loopback: every command fails at once.
    settings.redis.url = "redis://127.0.0.1:1".into();
    settings.redis.prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    settings.admin.addr = "127.0.0.1:0".parse().expect("literal");
    settings.admin.auth_failures_per_minute = 2;
    settings.admin.tokens = Some(format!("alice:{TOKEN}").into());
    settings.staging.dir = staging.path().to_path_buf();
    let app = AdminApp::build(settings.admin())
        .await
        .expect("admin builds");
    let base = format!("http://{}", app.local_addr());
    let server = tokio::spawn(app.run_until(std::future::pending()));
    let client = intake_testkit::http_client();

    for attempt in 1..=5 {
        let response = client
            .get(format!("{base}/admin/v1/queue"))
            .bearer_auth(WRONG_TOKEN)
            .send()
            .await
            .expect("admin reachable");
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let good = client
        .get(format!("{base}/admin/v1/queue"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin reachable");
    let status = good.status();
    let body: Value = good.json().await.expect("problem");
    assert_eq!(status, 503, "the queue needs Redis: {body}");
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    server.abort();
}
