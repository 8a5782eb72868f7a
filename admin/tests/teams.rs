//! The organisers' console over saved teams (docs/contract.md §15): list and find them, open
//! one with its contacts masked until revealed, and decide on it with the version seen.

use std::time::Duration;

use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::eventually;
use intake_testkit::stack::team;
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);

/// `n` teams registered and saved one after the other, so their IDs follow `team(0…n)`.
async fn saved_teams(admin: &AdminStack, n: usize) {
    for i in 0..n {
        let id = admin.stack.submit(&team(i)).await;
        let status = admin.stack.wait_final(&id, FINISH).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
}

fn team_ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["team_id"].as_str().expect("team_id").to_owned())
        .collect()
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("problem+json");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_are_listed_newest_first_a_page_at_a_time() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 5).await;
    let mut seen = Vec::new();
    let mut path = "/admin/v1/teams?limit=2".to_owned();
    loop {
        let page = admin.get_json(&path).await;
        seen.extend(team_ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/v1/teams?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "ICCT-0005",
            "ICCT-0004",
            "ICCT-0003",
            "ICCT-0002",
            "ICCT-0001"
        ]
    );
    let first = admin.get_json("/admin/v1/teams?limit=1").await;
    let item = &first["items"][0];
    assert_eq!(item["team_name"], "Team Number 004");
    assert_eq!(item["review_state"], "pending");
    assert_eq!(item["payment_verified"], false);
    assert_eq!(item["players"], 11);
    assert!(item["registration_id"].is_string() && item["created_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_is_found_by_its_id_its_name_prefix_a_phone_or_an_email() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 3).await;
    let found = |q: &str| {
        let path = format!("/admin/v1/teams?q={}", urlencode(q));
        let admin = &admin;
        async move { team_ids(&admin.get_json(&path).await) }
    };
    assert_eq!(found("icct-0002").await, ["ICCT-0002"], "any case");
    assert_eq!(
        found("  TEAM   number 00").await,
        ["ICCT-0003", "ICCT-0002", "ICCT-0001"],
        "a name prefix, any case and spacing"
    );
    assert_eq!(found("Team Number 001").await, ["ICCT-0002"]);
    assert_eq!(found("9800000002").await, ["ICCT-0003"], "captain's phone");
    assert_eq!(
        found("RAVI@example.org").await.len(),
        3,
        "vice-captain's email"
    );
    assert!(
        found("Team Number 00%").await.is_empty(),
        "% is not a wildcard"
    );
    assert!(found("nobody@example.org").await.is_empty());
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_filters_are_refused_naming_the_parameter() {
    let admin = AdminStack::start().await;
    for (path, named) in [
        ("/admin/v1/teams?state=maybe", "state"),
        ("/admin/v1/teams?since=yesterday", "since"),
        ("/admin/v1/teams?until=2026-13-01", "until"),
        ("/admin/v1/teams?limit=101", "limit"),
        ("/admin/v1/teams?cursor=forged", "cursor"),
    ] {
        let body = problem(admin.get(path).await, 400).await;
        assert_eq!(body["code"], "VALIDATION_FAILED", "{path}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(named)),
            "{path}: {body}"
        );
    }
    let body = problem(admin.get("/admin/v1/teams/ICCT-0404").await, 404).await;
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_shows_masked_contacts_until_revealed_with_a_reason() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 1).await;
    let shown = admin.get_json("/admin/v1/teams/icct-0001").await;
    assert_eq!(shown["team_id"], "ICCT-0001");
    assert_eq!(shown["personal_data"], "masked");
    let text = shown.to_string();
    assert!(
        !text.contains("9800000000") && !text.contains("arjun@example.org"),
        "{text}"
    );
    assert_eq!(shown["captain"]["phone"], "98******00");
    assert_eq!(shown["players"].as_array().map(Vec::len), Some(11));
    assert_eq!(shown["documents"][0]["field"], "payment_receipt");
    // Support sees a short-lived signed download, never the asset's own URL
    // (tests/documents.rs has the rest).
    assert!(
        shown["documents"][0]["url"]
            .as_str()
            .is_some_and(|url| url.contains("/download?") && url.contains("&signature="))
            && !text.contains("/authenticated/"),
        "no public document URL: {text}"
    );
    assert_eq!(shown["email_status"], "sent");
    assert_eq!(shown["review"]["state"], "pending");
    assert_eq!(shown["review"]["version"], 0);

    let viewer = admin
        .get_as(
            VIEWER_TOKEN,
            "/admin/v1/teams/ICCT-0001?reveal=true&reason=call",
        )
        .await;
    assert_eq!(problem(viewer, 403).await["code"], "FORBIDDEN");
    let no_reason = problem(
        admin.get("/admin/v1/teams/ICCT-0001?reveal=true").await,
        400,
    )
    .await;
    assert_eq!(no_reason["code"], "REASON_REQUIRED");
    let revealed = admin
        .get_json("/admin/v1/teams/ICCT-0001?reveal=true&reason=captain%20called")
        .await;
    assert_eq!(revealed["captain"]["phone"], "9800000000");
    assert_eq!(revealed["personal_data"], "revealed");
    let reveals: Vec<&Value> = revealed["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| e["action"] == "reveal_personal_data")
        .collect();
    assert_eq!(reveals.len(), 1, "one reveal audited, the refused ones not");
    assert_eq!(reveals[0]["reason"], "captain called");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_review_needs_an_organiser_a_reason_and_the_current_version() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 1).await;
    let path = "/admin/v1/teams/ICCT-0001/review";
    let decision = json!({"decision": "approved", "reason": "receipt checked", "payment_verified": true, "version": 0});
    for token in [VIEWER_TOKEN, TOKEN] {
        let refused = admin.post_as(token, path, decision.clone()).await;
        assert_eq!(problem(refused, 403).await["code"], "FORBIDDEN");
    }

    let empty = problem(admin.post_as(ORGANISER_TOKEN, path, json!({})).await, 400).await;
    assert_eq!(empty["code"], "VALIDATION_FAILED");
    let mut fields: Vec<&str> = empty["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["decision", "payment_verified", "reason", "version"]
    );
    let unknown = problem(
        admin
            .post_as(
                ORGANISER_TOKEN,
                path,
                json!({"decision": "maybe", "reason": " ", "payment_verified": false, "version": 0}),
            )
            .await,
        400,
    )
    .await;
    assert_eq!(
        unknown["errors"].as_array().map(Vec::len),
        Some(2),
        "{unknown}"
    );

    let approved = admin.post_as(ORGANISER_TOKEN, path, decision.clone()).await;
    assert_eq!(approved.status(), 200);
    let approved: Value = approved.json().await.expect("review");
    assert_eq!(approved["review"]["state"], "approved");
    assert_eq!(approved["review"]["version"], 1);
    assert_eq!(approved["review"]["payment_verified"], true);
    assert_eq!(approved["review"]["history"][0]["actor"], "dave");
    assert_eq!(
        approved["review"]["history"][0]["reason"],
        "receipt checked"
    );

    let stale = problem(admin.post_as(ORGANISER_TOKEN, path, decision).await, 409).await;
    assert_eq!(stale["code"], "CONFLICT");
    let rejected = admin
        .post_as(
            ORGANISER_TOKEN,
            path,
            json!({"decision": "rejected", "reason": "receipt was for another team", "payment_verified": false, "version": 1}),
        )
        .await;
    assert_eq!(rejected.status(), 200);
    let missing = problem(
        admin
            .post_as(
                ORGANISER_TOKEN,
                "/admin/v1/teams/ICCT-0404/review",
                json!({"decision": "rejected", "reason": "x", "payment_verified": false, "version": 0}),
            )
            .await,
        404,
    )
    .await;
    assert_eq!(missing["code"], "NOT_FOUND");

    let shown = admin.get_json("/admin/v1/teams/ICCT-0001").await;
    assert_eq!(shown["review_state"], "rejected");
    assert_eq!(shown["review"]["version"], 2);
    assert_eq!(shown["review"]["history"].as_array().map(Vec::len), Some(2));
    let reviews = shown["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter(|e| {
            e["action"] == "review" && e["actor"] == "dave" && e["detail"]["decision"].is_string()
        })
        .count();
    assert_eq!(reviews, 2, "each decision audited with its actor");
    let listed = admin.get_json("/admin/v1/teams?state=rejected").await;
    assert_eq!(team_ids(&listed), ["ICCT-0001"]);
    assert!(team_ids(&admin.get_json("/admin/v1/teams?state=pending").await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_shows_on_the_public_status_and_emails_the_captain() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&team(0)).await;
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["review_state"], "pending", "{status}");
    let reviewed = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/teams/ICCT-0001/review",
            json!({"decision": "approved", "reason": "all in order", "payment_verified": true, "version": 0}),
        )
        .await;
    let reviewed: Value = reviewed.json().await.expect("review");
    assert_eq!(reviewed["decision_email"], "queued", "{reviewed}");
    assert_eq!(admin.stack.status(&id).await["review_state"], "approved");
    let decision = eventually("the decision email", FINISH, || async {
        let messages = admin.stack.smtp.messages();
        (messages.len() == 2).then(|| messages[1].clone())
    })
    .await;
    assert_eq!(decision.to, ["arjun@example.org", "ravi@example.org"]);
    assert!(decision.data.contains("all in order"), "{}", decision.data);
}

