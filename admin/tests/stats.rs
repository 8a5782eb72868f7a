//! `GET /admin/v1/stats` (docs/contract.md §15): the console's figures, readable by a viewer.

use std::time::Duration;

use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, VIEWER_TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::stack::team;
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_count_registrations_review_states_days_and_failure_codes() {
    let admin = AdminStack::start().await;
    for n in 0..3 {
        let id = admin.stack.submit(&team(n)).await;
        admin.stack.wait_final(&id, FINISH).await;
    }
    let approved = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/teams/ICCT-0002/review",
            json!({"decision": "approved", "reason": "ok", "payment_verified": true, "version": 0}),
        )
        .await;
    assert_eq!(approved.status(), 200);
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    admin.failed_registration(&team(3)).await;

    let response = admin.get_as(VIEWER_TOKEN, "/admin/v1/stats").await;
    assert_eq!(response.status(), 200, "a viewer reads the figures");
    let stats: Value = response.json().await.expect("json");
    assert_eq!(
        stats["registrations"],
        json!({"queued": 0, "processing": 0, "completed": 3, "failed": 1})
    );
    assert_eq!(
        stats["teams"],
        json!({"pending": 2, "approved": 1, "rejected": 0})
    );
    assert_eq!(stats["failure_codes"], json!({"DOCUMENT_REJECTED": 1}));
    let days = stats["per_day"].as_array().expect("per_day");
    assert_eq!(days.len(), 30, "the last 30 days, oldest first");
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let last = days.last().expect("today");
    assert_eq!(last["date"], today.as_str());
    assert_eq!(last["completed"], 3);
    assert_eq!(last["failed"], 1);
    let earlier: i64 = days[..29]
        .iter()
        .map(|d| d["completed"].as_i64().unwrap_or(-1) + d["failed"].as_i64().unwrap_or(-1))
        .sum();
    assert_eq!(earlier, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stats_need_a_token() {
    let admin = AdminStack::start().await;
    let response = admin
        .stack
        .client
        .get(format!("{}/admin/v1/stats", admin.base))
        .send()
        .await
        .expect("admin reachable");
    assert_eq!(response.status(), 401);
}
