//! Per-client limits kept in Redis, shared by every api replica (docs/contract.md §3, §6).

mod support;

use support::form::TestForm;
use support::{problem, spawn_app_with, spawn_with_settings, test_settings};

/// Two api instances sharing one Redis and one prefix, limited to `per_minute`.
async fn two_replicas(
    per_minute: u64,
    customise: impl Fn(&mut intake_shared::config::ApiSettings),
) -> (support::TestApp, support::TestApp) {
    let staging_a = tempfile::tempdir().expect("tempdir");
    let staging_b = tempfile::tempdir().expect("tempdir");
    let mut a = test_settings(staging_a.path());
    a.api.rate_limit_per_minute = per_minute;
    customise(&mut a);
    let mut b = test_settings(staging_b.path());
    b.redis.prefix = a.redis.prefix.clone();
    b.api.rate_limit_per_minute = per_minute;
    customise(&mut b);
    (
        spawn_with_settings(a, staging_a).await,
        spawn_with_settings(b, staging_b).await,
    )
}

/// Limits count in fixed windows; a test that crossed a window's end would see its counts
/// reset, so it starts well inside a minute.
async fn start_inside_a_window() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    let into_minute = now % 60.0;
    if into_minute > 55.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(60.5 - into_minute)).await;
    }
}

fn header(response: &reqwest::Response, name: &str) -> u64 {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} header"))
}

#[tokio::test]
async fn limit_holds_across_two_api_instances() {
    start_inside_a_window().await;
    let (a, b) = two_replicas(3, |_| {}).await;
    let first = a
        .submit_new(TestForm::valid_for_team("Team One").to_form())
        .await;
    assert_eq!(first.status(), 202);
    assert_eq!(header(&first, "x-ratelimit-limit"), 3);
    assert_eq!(header(&first, "x-ratelimit-remaining"), 2);
    assert_eq!(
        b.submit_new(TestForm::valid_for_team("Team Two").to_form())
            .await
            .status(),
        202
    );
    let third = a
        .submit_new(TestForm::valid_for_team("Team Three").to_form())
        .await;
    assert_eq!(header(&third, "x-ratelimit-remaining"), 0);

    let refused = b
        .submit_new(TestForm::valid_for_team("Team Four").to_form())
        .await;
    assert_eq!(header(&refused, "x-ratelimit-limit"), 3);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), 0);
    let reset = header(&refused, "x-ratelimit-reset");
    let retry_after = header(&refused, "retry-after");
    assert!((1..=60).contains(&reset), "reset {reset}");
    assert!((1..=60).contains(&retry_after), "retry after {retry_after}");
    problem(refused, 429, "RATE_LIMITED").await;
    assert_eq!(
        b.staged_uploads().len(),
        1,
        "only Team Two's files: a refused request stages nothing"
    );
}

#[tokio::test]
async fn hourly_limit_applies_too() {
    start_inside_a_window().await;
    let app = spawn_app_with(|s| {
        s.api.rate_limit_per_minute = 0;
        s.api.rate_limit_per_hour = 2;
    })
    .await;
    for team in ["Team One", "Team Two"] {
        assert_eq!(
            app.submit_new(TestForm::valid_for_team(team).to_form())
                .await
                .status(),
            202
        );
    }
    let refused = app
        .submit_new(TestForm::valid_for_team("Team Three").to_form())
        .await;
    assert_eq!(header(&refused, "x-ratelimit-limit"), 2);
    assert!(header(&refused, "retry-after") > 0);
    problem(refused, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn zero_turns_limits_off() {
    let app = spawn_app_with(|s| {
        s.api.rate_limit_per_minute = 0;
        s.api.rate_limit_per_hour = 0;
    })
    .await;
    for i in 0..15 {
        let response = app
            .submit_new(TestForm::valid_for_team(&format!("Team {i:02}")).to_form())
            .await;
        assert_eq!(response.status(), 202);
        assert!(!response.headers().contains_key("x-ratelimit-limit"));
    }
}

#[tokio::test]
async fn trusted_proxy_header_identifies_clients() {
    start_inside_a_window().await;
    let (a, b) = two_replicas(1, |s| {
        s.api.trusted_proxy_header = Some("x-forwarded-for".into())
    })
    .await;
    let send = |app: &support::TestApp, client: &'static str, team: &'static str| {
        app.client
            .post(app.url("/v1/registrations"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .header("X-Forwarded-For", client)
            .multipart(TestForm::valid_for_team(team).to_form())
            .send()
    };
    assert_eq!(
        send(&a, "203.0.113.1", "Team One")
            .await
            .expect("sent")
            .status(),
        202
    );
    assert_eq!(
        send(&b, "203.0.113.2", "Team Two")
            .await
            .expect("sent")
            .status(),
        202
    );
    let refused = send(&b, "198.51.100.7, 203.0.113.1", "Team Three")
        .await
        .expect("sent");
    problem(refused, 429, "RATE_LIMITED").await;
}

/// Sends a submission whose trusted proxy header has these lines, in order.
async fn send_via_proxy(app: &support::TestApp, lines: &[&str], team: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string());
    for line in lines {
        request = request.header("X-Forwarded-For", *line);
    }
    request
        .multipart(TestForm::valid_for_team(team).to_form())
        .send()
        .await
        .expect("sent")
}

async fn behind_a_proxy(per_minute: u64) -> support::TestApp {
    spawn_app_with(move |s| {
        s.api.rate_limit_per_minute = per_minute;
        s.api.rate_limit_per_hour = 0;
        s.api.trusted_proxy_header = Some("x-forwarded-for".into());
    })
    .await
}

#[tokio::test]
async fn a_forged_first_header_line_does_not_escape_the_limit() {
    start_inside_a_window().await;
    let app = behind_a_proxy(2).await;
    for (forged, team) in [("198.51.100.1", "Team One"), ("198.51.100.2", "Team Two")] {
        let response = send_via_proxy(&app, &[forged, "203.0.113.9"], team).await;
        assert_eq!(response.status(), 202);
    }
    let refused = send_via_proxy(&app, &["198.51.100.3", "203.0.113.9"], "Team Three").await;
    problem(refused, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn addresses_in_one_ipv6_64_share_a_limit() {
    start_inside_a_window().await;
    let app = behind_a_proxy(2).await;
    for (client, team) in [
        ("2001:db8:1:2::1", "Team One"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "Team Two"),
    ] {
        assert_eq!(send_via_proxy(&app, &[client], team).await.status(), 202);
    }
    let refused = send_via_proxy(&app, &["2001:db8:1:2:ffff::42"], "Team Three").await;
    problem(refused, 429, "RATE_LIMITED").await;
}

#[tokio::test]
async fn different_ipv6_64s_get_separate_limits() {
    start_inside_a_window().await;
    let app = behind_a_proxy(1).await;
    assert_eq!(
        send_via_proxy(&app, &["2001:db8:1:2::1"], "Team One")
            .await
            .status(),
        202
    );
    assert_eq!(
        send_via_proxy(&app, &["2001:db8:1:3::1"], "Team Two")
            .await
            .status(),
        202
    );
    let refused = send_via_proxy(&app, &["2001:db8:1:2::2"], "Team Three").await;
    problem(refused, 429, "RATE_LIMITED").await;
}