/// Each decision writes its `team.approved` or `team.rejected` event in its own transaction
/// (docs/contract.md §16); a decision refused as stale writes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_decision_writes_its_event_and_a_refused_one_none() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 1).await;
    let path = "/admin/v1/teams/ICCT-0001/review";
    let approve = json!({"decision": "approved", "reason": "receipt checked", "payment_verified": true, "version": 0});
    assert_eq!(
        admin
            .post_as(ORGANISER_TOKEN, path, approve.clone())
            .await
            .status(),
        200
    );
    assert_eq!(
        admin.post_as(ORGANISER_TOKEN, path, approve).await.status(),
        409
    );
    let reject = json!({"decision": "rejected", "reason": "receipt was for another team", "payment_verified": false, "version": 1});
    assert_eq!(
        admin.post_as(ORGANISER_TOKEN, path, reject).await.status(),
        200
    );

    let events: Vec<(String, Value)> =
        sqlx::query_as("SELECT type, data FROM outbox_events WHERE type LIKE 'team.%' ORDER BY id")
            .fetch_all(&admin.stack.pool)
            .await
            .expect("events");
    let summary: Vec<(&str, &Value, &Value, &Value)> = events
        .iter()
        .map(|(kind, data)| {
            (
                kind.as_str(),
                &data["team_id"],
                &data["version"],
                &data["payment_verified"],
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "team.approved",
                &json!("ICCT-0001"),
                &json!(1),
                &json!(true)
            ),
            (
                "team.rejected",
                &json!("ICCT-0001"),
                &json!(2),
                &json!(false)
            ),
        ]
    );
}
