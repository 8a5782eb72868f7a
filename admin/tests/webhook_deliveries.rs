//! An endpoint's delivery log and re-send in the admin API (docs/contract.md §16): each
//! delivery with its state, attempts, last answer and next try, newest first, filtered by
//! state and paged; a failed delivery re-sent (audited) reaches the receiver with the same
//! `webhook-id`; a pending one, a disabled endpoint's or an unknown one is refused; only
//! organisers read or re-send.

use std::time::{Duration, Instant};

use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::stack::team;
use intake_testkit::webhook_receiver::{Behaviour, Receiver};
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);

async fn create_endpoint(admin: &AdminStack, url: &str) -> String {
    let created = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/webhooks",
            json!({"url": url, "events": ["registration.completed"]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("endpoint");
    created["id"].as_str().expect("id").to_owned()
}

async fn deliveries(admin: &AdminStack, endpoint: &str, query: &str) -> Value {
    let response = admin
        .get_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}/deliveries{query}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("log")
}

async fn wait_items(admin: &AdminStack, endpoint: &str, query: &str, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let log = deliveries(admin, endpoint, query).await;
        let items = log["items"].as_array().cloned().unwrap_or_default();
        if items.len() == n {
            return items;
        }
        assert!(start.elapsed() < FINISH, "{query}: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn register(admin: &AdminStack, from: usize, n: usize) {
    let mut ids = Vec::new();
    for i in from..from + n {
        ids.push(admin.stack.submit(&team(i)).await);
    }
    for id in &ids {
        assert_eq!(
            admin.stack.wait_final(id, FINISH).await["status"],
            "completed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_shows_each_delivery_and_a_failed_one_is_re_sent_with_its_id() {
    let admin = AdminStack::start_with(|s| {
        // Retries end 1.8 s after the first attempt.
        s.webhooks.retry_hours = 0.0005;
    })
    .await;
    let receiver = Receiver::start(Behaviour::Status(500)).await;
    let endpoint = create_endpoint(&admin, &receiver.url()).await;
    register(&admin, 1, 3).await;

    let failed = wait_items(&admin, &endpoint, "?state=failed", 3).await;
    for delivery in &failed {
        assert_eq!(delivery["event_type"], "registration.completed");
        assert_eq!(delivery["last_status"], 500);
        assert!(
            delivery["attempts"].as_u64().is_some_and(|n| n >= 2),
            "{delivery}"
        );
        assert!(
            delivery["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("answered 500")),
            "{delivery}"
        );
        assert!(delivery["next_attempt_at"].is_null() && delivery["delivered_at"].is_null());
    }
    assert!(
        deliveries(&admin, &endpoint, "?state=delivered").await["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // Newest first, two to a page.
    let page = deliveries(&admin, &endpoint, "?limit=2").await;
    let first: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(first.len(), 2);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = deliveries(&admin, &endpoint, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert!(rest["next_cursor"].is_null());
    assert!(first[0]["created_at"].as_str() >= first[1]["created_at"].as_str());

    receiver.set(Behaviour::Accept);
    let chosen = &failed[0];
    let delivery_id = chosen["id"].as_str().expect("id");
    let resent = admin
        .post_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}/deliveries/{delivery_id}/resend"),
            json!({}),
        )
        .await;
    assert_eq!(resent.status(), 202);
    let resent: Value = resent.json().await.expect("delivery");
    assert_eq!(resent["state"], "pending");
    receiver.wait_delivered(1, FINISH).await;
    let delivered = receiver.delivered();
    assert_eq!(
        delivered.keys().next().map(String::as_str),
        chosen["event_id"].as_str(),
        "the re-send carries the event's webhook-id"
    );
    let now_delivered = wait_items(&admin, &endpoint, "?state=delivered", 1).await;
    assert_eq!(now_delivered[0]["id"], chosen["id"]);
    assert_eq!(now_delivered[0]["last_status"], 204);
    assert!(now_delivered[0]["delivered_at"].is_string());
    assert_eq!(
        admin
            .stack
            .count(
                "SELECT count(*) FROM audit_log WHERE action = 'webhook_resend' AND actor = 'dave'"
            )
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resend_is_refused_when_pending_disabled_unknown_or_not_an_organisers() {
    let admin = AdminStack::start().await;
    let receiver = Receiver::start(Behaviour::Hang).await;
    let endpoint = create_endpoint(&admin, &receiver.url()).await;
    register(&admin, 1, 1).await;
    let pending = wait_items(&admin, &endpoint, "?state=pending", 1).await;
    let id = pending[0]["id"].as_str().expect("id");
    let resend = |endpoint: String, delivery: String, token: &'static str| {
        let admin = &admin;
        async move {
            let response = admin
                .post_as(
                    token,
                    &format!("/admin/v1/webhooks/{endpoint}/deliveries/{delivery}/resend"),
                    json!({}),
                )
                .await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let (status, problem) = resend(endpoint.clone(), id.to_owned(), ORGANISER_TOKEN).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("INVALID_STATE")),
        "{problem}"
    );
    let (status, _) = resend(
        endpoint.clone(),
        uuid::Uuid::new_v4().to_string(),
        ORGANISER_TOKEN,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = resend(
        uuid::Uuid::new_v4().to_string(),
        id.to_owned(),
        ORGANISER_TOKEN,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = resend(endpoint.clone(), "not-an-id".into(), ORGANISER_TOKEN).await;
    assert_eq!(status, 404);
    for token in [TOKEN, VIEWER_TOKEN] {
        let (status, problem) = resend(endpoint.clone(), id.to_owned(), token).await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("FORBIDDEN")));
        let log = admin
            .get_as(token, &format!("/admin/v1/webhooks/{endpoint}/deliveries"))
            .await;
        assert_eq!(log.status(), 403);
    }
    let bad = admin
        .get_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}/deliveries?state=lost"),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let bad = admin
        .get_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}/deliveries?limit=0"),
        )
        .await;
    assert_eq!(bad.status(), 400);

    // Disabled: the pending delivery fails at its next try, and is not re-sent.
    let disabled = admin
        .patch_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let failed = wait_items(&admin, &endpoint, "?state=failed", 1).await;
    assert!(
        failed[0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("disabled")),
        "{}",
        failed[0]
    );
    let (status, problem) = resend(endpoint.clone(), id.to_owned(), ORGANISER_TOKEN).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("INVALID_STATE"))
    );
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("enable it")),
        "{problem}"
    );
}
