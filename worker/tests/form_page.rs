//! The registration form in headless Chromium, against the real api and a real worker:
//! a valid registration shows its team ID, bad input shows each field's message, and a
//! double click registers once. Screenshots go to `target/test-output/`.

use std::time::Duration;

use fantoccini::{Client, Locator};
use intake_testkit::browser::{ChromeDriver, screenshot_path, text};
use intake_testkit::form::{PLAYER_NAMES, jpeg, pdf};
use intake_testkit::stack::Stack;
use intake_testkit::{eventually, within};

async fn type_into(browser: &Client, id: &str, value: &str) {
    let input = browser.find(Locator::Id(id)).await.expect(id);
    input.clear().await.expect("clear");
    input.send_keys(value).await.expect("type");
}

/// Fills every field with valid data and attaches a receipt and a letter.
async fn fill_valid(browser: &Client, files: &tempfile::TempDir) {
    type_into(browser, "team_name", "Rising Stars XI").await;
    type_into(browser, "captain_name", "Arjun Mehta").await;
    type_into(browser, "captain_phone", "9876543210").await;
    type_into(browser, "captain_email", "arjun@example.org").await;
    type_into(browser, "vice_captain_name", "Ravi Kumar").await;
    type_into(browser, "vice_captain_phone", "9123456780").await;
    type_into(browser, "vice_captain_email", "ravi@example.org").await;
    let names = browser
        .find_all(Locator::Css(".player-name"))
        .await
        .expect("player rows");
    assert_eq!(names.len(), 11, "the form starts with 11 player rows");
    for (input, name) in names.iter().zip(PLAYER_NAMES) {
        input.send_keys(name).await.expect("type player");
    }
    let receipt = files.path().join("receipt.pdf");
    std::fs::write(&receipt, pdf(30_000)).expect("receipt file");
    let letter = files.path().join("letter.jpg");
    std::fs::write(&letter, jpeg(20_000)).expect("letter file");
    browser
        .find(Locator::Id("payment_receipt"))
        .await
        .expect("receipt input")
        .send_keys(&receipt.display().to_string())
        .await
        .expect("attach receipt");
    browser
        .find(Locator::Id("pastor_letter"))
        .await
        .expect("letter input")
        .send_keys(&letter.display().to_string())
        .await
        .expect("attach letter");
}

