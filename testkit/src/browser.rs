//! Headless Chromium for page tests: Debian's `chromium` driven through `chromedriver`
//! (both installed by `scripts/test`), started on a free port with a profile of its own.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::eventually;

pub struct ChromeDriver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub async fn start() -> Self {
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
                crate::http_client()
                    .get(&url)
                    .send()
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

    pub async fn browser(&self) -> Client {
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

/// Where screenshots go: `target/test-output/`.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-output");
    std::fs::create_dir_all(&dir).expect("test output dir");
    dir.join(name)
}

/// The text of the first element matching `css`.
pub async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .expect("element")
        .text()
        .await
        .expect("text")
}

/// The text of every element matching `css` (none when nothing matches).
pub async fn texts(browser: &Client, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in browser
        .find_all(Locator::Css(css))
        .await
        .unwrap_or_default()
    {
        texts.push(element.text().await.unwrap_or_default());
    }
    texts
}

/// The text of the first element matching `css`, or `None` while there is none.
pub async fn text_if_present(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Clicks the first element matching `css`.
pub async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Replaces the text of the first input matching `css` with `keys`.
pub async fn type_into(browser: &Client, css: &str, keys: &str) {
    let input = browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.expect("clear");
    input.send_keys(keys).await.expect("type");
}

/// Saves a screenshot of the page as `name` under [`screenshot_path`].
pub async fn screenshot(browser: &Client, name: &str) {
    std::fs::write(
        screenshot_path(name),
        browser.screenshot().await.expect("screenshot"),
    )
    .expect("save screenshot");
}
