//! The admin page in headless Chromium: sign in with a token, see the failed registrations,
//! open one, re-drive a selection. Screenshots go to `target/test-output/`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use intake_testkit::admin_stack::{AdminStack, TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::eventually;
use intake_testkit::stack::team;

struct ChromeDriver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl ChromeDriver {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver on PATH (scripts/test installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}/status");
        eventually(
            "chromedriver to answer",
            Duration::from_secs(20),
            || async {
                reqwest::get(&url)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(drop)
            },
        )
        .await;
        Self {
            child,
            port,
            _profile: tempfile::tempdir().expect("profile dir"),
        }
    }

    async fn browser(&self) -> Client {
        let profile = self._profile.path().display().to_string();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={profile}"),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("browser session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&dir).expect("test output dir");
    dir.join(name)
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .expect("element")
        .text()
        .await
        .expect("text")
}

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
    assert!(detail.contains("ICCT-000"), "{detail}");
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
