//! Webhook endpoints in the organisers' console, in headless Chromium (docs/contract.md §16):
//! an organiser adds an endpoint and is shown its signing secret once, sees the API's field
//! errors beside the form, disables, enables and deletes endpoints, reads an endpoint's
//! deliveries and re-sends one; other roles are told the section is the organisers'.
//! Screenshots go to `target/test-output/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::browser::{
    ChromeDriver, click, screenshot, text, text_if_present, texts, type_into,
};
use intake_testkit::eventually;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);

/// Whether the first element matching `css` is on the page and shown.
async fn displayed(browser: &Client, css: &str) -> bool {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.is_displayed().await.unwrap_or(false),
        Err(_) => false,
    }
}

/// The rows of the endpoints table, as text.
async fn webhook_rows(browser: &Client) -> Vec<String> {
    texts(browser, "#webhooks tbody tr").await
}

/// The text of one endpoint's row, or `None` while it is not listed.
async fn webhook_row(browser: &Client, id: &str) -> Option<String> {
    text_if_present(browser, &format!("#webhooks tr[data-webhook='{id}']")).await
}

/// Everything the page holds, hidden parts and form values included.
async fn page_holds(browser: &Client, needle: &str) -> bool {
    browser
        .execute(
            "const n = arguments[0];
             const values = [...document.querySelectorAll('input, textarea')].map((i) => i.value);
             return document.documentElement.outerHTML.includes(n)
               || document.body.innerText.includes(n)
               || values.some((v) => v.includes(n));",
            vec![json!(needle)],
        )
        .await
        .expect("script")
        .as_bool()
        .expect("a boolean")
}

async fn sign_in(browser: &Client, token: &str) {
    type_into(browser, "#token", token).await;
    click(browser, "#sign-in-form button").await;
    eventually("the console", WAIT, || async {
        displayed(browser, "#console").await.then_some(())
    })
    .await;
}

async fn open_webhooks(browser: &Client) {
    click(browser, "#tab-webhooks").await;
    eventually("the webhooks view", WAIT, || async {
        displayed(browser, "#webhooks-view").await.then_some(())
    })
    .await;
}

async fn create_endpoint(admin: &AdminStack, body: Value) -> String {
    let created = admin
        .post_as(ORGANISER_TOKEN, "/admin/v1/webhooks", body)
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("endpoint");
    created["id"].as_str().expect("id").to_owned()
}

