//! Test support: starts the real api on port 0 against the real Redis with a key prefix of
//! its own and a staging directory of its own, speaks HTTP to it, and removes every Redis
//! key and staged file it made when dropped.
#![allow(dead_code)]

pub use intake_testkit::form;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use intake_api::Application;
use intake_shared::config::ApiSettings;
use reqwest::multipart::Form;
use serde_json::Value;
use tempfile::TempDir;

pub fn redis_url() -> String {
    std::env::var("INTAKE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub settings: ApiSettings,
    staging: TempDir,
    server: tokio::task::JoinHandle<()>,
}

/// Settings for a test app: its own Redis prefix and staging directory, port 0, limits off.
pub fn test_settings(staging: &Path) -> ApiSettings {
    let mut settings = ApiSettings::default();
    settings.redis.url = redis_url();
    settings.redis.prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    settings.api.addr = "127.0.0.1:0".parse().expect("literal address");
    settings.api.rate_limit_per_minute = 0;
    settings.api.rate_limit_per_hour = 0;
    settings.staging.dir = staging.to_path_buf();
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(customise: impl FnOnce(&mut ApiSettings)) -> TestApp {
    let staging = tempfile::tempdir().expect("temporary staging directory");
    let mut settings = test_settings(staging.path());
    customise(&mut settings);
    spawn_with_settings(settings, staging).await
}

pub async fn spawn_with_settings(settings: ApiSettings, staging: TempDir) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("the api builds");
    let addr = app.local_addr();
    let server = tokio::spawn(async move {
        let _ = app.run_until(std::future::pending()).await;
    });
    TestApp {
        addr,
        base: format!("http://{addr}"),
        client: intake_testkit::http_client_builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client"),
        settings,
        staging,
        server,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Posts a form with an `Idempotency-Key`.
    pub async fn submit(&self, form: Form, key: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/registrations"))
            .header("Idempotency-Key", key)
            .multipart(form)
            .send()
            .await
            .expect("request sent")
    }

    /// Posts a form with a fresh random `Idempotency-Key`.
    pub async fn submit_new(&self, form: Form) -> reqwest::Response {
        self.submit(form, &uuid::Uuid::new_v4().to_string()).await
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    pub fn staging_dir(&self) -> &Path {
        self.staging.path()
    }

    /// Every file under the staging directory.
    pub fn staged_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self.staging.path(), &mut out);
        out
    }

    /// Every directory directly under the staging directory (one per kept upload).
    pub fn staged_uploads(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.staging.path())
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(self.settings.redis.url.as_str())
            .and_then(|c| c.get_connection())
            .expect("test redis reachable")
    }

    /// Every Redis key this app's prefix owns.
    pub fn redis_keys(&self) -> Vec<String> {
        intake_testkit::redis_keys::matching(
            &self.settings.redis.url,
            &self.settings.redis.keys().all_pattern(),
        )
    }

    /// Jobs in the queue, waiting (apalis parks new jobs in its scheduled set) or active.
    pub fn queued_jobs(&self) -> u64 {
        let queue = intake_shared::queue::config(&self.settings.redis.keys(), &self.settings.queue);
        let mut conn = self.redis();
        let scheduled: u64 = redis::cmd("ZCARD")
            .arg(queue.scheduled_jobs_set())
            .query(&mut conn)
            .expect("zcard");
        let active: u64 = redis::cmd("LLEN")
            .arg(queue.active_jobs_list())
            .query(&mut conn)
            .expect("llen");
        scheduled + active
    }

    /// The job payloads in the queue, decoded.
    pub fn queued_payloads(&self) -> Vec<Value> {
        let queue = intake_shared::queue::config(&self.settings.redis.keys(), &self.settings.queue);
        let values: Vec<Vec<u8>> = redis::cmd("HVALS")
            .arg(queue.job_data_hash())
            .query(&mut self.redis())
            .expect("hvals");
        values
            .iter()
            .map(|v| serde_json::from_slice(v).expect("job payload is JSON"))
            .collect()
    }

    pub fn redis_command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> T {
        cmd.query(&mut self.redis()).expect("redis command")
    }
}

/// The fingerprint the api computes for a form's content.
pub fn fingerprint(form: &form::TestForm) -> String {
    let mut fingerprint = intake_api::intake::form::Fingerprint::default();
    for (name, content) in form.contents() {
        fingerprint.add(&name, &content);
    }
    fingerprint.finish()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        intake_testkit::redis_keys::delete_matching(
            &self.settings.redis.url,
            &self.settings.redis.keys().all_pattern(),
        );
    }
}

/// Reads a problem+json answer, checking the parts every problem must have.
pub async fn problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of a {code} answer"
    );
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["request_id"].as_str(), request_id.as_deref(), "{body}");
    body
}

/// Asserts a 400 `VALIDATION_FAILED` answer lists `code` for `field`; returns the body.
pub async fn field_error(response: reqwest::Response, field: &str, code: &str) -> Value {
    let body = problem(response, 400, "VALIDATION_FAILED").await;
    let errors = body["errors"].as_array().expect("errors array");
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["code"] == code && e["message"].is_string()),
        "expected {field}: {code} in {body}"
    );
    body
}

/// Asserts a 202 answer and returns the registration id.
pub async fn accepted(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    if status != 202 {
        let body = response.text().await.unwrap_or_default();
        panic!("expected 202, got {status}: {body}");
    }
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_owned();
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await.expect("JSON body");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["status"], "queued");
    assert_eq!(body["status_url"], format!("/v1/registrations/{id}"));
    assert_eq!(location, format!("/v1/registrations/{id}"));
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "id is a UUID");
    id
}
