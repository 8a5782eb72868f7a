//! The organisers' console in headless Chromium (docs/contract.md §15): sign in with an
//! organiser's token, find a team, open it, approve it, export the roster. Screenshots go to
//! `target/test-output/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN};
use intake_testkit::browser::{ChromeDriver, click, screenshot, text, texts, type_into};
use intake_testkit::eventually;
use intake_testkit::stack::team;

const WAIT: Duration = Duration::from_secs(15);

/// The rows of the teams table, as text.
async fn team_rows(browser: &Client) -> Vec<String> {
    texts(browser, "#teams tbody tr").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_searches_a_team_opens_it_approves_it_and_exports_the_roster() {
    let admin = AdminStack::start().await;
    // One at a time, so the team IDs follow the order: team(1) is ICCT-0002.
    for n in 0..3 {
        let id = admin.stack.submit(&team(n)).await;
        let status = admin.stack.wait_final(&id, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "completed", "{status}");
    }

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");
    type_into(&browser, "#token", ORGANISER_TOKEN).await;
    click(&browser, "#sign-in-form button").await;

    // The Teams view opens first, with the figures and the chart.
    eventually("three teams listed", WAIT, || async {
        (team_rows(&browser).await.len() == 3).then_some(())
    })
    .await;
    let stats = text(&browser, "#stats").await;
    assert!(stats.contains("Saved teams"), "{stats}");
    let bars = browser
        .find_all(Locator::Css("#chart rect.bar-completed"))
        .await
        .expect("chart");
    assert!(!bars.is_empty(), "today's saved teams are drawn");
    assert!(
        text(&browser, "#teams").await.contains("Team Number 002"),
        "the newest team is listed"
    );

    // Search by team ID, in any case.
    type_into(&browser, "#q", "icct-0002").await;
    click(&browser, "#team-search button[type=submit]").await;
    let rows = eventually("one team found", WAIT, || async {
        let rows = team_rows(&browser).await;
        (rows.len() == 1 && rows[0].contains("ICCT-0002")).then_some(rows)
    })
    .await;
    assert!(rows[0].contains("Team Number 001"), "{rows:?}");
    assert!(rows[0].contains("pending"), "{rows:?}");

    // Open it: players with roles, contacts masked.
    click(&browser, "#teams a.team-open").await;
    let detail = eventually("team detail", WAIT, || async {
        let detail = text(&browser, "#team-detail").await;
        detail.contains("ICCT-0002").then_some(detail)
    })
    .await;
    let players = browser
        .find_all(Locator::Css("#team-players li"))
        .await
        .expect("players");
    assert_eq!(players.len(), 11, "{detail}");
    assert!(detail.contains("wicket-keeper"), "roles shown: {detail}");
    assert!(detail.contains("98******01"), "phone masked: {detail}");
    assert!(
        !detail.contains("9800000001"),
        "phone not in full: {detail}"
    );
    assert!(
        detail.contains("a***@example.org"),
        "email masked: {detail}"
    );
    assert!(detail.contains("Not reviewed yet"), "{detail}");

    // Approve it, payment verified.
    type_into(
        &browser,
        "#team-reason",
        "Receipt checked against the bank statement",
    )
    .await;
    click(&browser, "#payment-verified").await;
    click(&browser, "#approve").await;
    let message = eventually("decision message", WAIT, || async {
        let message = text(&browser, "#message").await;
        message.contains("ICCT-0002 approved").then_some(message)
    })
    .await;
    assert!(message.contains("email"), "{message}");
    assert!(message.contains("queued"), "{message}");
    eventually("approved in the detail and the list", WAIT, || async {
        let fields = text(&browser, "#team-fields").await;
        let history = text(&browser, "#team-history").await;
        let rows = team_rows(&browser).await;
        (fields.contains("approved")
            && history.contains("approved by dave")
            && rows.len() == 1
            && rows[0].contains("approved")
            && rows[0].contains("verified"))
        .then_some(())
    })
    .await;
    screenshot(&browser, "console-teams.png").await;

    let team = admin.get_json("/admin/v1/teams/ICCT-0002").await;
    assert_eq!(team["review"]["state"], "approved", "{team}");
    assert_eq!(team["review"]["payment_verified"], true, "{team}");
    assert_eq!(team["review"]["version"], 1, "{team}");
    let decision = &team["review"]["history"][0];
    assert_eq!(decision["actor"], "dave", "{team}");
    assert_eq!(
        decision["reason"], "Receipt checked against the bank statement",
        "{team}"
    );

    // Export what the search shows.
    click(&browser, "#export-csv").await;
    let message = eventually("download message", Duration::from_secs(30), || async {
        let message = text(&browser, "#message").await;
        message.starts_with("Downloaded").then_some(message)
    })
    .await;
    let (name, size) = message
        .strip_prefix("Downloaded ")
        .and_then(|rest| rest.strip_suffix(" bytes)."))
        .and_then(|rest| rest.split_once(" ("))
        .unwrap_or_else(|| panic!("unexpected message: {message}"));
    assert!(
        name.starts_with("teams-") && name.ends_with(".csv"),
        "{message}"
    );
    let size: usize = size.parse().expect("a byte count");
    let roster = admin
        .get_as(
            ORGANISER_TOKEN,
            "/admin/v1/teams/export?format=csv&q=icct-0002",
        )
        .await;
    assert_eq!(roster.status(), 200);
    let roster = roster.text().await.expect("CSV");
    assert_eq!(
        size,
        roster.len(),
        "the page downloaded the searched roster"
    );
    assert_eq!(
        roster.lines().count(),
        1 + 11,
        "a header and one row a player"
    );
    let audit = admin.get_json("/admin/v1/audit").await;
    assert!(
        audit["entries"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(|e| {
                e["action"] == "export"
                    && e["actor"] == "dave"
                    && e["detail"]["filters"]["q"] == "icct-0002"
            })),
        "the page's export carried the search: {audit}"
    );
    screenshot(&browser, "console-export.png").await;

    // Back to every team, the approved one still open (the picture in docs/console.png).
    type_into(&browser, "#q", "").await;
    click(&browser, "#team-search button[type=submit]").await;
    eventually("every team listed again", WAIT, || async {
        let rows = team_rows(&browser).await;
        (rows.len() == 3 && rows.iter().any(|r| r.contains("approved"))).then_some(())
    })
    .await;
    browser
        .execute("window.scrollTo(0, 0)", Vec::new())
        .await
        .expect("scroll");
    screenshot(&browser, "console-overview.png").await;
    browser.close().await.expect("close browser");
}
