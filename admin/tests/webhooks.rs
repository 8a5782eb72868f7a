//! Webhook endpoints (docs/contract.md §16): organisers create them (the signing secret is
//! shown once), list, read, change and delete them; every change is audited without the
//! secret; a bad body names each bad field; other roles are refused.

use intake_shared::webhooks::SigningSecret;
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use serde_json::{Value, json};

async fn send(
    admin: &AdminStack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let request = admin
        .stack
        .client
        .request(method, format!("{}{path}", admin.base))
        .bearer_auth(ORGANISER_TOKEN);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .expect("admin reachable")
}

fn field_errors(problem: &Value) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or_default().to_owned(),
                e["code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    fields.sort();
    fields
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_manages_endpoints_and_sees_the_secret_once() {
    let admin = AdminStack::start().await;
    let created = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/webhooks",
            json!({"url": "https://sheets.example.org/hook", "events": ["registration.completed", "team.approved"], "description": "the roster sheet"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("endpoint");
    let secret = created["secret"].as_str().expect("the secret, once");
    assert!(SigningSecret::parse(secret).is_ok(), "{secret}");
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["events"],
        json!(["registration.completed", "team.approved"])
    );
    let id = created["id"].as_str().expect("id").to_owned();
    let stored: (String,) =
        sqlx::query_as("SELECT secret FROM webhook_endpoints WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&admin.stack.pool)
            .await
            .expect("stored");
    assert_eq!(stored.0, secret, "deliveries sign with the secret shown");

    let listed: Value = send(&admin, reqwest::Method::GET, "/admin/v1/webhooks", None)
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["items"][0]["url"], "https://sheets.example.org/hook");
    assert!(
        !listed.to_string().contains("whsec_"),
        "never shown again: {listed}"
    );
    let path = format!("/admin/v1/webhooks/{id}");
    let shown: Value = send(&admin, reqwest::Method::GET, &path, None)
        .await
        .json()
        .await
        .expect("endpoint");
    assert_eq!(shown["description"], "the roster sheet");
    assert!(shown.get("secret").is_none());

    let disabled = send(
        &admin,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(disabled.status(), 200);
    let disabled: Value = disabled.json().await.expect("endpoint");
    assert_eq!(disabled["enabled"], false);
    assert_eq!(
        disabled["events"], created["events"],
        "untouched fields stay"
    );
    let changed: Value = send(
        &admin,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"enabled": true, "events": ["registration.failed"]})),
    )
    .await
    .json()
    .await
    .expect("endpoint");
    assert_eq!(
        (changed["enabled"].clone(), changed["events"].clone()),
        (json!(true), json!(["registration.failed"]))
    );

    assert_eq!(
        send(&admin, reqwest::Method::DELETE, &path, None)
            .await
            .status(),
        204
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let gone = send(&admin, method, &path, None).await;
        assert_eq!(gone.status(), 404);
        assert_eq!(
            gone.json::<Value>().await.expect("problem")["code"],
            "NOT_FOUND"
        );
    }
    assert_eq!(
        send(
            &admin,
            reqwest::Method::GET,
            "/admin/v1/webhooks/not-a-uuid",
            None
        )
        .await
        .status(),
        404
    );

    let audit: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT action, actor, detail::text FROM audit_log WHERE action LIKE 'webhook_%' ORDER BY id",
    )
    .fetch_all(&admin.stack.pool)
    .await
    .expect("audit");
    let actions: Vec<&str> = audit.iter().map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook_create",
            "webhook_update",
            "webhook_update",
            "webhook_delete"
        ]
    );
    for (_, actor, detail) in &audit {
        assert_eq!(actor, "dave");
        assert!(
            detail.contains(&id) && !detail.contains("whsec_"),
            "{detail}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_bodies_name_every_bad_field_and_store_nothing() {
    let admin = AdminStack::start().await;
    for (body, expected) in [
        (json!({}), vec![("events", "REQUIRED"), ("url", "REQUIRED")]),
        (
            json!({"url": "ftp://example.org/x", "events": []}),
            vec![("events", "REQUIRED"), ("url", "INVALID_VALUE")],
        ),
        (
            json!({"url": "https://user:pw@example.org/x", "events": ["team.approved", "team.approved", "team.deleted"]}),
            vec![
                ("events[1]", "INVALID_VALUE"),
                ("events[2]", "INVALID_VALUE"),
                ("url", "INVALID_VALUE"),
            ],
        ),
        (
            json!({"url": "not a url", "events": ["team.rejected"], "description": "x".repeat(501)}),
            vec![("description", "TOO_LONG"), ("url", "INVALID_VALUE")],
        ),
    ] {
        let refused = admin
            .post_as(ORGANISER_TOKEN, "/admin/v1/webhooks", body.clone())
            .await;
        assert_eq!(refused.status(), 400, "{body}");
        let problem: Value = refused.json().await.expect("problem");
        assert_eq!(problem["code"], "VALIDATION_FAILED");
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(f, c)| (f.to_owned(), c.to_owned()))
            .collect();
        assert_eq!(field_errors(&problem), expected, "{body}");
    }
    let created: Value = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/webhooks",
            json!({"url": "http://hooks.example.org/", "events": ["team.rejected"]}),
        )
        .await
        .json()
        .await
        .expect("created");
    let path = format!("/admin/v1/webhooks/{}", created["id"].as_str().expect("id"));
    let empty = send(&admin, reqwest::Method::PATCH, &path, Some(json!({}))).await;
    assert_eq!(empty.status(), 400);
    let bad = send(
        &admin,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"url": "gopher://x"})),
    )
    .await;
    assert_eq!(
        field_errors(&bad.json().await.expect("problem")),
        [("url".to_owned(), "INVALID_VALUE".to_owned())]
    );
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&admin.stack.pool)
        .await
        .expect("count");
    assert_eq!(count.0, 1, "only the good one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_organisers_manage_endpoints() {
    let admin = AdminStack::start().await;
    let body = json!({"url": "https://example.org/hook", "events": ["team.approved"]});
    for token in [VIEWER_TOKEN, TOKEN] {
        let refused = admin
            .post_as(token, "/admin/v1/webhooks", body.clone())
            .await;
        assert_eq!(refused.status(), 403);
        assert_eq!(
            refused.json::<Value>().await.expect("problem")["code"],
            "FORBIDDEN"
        );
        assert_eq!(
            admin.get_as(token, "/admin/v1/webhooks").await.status(),
            403
        );
    }
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&admin.stack.pool)
        .await
        .expect("count");
    assert_eq!(count.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_targets_are_refused_at_the_door_unless_allowed() {
    let admin = AdminStack::start_with(|s| s.webhooks.allow_private = false).await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:192.168.0.1]/hook",
        "http://localhost:9000/hook",
        "http://api.LOCALHOST./hook",
    ] {
        let refused = admin
            .post_as(
                ORGANISER_TOKEN,
                "/admin/v1/webhooks",
                json!({"url": url, "events": ["team.approved"]}),
            )
            .await;
        assert_eq!(refused.status(), 400, "{url}");
        let problem: Value = refused.json().await.expect("problem");
        assert_eq!(
            field_errors(&problem),
            [("url".to_owned(), "INVALID_VALUE".to_owned())],
            "{url}"
        );
        assert!(
            problem.to_string().contains("INTAKE_WEBHOOK_ALLOW_PRIVATE"),
            "{problem}"
        );
    }
    let public = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/webhooks",
            json!({"url": "https://93.184.215.14/hook", "events": ["team.approved"]}),
        )
        .await;
    assert_eq!(public.status(), 201);
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_endpoints")
        .fetch_one(&admin.stack.pool)
        .await
        .expect("count");
    assert_eq!(count.0, 1, "only the public one was stored");
}