/// The endpoint as the API shows it to an organiser, or the status when it is not `200`.
async fn endpoint(admin: &AdminStack, id: &str) -> Result<Value, u16> {
    let response = admin
        .get_as(ORGANISER_TOKEN, &format!("/admin/v1/webhooks/{id}"))
        .await;
    match response.status().as_u16() {
        200 => Ok(response.json().await.expect("endpoint")),
        status => Err(status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_adds_an_endpoint_and_sees_its_secret_only_once() {
    let admin = AdminStack::start().await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");
    sign_in(&browser, ORGANISER_TOKEN).await;
    open_webhooks(&browser).await;
    eventually("no endpoints yet", WAIT, || async {
        displayed(&browser, "#webhooks-empty").await.then_some(())
    })
    .await;
    assert!(displayed(&browser, "#webhook-add").await);

    // A bad URL and no event: the API's field errors, each beside its field; nothing stored.
    type_into(&browser, "#webhook-url", "not a url").await;
    click(&browser, "#webhook-add-submit").await;
    let url_error = eventually("the URL's error", WAIT, || async {
        let error = text(&browser, "#webhook-url-error").await;
        (!error.is_empty()).then_some(error)
    })
    .await;
    assert!(
        url_error.contains("URL must be an absolute http or https URL"),
        "{url_error}"
    );
    let events_error = text(&browser, "#webhook-events-error").await;
    assert!(
        events_error.contains("must name at least one event type"),
        "{events_error}"
    );
    assert!(!displayed(&browser, "#webhook-description-error").await);
    let url_input = browser
        .find(Locator::Css("#webhook-url"))
        .await
        .expect("url");
    assert_eq!(
        url_input.attr("aria-invalid").await.expect("attr"),
        Some("true".to_owned())
    );
    assert!(
        text(&browser, "#message").await.contains("not added"),
        "the message says why"
    );
    assert!(!displayed(&browser, "#webhook-secret").await);
    assert_eq!(
        admin
            .stack
            .count("SELECT count(*) FROM webhook_endpoints")
            .await,
        0
    );
    screenshot(&browser, "console-webhooks-field-errors.png").await;

    // A good one, with a description that is markup: it must stay text.
    let url = "https://sheets.example.org/hook?sheet=1&tab=<roster>";
    let description = "<img id=injected src=x> roster & \"sheet\"";
    type_into(&browser, "#webhook-url", url).await;
    click(
        &browser,
        "#webhook-events input[value='registration.completed']",
    )
    .await;
    click(&browser, "#webhook-events input[value='team.approved']").await;
    type_into(&browser, "#webhook-description", description).await;
    click(&browser, "#webhook-add-submit").await;
    let secret = eventually("the secret", WAIT, || async {
        if !displayed(&browser, "#webhook-secret").await {
            return None;
        }
        let secret = text(&browser, "#webhook-secret-value").await;
        (!secret.is_empty()).then_some(secret)
    })
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    let stored: (String, String) = sqlx::query_as("SELECT id::text, secret FROM webhook_endpoints")
        .fetch_one(&admin.stack.pool)
        .await
        .expect("one endpoint stored");
    let (id, stored_secret) = stored;
    assert_eq!(
        stored_secret, secret,
        "the page shows the secret deliveries use"
    );
    let panel = text(&browser, "#webhook-secret").await;
    assert!(
        panel.contains("Copy it now: it is not shown again"),
        "{panel}"
    );
    assert!(panel.contains(url), "the panel names the endpoint: {panel}");
    for slot in ["#webhook-url-error", "#webhook-events-error"] {
        assert!(!displayed(&browser, slot).await, "{slot} cleared");
    }
    let form_url = url_input.prop("value").await.expect("value");
    assert_eq!(form_url.as_deref(), Some(""), "the form is emptied");

    let row = eventually("the endpoint listed", WAIT, || async {
        webhook_row(&browser, &id).await
    })
    .await;
    for part in [
        url,
        "registration.completed, team.approved",
        "enabled",
        description,
    ] {
        assert!(row.contains(part), "{part:?} in {row}");
    }
    assert!(!row.contains("whsec_"), "the list has no secret: {row}");
    assert!(
        browser
            .find_all(Locator::Css("#injected"))
            .await
            .expect("query")
            .is_empty(),
        "the description is text, not markup"
    );
    screenshot(&browser, "console-webhooks-secret.png").await;

    let listed = admin.get_as(ORGANISER_TOKEN, "/admin/v1/webhooks").await;
    let listed: Value = listed.json().await.expect("list");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["url"], url);
    assert_eq!(
        listed["items"][0]["events"],
        json!(["registration.completed", "team.approved"])
    );
    assert_eq!(listed["items"][0]["description"], description);

    // Dismissed, it is gone from the page; a reload (still signed in) does not bring it back.
    click(&browser, "#webhook-secret-done").await;
    eventually("the secret hidden", WAIT, || async {
        (!displayed(&browser, "#webhook-secret").await).then_some(())
    })
    .await;
    assert!(
        !page_holds(&browser, &secret).await,
        "secret left on the page"
    );
    assert!(!page_holds(&browser, "whsec_").await);
    browser.refresh().await.expect("reload");
    eventually("signed in again", WAIT, || async {
        displayed(&browser, "#console").await.then_some(())
    })
    .await;
    open_webhooks(&browser).await;
    eventually("the endpoint listed after a reload", WAIT, || async {
        webhook_row(&browser, &id).await
    })
    .await;
    assert!(!displayed(&browser, "#webhook-secret").await);
    assert!(!page_holds(&browser, "whsec_").await, "shown only once");
    browser.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_disables_enables_and_deletes_endpoints() {
    let admin = AdminStack::start().await;
    let first = create_endpoint(
        &admin,
        json!({"url": "https://first.example.org/hook", "events": ["team.approved"]}),
    )
    .await;
    let second = create_endpoint(
        &admin,
        json!({"url": "https://second.example.org/hook", "events": ["registration.failed"]}),
    )
    .await;
    // Disabled by delivery (the endpoint answered 410 Gone): there is no call for that.
    let reason = "<b>410 Gone</b> from https://second.example.org/hook";
    sqlx::query(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $1 WHERE id = $2::uuid",
    )
    .bind(reason)
    .bind(&second)
    .execute(&admin.stack.pool)
    .await
    .expect("disable by delivery");

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");
    sign_in(&browser, ORGANISER_TOKEN).await;
    open_webhooks(&browser).await;
    let rows = eventually("both endpoints listed", WAIT, || async {
        let rows = webhook_rows(&browser).await;
        (rows.len() == 2).then_some(rows)
    })
    .await;
    assert!(
        rows[0].contains("first.example.org") && rows[0].contains("enabled"),
        "oldest first: {rows:?}"
    );
    assert!(
        rows[1].contains("disabled") && rows[1].contains(reason),
        "the reason is shown as text: {rows:?}"
    );
    assert!(
        browser
            .find_all(Locator::Css("#webhooks tbody b"))
            .await
            .expect("query")
            .is_empty(),
        "the reason is not markup"
    );
    screenshot(&browser, "console-webhooks-list.png").await;

    // Disable, then enable, the first.
    let first_row = format!("#webhooks tr[data-webhook='{first}']");
    click(&browser, &format!("{first_row} .webhook-disable")).await;
    eventually("the first disabled", WAIT, || async {
        let row = webhook_row(&browser, &first).await?;
        let stored = endpoint(&admin, &first).await.ok()?;
        let message = text(&browser, "#message").await;
        (row.contains("disabled")
            && row.contains("Enable")
            && stored["enabled"] == false
            && message.contains("Disabled https://first.example.org/hook"))
        .then_some(())
    })
    .await;
    click(&browser, &format!("{first_row} .webhook-enable")).await;
    eventually("the first enabled again", WAIT, || async {
        let row = webhook_row(&browser, &first).await?;
        let stored = endpoint(&admin, &first).await.ok()?;
        (!row.contains("disabled") && row.contains("Disable") && stored["enabled"] == true)
            .then_some(())
    })
    .await;

    // Enabling the one delivery disabled clears its reason.
    click(
        &browser,
        &format!("#webhooks tr[data-webhook='{second}'] .webhook-enable"),
    )
    .await;
    eventually("the second enabled, its reason gone", WAIT, || async {
        let row = webhook_row(&browser, &second).await?;
        let stored = endpoint(&admin, &second).await.ok()?;
        (row.contains("enabled")
            && !row.contains("410 Gone")
            && stored["enabled"] == true
            && stored["disabled_reason"].is_null())
        .then_some(())
    })
    .await;

    // Delete asks first; Cancel keeps the endpoint.
    click(&browser, &format!("{first_row} .webhook-delete")).await;
    let asking = eventually("the confirm step", WAIT, || async {
        let row = webhook_row(&browser, &first).await?;
        row.contains("Delete this endpoint?").then_some(row)
    })
    .await;
    assert!(asking.contains("Delete for good"), "{asking}");
    screenshot(&browser, "console-webhooks-confirm-delete.png").await;
    click(&browser, &format!("{first_row} .webhook-delete-cancel")).await;
    eventually("the row's buttons back", WAIT, || async {
        displayed(&browser, &format!("{first_row} .webhook-delete"))
            .await
            .then_some(())
    })
    .await;
    assert!(endpoint(&admin, &first).await.is_ok(), "not deleted");

    click(&browser, &format!("{first_row} .webhook-delete")).await;
    click(&browser, &format!("{first_row} .webhook-delete-confirm")).await;
    let rows = eventually("the first gone from the list", WAIT, || async {
        let rows = webhook_rows(&browser).await;
        let message = text(&browser, "#message").await;
        (rows.len() == 1 && message.contains("Deleted https://first.example.org/hook"))
            .then_some(rows)
    })
    .await;
    assert!(rows[0].contains("second.example.org"), "{rows:?}");
    assert_eq!(endpoint(&admin, &first).await.err(), Some(404));

    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action LIKE 'webhook_%' ORDER BY id",
    )
    .fetch_all(&admin.stack.pool)
    .await
    .expect("audit");
    let by_page: Vec<&str> = audit
        .iter()
        .skip(2)
        .map(|(action, actor)| {
            assert_eq!(actor, "dave");
            action.as_str()
        })
        .collect();
    assert_eq!(
        by_page,
        [
            "webhook_update",
            "webhook_update",
            "webhook_update",
            "webhook_delete"
        ],
        "the page's calls, one each"
    );
    browser.close().await.expect("close browser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewer_and_support_tokens_are_told_webhooks_are_for_organisers() {
    let admin = AdminStack::start().await;
    create_endpoint(
        &admin,
        json!({"url": "https://private.example.org/hook", "events": ["team.rejected"]}),
    )
    .await;

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");
    for (who, token) in [("viewer", VIEWER_TOKEN), ("support", TOKEN)] {
        sign_in(&browser, token).await;
        open_webhooks(&browser).await;
        let notice = eventually("the organisers-only notice", WAIT, || async {
            if !displayed(&browser, "#webhooks-forbidden").await {
                return None;
            }
            Some(text(&browser, "#webhooks-forbidden").await)
        })
        .await;
        assert!(
            notice.contains("managed by organisers") && notice.contains("organiser role"),
            "{who}: {notice}"
        );
        for css in ["#webhooks-body", "#webhook-add", "#webhooks", "#deliveries"] {
            assert!(!displayed(&browser, css).await, "{who}: {css} shown");
        }
        assert!(webhook_rows(&browser).await.is_empty(), "{who}");
        assert!(
            !page_holds(&browser, "private.example.org").await,
            "{who}: no endpoint reaches the page"
        );
        screenshot(&browser, &format!("console-webhooks-{who}.png")).await;
        click(&browser, "#sign-out").await;
        eventually("signed out", WAIT, || async {
            displayed(&browser, "#sign-in").await.then_some(())
        })
        .await;
    }

    // The same tab, now an organiser's: the section works.
    sign_in(&browser, ORGANISER_TOKEN).await;
    open_webhooks(&browser).await;
    let rows = eventually("the endpoint listed", WAIT, || async {
        let rows = webhook_rows(&browser).await;
        (rows.len() == 1).then_some(rows)
    })
    .await;
    assert!(rows[0].contains("private.example.org"), "{rows:?}");
    assert!(!displayed(&browser, "#webhooks-forbidden").await);
    assert!(displayed(&browser, "#webhook-add").await);
    browser.close().await.expect("close browser");
}

/// One delivery as the delivery log would hold it, of a new (already dispatched) event.
struct Seed<'a> {
    event_type: &'a str,
    state: &'a str,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<&'a str>,
    /// How long ago it was created.
    age_secs: f64,
}

/// Writes `seed` for `endpoint`: its id, its event's id and its registration's id. A pending
/// one is due in an hour, so no worker sends it while the test looks at it.
async fn seed_delivery(admin: &AdminStack, endpoint: &str, seed: Seed<'_>) -> [String; 3] {
    let (id, event_id, registration_id): (String, String, String) = sqlx::query_as(
        "WITH event AS (
             INSERT INTO outbox_events (type, registration_id, data, created_at, dispatched_at)
             VALUES ($2, gen_random_uuid(), '{}'::jsonb, now() - make_interval(secs => $7), now())
             RETURNING event_id, registration_id, created_at)
         INSERT INTO webhook_deliveries (endpoint_id, event_id, state, attempts, last_status,
             last_error, last_attempt_at, next_attempt_at, created_at, delivered_at)
         SELECT $1::uuid, event_id, $3, $4, $5, $6, created_at,
             CASE WHEN $3 = 'pending' THEN now() + interval '1 hour' ELSE created_at END,
             created_at, CASE WHEN $3 = 'delivered' THEN created_at END
         FROM event
         RETURNING id::text, event_id::text, (SELECT registration_id::text FROM event)",
    )
    .bind(endpoint)
    .bind(seed.event_type)
    .bind(seed.state)
    .bind(seed.attempts)
    .bind(seed.last_status)
    .bind(seed.last_error)
    .bind(seed.age_secs)
    .fetch_one(&admin.stack.pool)
    .await
    .expect("seed a delivery");
    [id, event_id, registration_id]
}

/// The rows of the deliveries table, as text.
async fn delivery_rows(browser: &Client) -> Vec<String> {
    texts(browser, "#deliveries-table tbody tr").await
}

/// The text of one delivery's row, or `None` while it is not listed.
async fn delivery_row(browser: &Client, id: &str) -> Option<String> {
    text_if_present(
        browser,
        &format!("#deliveries-table tr[data-delivery='{id}']"),
    )
    .await
}

/// The cells of one delivery's row: created, event, registration, state, attempts, last
/// status, last error, next attempt or delivered, actions.
async fn delivery_cells(browser: &Client, id: &str) -> Vec<String> {
    let mut cells = Vec::new();
    for td in browser
        .find_all(Locator::Css(&format!(
            "#deliveries-table tr[data-delivery='{id}'] td"
        )))
        .await
        .unwrap_or_default()
    {
        cells.push(td.text().await.unwrap_or_default());
    }
    cells
}

async fn has_resend(browser: &Client, id: &str) -> bool {
    displayed(
        browser,
        &format!("#deliveries-table tr[data-delivery='{id}'] .delivery-resend"),
    )
    .await
}

async fn filter_deliveries(browser: &Client, label: &str) {
    browser
        .find(Locator::Css("#delivery-state"))
        .await
        .expect("state filter")
        .select_by_label(label)
        .await
        .unwrap_or_else(|e| panic!("select {label}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_reads_an_endpoints_deliveries_and_resends_one() {
    let admin = AdminStack::start().await;
    let url = "https://hooks.invalid/intake";
    let endpoint = create_endpoint(
        &admin,
        json!({"url": url, "events": ["registration.completed", "registration.failed", "team.approved"]}),
    )
    .await;
    // 21 older ones, delivered, then three of each state: 24 in all, more than a page (20).
    for n in 0..21 {
        seed_delivery(
            &admin,
            &endpoint,
            Seed {
                event_type: "registration.completed",
                state: "delivered",
                attempts: 1,
                last_status: Some(200),
                last_error: None,
                age_secs: 3600.0 + 60.0 * f64::from(n),
            },
        )
        .await;
    }
    let last_error = "<img id=injected src=x> upstream said \"no\" & closed";
    let [failed, failed_event, failed_registration] = seed_delivery(
        &admin,
        &endpoint,
        Seed {
            event_type: "registration.failed",
            state: "failed",
            attempts: 8,
            last_status: Some(500),
            last_error: Some(last_error),
            age_secs: 20.0,
        },
    )
    .await;
    let [delivered, ..] = seed_delivery(
        &admin,
        &endpoint,
        Seed {
            event_type: "registration.completed",
            state: "delivered",
            attempts: 1,
            last_status: Some(204),
            last_error: None,
            age_secs: 30.0,
        },
    )
    .await;
    let [pending, ..] = seed_delivery(
        &admin,
        &endpoint,
        Seed {
            event_type: "team.approved",
            state: "pending",
            attempts: 2,
            last_status: Some(503),
            last_error: Some("Service Unavailable"),
            age_secs: 10.0,
        },
    )
    .await;

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");
    sign_in(&browser, ORGANISER_TOKEN).await;
    open_webhooks(&browser).await;
    eventually("the endpoint listed", WAIT, || async {
        webhook_row(&browser, &endpoint).await
    })
    .await;
    click(
        &browser,
        &format!("#webhooks tr[data-webhook='{endpoint}'] .webhook-deliveries"),
    )
    .await;

    // The first page, newest first, and a way to the rest.
    let rows = eventually("a page of deliveries", WAIT, || async {
        let rows = delivery_rows(&browser).await;
        (rows.len() == 20).then_some(rows)
    })
    .await;
    assert_eq!(text(&browser, "#deliveries-url").await, url);
    assert!(rows[0].contains("team.approved"), "newest first: {rows:?}");
    assert!(displayed(&browser, "#deliveries-more").await);
    let cells = delivery_cells(&browser, &failed).await;
    assert_eq!(cells.len(), 9, "{cells:?}");
    assert!(
        cells[1].contains("registration.failed") && cells[1].contains(&failed_event),
        "{cells:?}"
    );
    assert_eq!(
        cells[2..7],
        [
            failed_registration.as_str(),
            "failed",
            "8",
            "500",
            last_error
        ],
        "{cells:?}"
    );
    assert_eq!(cells[7], "", "a failed delivery has no next attempt");
    assert!(
        browser
            .find_all(Locator::Css("#injected"))
            .await
            .expect("query")
            .is_empty(),
        "the last error is text, not markup"
    );
    let cells = delivery_cells(&browser, &pending).await;
    assert_eq!(
        cells[3..7],
        ["pending", "2", "503", "Service Unavailable"],
        "{cells:?}"
    );
    assert!(cells[7].starts_with("next "), "its next attempt: {cells:?}");
    let cells = delivery_cells(&browser, &delivered).await;
    assert_eq!(cells[3..6], ["delivered", "1", "204"], "{cells:?}");
    assert!(!cells[7].is_empty(), "when it was delivered: {cells:?}");
    assert!(has_resend(&browser, &failed).await);
    assert!(has_resend(&browser, &delivered).await);
    assert!(
        !has_resend(&browser, &pending).await,
        "a pending delivery is on its way already"
    );
    screenshot(&browser, "console-webhooks-deliveries.png").await;

    click(&browser, "#deliveries-more").await;
    eventually("every delivery", WAIT, || async {
        let rows = delivery_rows(&browser).await;
        (rows.len() == 24 && !displayed(&browser, "#deliveries-more").await).then_some(())
    })
    .await;

    // The state filter.
    filter_deliveries(&browser, "failed").await;
    let rows = eventually("the failed one only", WAIT, || async {
        let rows = delivery_rows(&browser).await;
        (rows.len() == 1).then_some(rows)
    })
    .await;
    assert!(rows[0].contains(last_error), "{rows:?}");
    assert!(!displayed(&browser, "#deliveries-more").await);
    filter_deliveries(&browser, "all").await;
    eventually("a page of every state again", WAIT, || async {
        (delivery_rows(&browser).await.len() == 20).then_some(())
    })
    .await;

    // Resend the failed one: pending again, audited.
    click(
        &browser,
        &format!("#deliveries-table tr[data-delivery='{failed}'] .delivery-resend"),
    )
    .await;
    eventually("the failed delivery pending again", WAIT, || async {
        let row = delivery_row(&browser, &failed).await?;
        let message = text(&browser, "#message").await;
        (row.contains("pending")
            && !has_resend(&browser, &failed).await
            && message.contains("queued again"))
        .then_some(())
    })
    .await;
    let (state, attempts): (String, i32) =
        sqlx::query_as("SELECT state, attempts FROM webhook_deliveries WHERE id = $1::uuid")
            .bind(&failed)
            .fetch_one(&admin.stack.pool)
            .await
            .expect("delivery");
    assert!(
        state == "pending" || attempts > 8,
        "resent (pending, or tried again already): {state}, {attempts} attempts"
    );
    let resends: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, detail->>'delivery_id' FROM audit_log WHERE action = 'webhook_resend'",
    )
    .fetch_all(&admin.stack.pool)
    .await
    .expect("audit");
    assert_eq!(resends, [("dave".to_owned(), failed.clone())]);

    // With the endpoint disabled, a resend is refused and the page says why.
    let disabled = admin
        .patch_as(
            ORGANISER_TOKEN,
            &format!("/admin/v1/webhooks/{endpoint}"),
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    click(
        &browser,
        &format!("#deliveries-table tr[data-delivery='{delivered}'] .delivery-resend"),
    )
    .await;
    let message = eventually("the refusal", WAIT, || async {
        let message = text(&browser, "#message").await;
        message.contains("Not resent").then_some(message)
    })
    .await;
    assert!(message.contains("disabled"), "{message}");
    eventually("the list shows the endpoint disabled", WAIT, || async {
        let row = webhook_row(&browser, &endpoint).await?;
        row.contains("disabled").then_some(())
    })
    .await;
    let row = delivery_row(&browser, &delivered)
        .await
        .expect("delivered row");
    assert!(row.contains("delivered"), "{row}");
    assert!(
        has_resend(&browser, &delivered).await,
        "it can be tried again"
    );
    assert_eq!(
        admin
            .stack
            .count(&format!(
                "SELECT count(*) FROM webhook_deliveries WHERE id = '{delivered}' AND state = 'delivered'"
            ))
            .await,
        1,
        "nothing changed"
    );
    screenshot(&browser, "console-webhooks-resend-refused.png").await;
    browser.close().await.expect("close browser");
}
