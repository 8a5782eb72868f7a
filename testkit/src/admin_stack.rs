//! The whole system plus the admin service, for admin and `intakectl` tests.

use std::time::Duration;

use crate::stack::Stack;
use intake_admin::AdminApp;
use serde_json::Value;

/// `alice`'s token, configured in the legacy `name:token` form, so `support`.
pub const TOKEN: &str = "support-token-0123456789-abcdefghijklmnop";
/// `bob`'s token, also `name:token`.
pub const OTHER_TOKEN: &str = "operator-token-0123456789-abcdefghijklmnop";
/// `carol`'s token, configured as `carol:viewer:…`.
pub const VIEWER_TOKEN: &str = "viewer-token-0123456789-abcdefghijklmnop";
/// `dave`'s token, configured as `dave:organiser:…`.
pub const ORGANISER_TOKEN: &str = "organiser-token-0123456789-abcdefghijklmnop";

pub struct AdminStack {
    pub stack: Stack,
    pub base: String,
    /// The in-process worker's health and metrics address.
    pub worker_health: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl AdminStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customise: impl FnOnce(&mut crate::settings::StackSettings)) -> Self {
        let mut stack = Stack::start_with(|s| {
            s.admin.tokens = Some(secrecy::SecretString::from(format!(
                "alice:{TOKEN},bob:{OTHER_TOKEN},carol:viewer:{VIEWER_TOKEN},dave:organiser:{ORGANISER_TOKEN}"
            )));
            customise(s);
        })
        .await;
        let health = stack.spawn_worker(4).await;
        // The worker applies the migrations the admin service needs; wait until it has.
        crate::eventually("worker ready", Duration::from_secs(30), || async {
            let ready = crate::http_client()
                .get(format!("http://{health}/health/ready"))
                .send()
                .await
                .ok()?;
            (ready.status() == 200).then_some(())
        })
        .await;
        let app = AdminApp::build(stack.settings.admin())
            .await
            .expect("admin builds");
        let base = format!("http://{}", app.local_addr());
        let server = tokio::spawn(async move {
            let _ = app.run_until(std::future::pending()).await;
        });
        Self {
            stack,
            base,
            worker_health: health,
            server,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(TOKEN, path).await
    }

    /// A GET with another token than the default (support) one.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.stack
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("admin reachable")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON")
    }

    pub async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.post_as(TOKEN, path, body).await
    }

    /// A POST with another token than the default (support) one.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, token, path, body).await
    }

    /// A PATCH with `token`.
    pub async fn patch_as(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.send_as(reqwest::Method::PATCH, token, path, body)
            .await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        self.stack
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("admin reachable")
    }

    /// Submits a registration and waits for it to fail.
    pub async fn failed_registration(&self, form: &crate::form::TestForm) -> String {
        let id = self.stack.submit(form).await;
        let status = self.stack.wait_final(&id, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "failed", "{status}");
        id
    }
}

impl Drop for AdminStack {
    fn drop(&mut self) {
        self.server.abort();
    }
}