async fn team_id_shown(browser: &Client) -> String {
    let shown = within(Duration::from_secs(60), || async {
        let shown = text(browser, "#team-id").await;
        let outcome = text(browser, "#outcome").await;
        (shown.contains("ICCT-") && outcome.contains("registered")).then_some(shown)
    })
    .await;
    if let Some(shown) = shown {
        return shown;
    }
    // Say what the page shows instead, so a failure can be told apart: never sent (the
    // form and its errors), or sent and not followed to the end (the steps).
    let _ = std::fs::write(
        screenshot_path("form-timed-out.png"),
        browser.screenshot().await.unwrap_or_default(),
    );
    let steps = browser
        .find_all(Locator::Css(".steps li.done"))
        .await
        .map_or(0, |s| s.len());
    panic!(
        "no team ID on the page after 60 s: url {:?}, outcome {:?}, team id {:?}, form error {:?}, {steps} steps done (screenshot form-timed-out.png)",
        browser.current_url().await.map(|u| u.to_string()),
        text(browser, "#outcome").await,
        text(browser, "#team-id").await,
        text(browser, "#form-error").await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_valid_registration_shows_its_team_id() {
    intake_testkit::log_stack_to_test_output();
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    let files = tempfile::tempdir().expect("files");
    browser.goto(&stack.api_base).await.expect("form loads");
    fill_valid(&browser, &files).await;
    std::fs::write(
        screenshot_path("form-filled.png"),
        browser.screenshot().await.expect("shot"),
    )
    .expect("save");
    browser
        .find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    let shown = team_id_shown(&browser).await;
    assert!(shown.contains("ICCT-0001"), "{shown}");
    let steps = browser
        .find_all(Locator::Css(".steps li.done"))
        .await
        .expect("steps");
    assert_eq!(steps.len(), 5, "every step is ticked");
    std::fs::write(
        screenshot_path("form-completed.png"),
        browser.screenshot().await.expect("shot"),
    )
    .expect("save");
    assert_eq!(stack.cloudinary.assets().len(), 2);
    assert_eq!(stack.smtp.messages().len(), 1);
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_input_shows_each_fields_message() {
    let stack = Stack::start().await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    let files = tempfile::tempdir().expect("files");
    browser.goto(&stack.api_base).await.expect("form loads");
    fill_valid(&browser, &files).await;
    // Client-side checks: a short team name and a nine-digit phone.
    type_into(&browser, "team_name", "AB").await;
    type_into(&browser, "captain_phone", "987654321").await;
    browser
        .find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    assert!(
        text(&browser, "#team_name-error")
            .await
            .contains("at least 3")
    );
    assert!(
        text(&browser, "#captain_phone-error")
            .await
            .contains("10 digits")
    );

    // A check only the server can make: a "PNG" that is really text.
    type_into(&browser, "team_name", "Rising Stars XI").await;
    type_into(&browser, "captain_phone", "9876543210").await;
    let fake = files.path().join("receipt.png");
    std::fs::write(&fake, b"this is not a picture").expect("fake file");
    browser
        .find(Locator::Id("payment_receipt"))
        .await
        .expect("receipt input")
        .send_keys(&fake.display().to_string())
        .await
        .expect("attach");
    browser
        .find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    let message = eventually(
        "the server's message next to the field",
        Duration::from_secs(10),
        || async {
            let message = text(&browser, "#payment_receipt-error").await;
            (!message.is_empty()).then_some(message)
        },
    )
    .await;
    assert!(message.contains("PNG, JPEG or PDF"), "{message}");
    assert!(
        text(&browser, "#team_name-error").await.is_empty(),
        "fixed fields lose their message"
    );
    std::fs::write(
        screenshot_path("form-errors.png"),
        browser.screenshot().await.expect("shot"),
    )
    .expect("save");
    assert_eq!(stack.staged_files(), 0);
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_click_registers_once() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    let files = tempfile::tempdir().expect("files");
    browser.goto(&stack.api_base).await.expect("form loads");
    fill_valid(&browser, &files).await;
    browser
        .execute(
            "const b = document.getElementById('submit'); b.click(); b.click();",
            vec![],
        )
        .await
        .expect("double click");
    team_id_shown(&browser).await;
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    let statuses = intake_testkit::redis_keys::matching(
        &stack.settings.redis.url,
        &format!("{}:status:*", stack.settings.redis.prefix),
    );
    assert_eq!(statuses.len(), 1, "one registration: {statuses:?}");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_form_fits_a_phone_and_every_control_has_a_label() {
    let stack = Stack::start().await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser
        .set_window_size(390, 844)
        .await
        .expect("phone-sized window");
    browser.goto(&stack.api_base).await.expect("form loads");
    let overflow = browser
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .expect("measure");
    assert!(
        overflow.as_i64().is_some_and(|px| px <= 0),
        "no sideways scrolling: {overflow}"
    );
    let unlabeled = browser
        .execute(
            "return [...document.querySelectorAll('input, select, button')].filter(e => \
               !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()\
             ).map(e => e.id || e.className);",
            vec![],
        )
        .await
        .expect("labels");
    assert_eq!(
        unlabeled,
        serde_json::json!([]),
        "every control is named for screen readers and keyboards"
    );
    // Keyboard: Tab from the team name reaches the captain's name.
    browser
        .find(Locator::Id("team_name"))
        .await
        .expect("field")
        .click()
        .await
        .expect("focus");
    browser
        .active_element()
        .await
        .expect("focused")
        .send_keys("\u{E004}")
        .await
        .expect("tab");
    let focused = browser
        .execute("return document.activeElement.id;", vec![])
        .await
        .expect("focus");
    assert_eq!(focused, "captain_name");
    std::fs::write(
        screenshot_path("form-phone.png"),
        browser.screenshot().await.expect("shot"),
    )
    .expect("save");
    browser.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_team_already_registered_is_told_so_and_not_asked_to_retry() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let first = stack.submit(&intake_testkit::form::TestForm::valid()).await;
    stack.wait_final(&first, Duration::from_secs(60)).await;
    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    let files = tempfile::tempdir().expect("files");
    browser.goto(&stack.api_base).await.expect("form loads");
    fill_valid(&browser, &files).await;
    browser
        .find(Locator::Id("submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    let said = eventually("the duplicate message", Duration::from_secs(30), || async {
        let said = text(&browser, "#form-error").await;
        said.contains("already registered").then_some(said)
    })
    .await;
    assert!(!said.contains("Try again"), "{said}");
    std::fs::write(
        screenshot_path("form-duplicate.png"),
        browser.screenshot().await.expect("shot"),
    )
    .expect("save");
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    assert_eq!(stack.staged_files(), 0);
    browser.close().await.expect("close");
}
