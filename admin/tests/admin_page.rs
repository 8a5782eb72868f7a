//! The admin page in headless Chromium: sign in with a token, see the failed registrations,
//! open one, re-drive a selection. Screenshots go to `target/test-output/`.

use std::time::Duration;

use fantoccini::Locator;
use intake_testkit::admin_stack::{AdminStack, TOKEN};
use intake_testkit::browser::{ChromeDriver, screenshot_path, text};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::eventually;
use intake_testkit::stack::team;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn support_signs_in_sees_failures_and_redrives_a_selection() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let ids = [
        admin.failed_registration(&team(1)).await,
        admin.failed_registration(&team(2)).await,
    ];
    admin.stack.cloudinary.set_default(Behaviour::Normal);

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(&admin.base).await.expect("page loads");

    // A wrong token is refused on the page.
    browser
        .find(Locator::Id("token"))
        .await
        .expect("token")
        .send_keys("wrong-token-wrong-token")
        .await
        .expect("type");
    browser
        .find(Locator::Css("#sign-in-form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    let refused = eventually("refusal message", Duration::from_secs(10), || async {
        let message = text(&browser, "#message").await;
        message.contains("refused").then_some(message)
    })
    .await;
    assert!(refused.contains("token"));

    let token = browser.find(Locator::Id("token")).await.expect("token");
    token.clear().await.expect("clear");
    token.send_keys(TOKEN).await.expect("type");
    browser
        .find(Locator::Css("#sign-in-form button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    eventually("two failed rows", Duration::from_secs(10), || async {
        let rows = browser
            .find_all(Locator::Css("#failed tbody tr"))
            .await
            .ok()?;
        (rows.len() == 2).then_some(())
    })
    .await;
    let table = text(&browser, "#failed").await;
    assert!(table.contains("DOCUMENT_REJECTED"), "{table}");
    for id in &ids {
        assert!(table.contains(id.as_str()), "{table}");
    }
    std::fs::write(
        screenshot_path("admin-failed-list.png"),
        browser.screenshot().await.expect("screenshot"),
    )
    .expect("save screenshot");

    // Open one.
    browser
        .find(Locator::Css("a.open"))
        .await
        .expect("link")
        .click()
        .await
        .expect("click");
    let detail = eventually("detail panel", Duration::from_secs(10), || async {
        let detail = text(&browser, "#detail").await;
        detail.contains("DOCUMENT_REJECTED").then_some(detail)
    })
    .await;
    assert!(
        !detail.contains("ICCT-000"),
        "a registration that never saved holds no team ID: {detail}"
    );
    assert!(
        !detail.contains("9800000001"),
        "phones are masked: {detail}"
    );

    // Re-drive the selection.
    browser
        .find(Locator::Id("select-all"))
        .await
        .expect("select all")
        .click()
        .await
        .expect("click");
    browser
        .find(Locator::Id("reason"))
        .await
        .expect("reason")
        .send_keys("upstream fixed")
        .await
        .expect("type");
    browser
        .find(Locator::Id("redrive-selected"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    eventually("re-drive message", Duration::from_secs(10), || async {
        text(&browser, "#message")
            .await
            .contains("2 of 2 re-driven")
            .then_some(())
    })
    .await;
    for id in &ids {
        let status = admin.stack.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
    std::fs::write(
        screenshot_path("admin-after-redrive.png"),
        browser.screenshot().await.expect("screenshot"),
    )
    .expect("save screenshot");
    let audit = admin.get_json("/admin/v1/audit").await;
    assert!(audit["entries"].as_array().is_some_and(|e| {
        e.iter()
            .any(|e| e["action"] == "redrive_bulk" && e["actor"] == "alice")
    }));
    browser.close().await.expect("close browser");
}
