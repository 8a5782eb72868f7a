//! The whole system for a test: the real api and real workers (in this process, or as real
//! `intake-worker` processes for crash tests) against the real Redis with a prefix of the
//! test's own, a fresh Postgres database, the Cloudinary fake and a recording SMTP server.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cloudinary::FakeCloudinary;
use crate::eventually;
use crate::form::TestForm;
use crate::postgres::TestDatabase;
use crate::settings::StackSettings;
use crate::smtp::SmtpServer;
use backon::ExponentialBuilder;
use intake_api::Application;
use intake_worker::Runtime;
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;
use tempfile::TempDir;

pub struct Stack {
    pub settings: StackSettings,
    pub api_base: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub pool: PgPool,
    pub cloudinary: FakeCloudinary,
    pub smtp: SmtpServer,
    pub staging: TempDir,
    api: tokio::task::JoinHandle<()>,
    workers: Vec<InProcessWorker>,
}

struct InProcessWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Retries inside one attempt that take milliseconds, not seconds, in tests.
pub fn fast_retry() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(50))
        .with_max_times(3)
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(customise: impl FnOnce(&mut StackSettings)) -> Self {
        let db = TestDatabase::create().await;
        let cloudinary = FakeCloudinary::start().await;
        let smtp = SmtpServer::start().await;
        let staging = tempfile::tempdir().expect("staging dir");
        let mut settings = StackSettings::default();
        settings.redis.url = std::env::var("INTAKE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        settings.redis.prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        settings.database.url = SecretString::from(db.url.clone());
        settings.api.addr = "127.0.0.1:0".parse().expect("literal");
        settings.api.rate_limit_per_minute = 0;
        settings.api.rate_limit_per_hour = 0;
        // Every test team has the same captains' addresses; the cap has its own tests.
        settings.mail.mail_cap_per_recipient_per_day = 0;
        settings.worker.addr = "127.0.0.1:0".parse().expect("literal");
        settings.worker.concurrency = 4;
        settings.admin.addr = "127.0.0.1:0".parse().expect("literal");
        settings.staging.dir = staging.path().to_path_buf();
        settings.cloudinary.url = Some(SecretString::from(cloudinary.url()));
        settings.cloudinary.api_base = cloudinary.api_base();
        settings.cloudinary.timeout = Duration::from_secs(2);
        settings.mail.smtp_url = Some(SecretString::from(smtp.url()));
        settings.mail.from = Some("Intake <registrations@intake.example>".into());
        settings.mail.timeout = Duration::from_secs(2);
        settings.queue.heartbeat = Duration::from_secs(1);
        settings.queue.max_attempts = 5;
        settings.serve.shutdown_deadline = Duration::from_secs(10);
        // Webhook receivers in tests listen on loopback; retries come fast.
        settings.webhooks.allow_private = true;
        settings.webhooks.timeout = Duration::from_secs(2);
        settings.webhooks.retry_base = Duration::from_millis(200);
        settings.webhooks.retry_max_delay = Duration::from_secs(1);
        settings.webhooks.dispatch_interval = Duration::from_millis(50);
        customise(&mut settings);
        let app = Application::build(settings.api())
            .await
            .expect("api builds");
        let api_base = format!("http://{}", app.local_addr());
        let api = tokio::spawn(async move {
            let _ = app.run_until(std::future::pending()).await;
        });
        let pool = PgPool::connect(&db.url).await.expect("test database");
        Self {
            settings,
            api_base,
            client: crate::http_client(),
            db,
            pool,
            cloudinary,
            smtp,
            staging,
            api,
            workers: Vec::new(),
        }
    }

    /// A worker runtime built from this stack's settings, with fast in-step retries.
    pub async fn runtime(&self, concurrency: usize) -> Runtime {
        self.runtime_with(concurrency, |_| {}).await
    }

    /// A worker runtime built from this stack's settings as `customise` changes them (the
    /// api keeps the originals), with fast in-step retries.
    pub async fn runtime_with(
        &self,
        concurrency: usize,
        customise: impl FnOnce(&mut StackSettings),
    ) -> Runtime {
        let mut settings = self.settings.clone();
        customise(&mut settings);
        let mut runtime = Runtime::build(settings.worker(), Some(concurrency))
            .await
            .expect("worker builds");
        runtime.customise(|p| {
            p.uploader = p.uploader.clone().with_retry(fast_retry());
            p.notifier = p.notifier.clone().with_retry(fast_retry());
        });
        runtime
    }

    /// Starts a worker in this process; returns its health address.
    pub async fn spawn_worker(&mut self, concurrency: usize) -> std::net::SocketAddr {
        self.spawn_worker_with(concurrency, |_| {}).await
    }

    /// Starts a worker in this process with its settings changed by `customise`; returns
    /// its health address.
    pub async fn spawn_worker_with(
        &mut self,
        concurrency: usize,
        customise: impl FnOnce(&mut StackSettings),
    ) -> std::net::SocketAddr {
        let runtime = self.runtime_with(concurrency, customise).await;
        self.spawn_runtime(runtime)
    }

    /// Starts a worker that keeps its duplicate index where the api does not look: to the
    /// api the index is never built, so every team gets through the door and a duplicate is
    /// refused by the workers' claim instead.
    pub async fn spawn_worker_past_the_door(&mut self, concurrency: usize) -> std::net::SocketAddr {
        let mut runtime = self.runtime(concurrency).await;
        let conn =
            intake_shared::redis_conn::connect_lazy(&self.settings.redis.url).expect("redis url");
        let elsewhere = intake_shared::keys::RedisKeys::new(format!(
            "{}:elsewhere",
            self.settings.redis.prefix
        ));
        runtime.customise(|p| {
            p.team_index = intake_store::team_index::TeamIndex::new(conn, elsewhere);
        });
        self.spawn_runtime(runtime)
    }

    /// Starts `runtime` (built with [`Self::runtime`] and changed as a test needs) in this
    /// process; returns its health address.
    pub fn spawn_runtime(&mut self, runtime: Runtime) -> std::net::SocketAddr {
        let addr = runtime.health_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let _ = runtime
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        self.workers.push(InProcessWorker {
            stop: Some(stop),
            task,
        });
        addr
    }

    /// Stops every in-process worker gracefully and waits for them.
    pub async fn stop_workers(&mut self) {
        for mut worker in self.workers.drain(..) {
            if let Some(stop) = worker.stop.take() {
                let _ = stop.send(());
            }
            let _ = worker.task.await;
        }
    }

    /// A real `intake-worker` process with this stack's settings; `binary` is the path
    /// cargo gives tests (`env!("CARGO_BIN_EXE_intake-worker")`). Killed when dropped, so
    /// a test that fails leaves no worker behind.
    pub fn worker_process(&self, binary: &str, concurrency: usize) -> WorkerProcess {
        self.worker_process_logging(binary, concurrency, None)
    }

    /// As [`Self::worker_process`], appending the worker's JSON logs to `log` when given.
    pub fn worker_process_logging(
        &self,
        binary: &str,
        concurrency: usize,
        log: Option<&std::path::Path>,
    ) -> WorkerProcess {
        let output = || -> Stdio {
            log.and_then(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .ok()
            })
            .map(Stdio::from)
            .unwrap_or_else(Stdio::null)
        };
        Command::new(binary)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.settings.worker_env())
            .env("RUST_LOG", "info")
            .stdout(output())
            .stderr(output())
            .spawn()
            .map(WorkerProcess)
            .expect("intake-worker starts")
    }

    pub async fn submit(&self, form: &TestForm) -> String {
        self.submit_with_key(form, &uuid::Uuid::new_v4().to_string())
            .await
    }

    pub async fn submit_with_key(&self, form: &TestForm, key: &str) -> String {
        let response = self.post_form(form, key).await;
        assert_eq!(response.status(), 202, "submission accepted");
        let body: Value = response.json().await.expect("JSON");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Submits `form` with `key` and returns the answer as it came.
    pub async fn post_form(&self, form: &TestForm, key: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/registrations", self.api_base))
            .header("Idempotency-Key", key)
            .multipart(form.to_form())
            .send()
            .await
            .expect("submitted")
    }

    /// Submits `form` with a new key: the registration id if accepted, else the problem's
    /// status and body.
    pub async fn try_submit(&self, form: &TestForm) -> Result<String, (u16, Value)> {
        let response = self
            .post_form(form, &uuid::Uuid::new_v4().to_string())
            .await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        if status == 202 {
            Ok(body["id"].as_str().expect("id").to_owned())
        } else {
            Err((status, body))
        }
    }

    pub async fn status(&self, id: &str) -> Value {
        self.client
            .get(format!("{}/v1/registrations/{id}", self.api_base))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("JSON status")
    }

    /// Polls the status URL until the registration is `completed` or `failed`.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        eventually(&format!("registration {id} to finish"), timeout, || async {
            let status = self.status(id).await;
            matches!(status["status"].as_str(), Some("completed" | "failed")).then_some(status)
        })
        .await
    }

    /// Polls until the registration's status satisfies `check`.
    pub async fn wait_status(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(what, Duration::from_secs(30), || async {
            let status = self.status(id).await;
            check(&status).then_some(status)
        })
        .await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count query");
        n
    }

    /// Files left in the staging directory.
    pub fn staged_files(&self) -> usize {
        crate::files_under(self.staging.path())
    }

    /// Deletes the duplicate index, as a Redis restart without persistence would.
    pub fn forget_team_index(&self) {
        let () = redis::Client::open(self.settings.redis.url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("DEL")
                    .arg(self.settings.keys().team_index())
                    .query(&mut c)
            })
            .expect("index deleted");
    }

    /// The job payloads queued in Redis (to run the pipeline by hand).
    pub fn queued_jobs(&self) -> Vec<intake_shared::job::RegistrationJob> {
        let queue = intake_shared::queue::config(&self.settings.keys(), &self.settings.queue);
        let values: Vec<Vec<u8>> = redis::Client::open(self.settings.redis.url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| redis::cmd("HVALS").arg(queue.job_data_hash()).query(&mut c))
            .expect("job data");
        values
            .iter()
            .map(|v| serde_json::from_slice(v).expect("job payload"))
            .collect()
    }
}

/// An `intake-worker` process a test started: a [`Child`] (kill it, wait for it, signal
/// it by its id) that is killed and reaped when dropped, if still running.
pub struct WorkerProcess(Child);

impl std::ops::Deref for WorkerProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for WorkerProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for worker in &self.workers {
            worker.task.abort();
        }
        self.api.abort();
        crate::redis_keys::delete_matching(
            &self.settings.redis.url,
            &self.settings.keys().all_pattern(),
        );
    }
}

/// A valid registration for a distinct team.
pub fn team(n: usize) -> TestForm {
    TestForm::valid_for_team(&format!("Team Number {n:03}"))
        .set("captain_phone", &format!("98{n:08}"))
}
