//! The system under test, all real: a private `redis-server` with an append-only file, a
//! fresh Postgres database reached by the workers through a proxy that can cut it, the
//! Cloudinary fake and the SMTP server, one `intake-api` process and several
//! `intake-worker` processes, each logging JSON to a file of the run's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use intake_testkit::cloudinary::FakeCloudinary;
use intake_testkit::form::{TestForm, pdf};
use intake_testkit::postgres::TestDatabase;
use intake_testkit::private_redis::PrivateRedis;
use intake_testkit::proxy::TcpProxy;
use intake_testkit::smtp::SmtpServer;
use serde_json::Value;
use sqlx::PgPool;

/// The Redis key prefix of every run (the Redis is the run's own).
pub const PREFIX: &str = "chaos";
/// The `application_name` intake-worker gives its Postgres sessions (the binary's
/// `intake_worker::db::WORKER_APPLICATION_NAME`; this crate runs it from outside).
const WORKER_APPLICATION_NAME: &str = "intake-worker";

/// Where the binaries under test are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub api: PathBuf,
    pub worker: PathBuf,
}

impl Binaries {
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        let binaries = Self {
            api: dir.join("intake-api"),
            worker: dir.join("intake-worker"),
        };
        for binary in [&binaries.api, &binaries.worker] {
            if !binary.is_file() {
                bail!(
                    "{} is missing: build it first (cargo build --bins)",
                    binary.display()
                );
            }
        }
        Ok(binaries)
    }

    /// The binaries of the build a test runs from (`target/<profile>/deps/<test>` sits
    /// beside `target/<profile>/intake-api`).
    pub fn beside_current_exe() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("current executable")?;
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .context("target directory")?;
        Self::in_dir(profile_dir)
    }
}

/// How the system is set up for a scenario.
#[derive(Debug, Clone)]
pub struct Options {
    pub workers: usize,
    pub concurrency: usize,
    pub request_timeout_secs: u64,
    pub cloudinary_timeout_secs: u64,
    pub job_max_attempts: u32,
    /// More settings for the api (after the run's own, so they win).
    pub api_env: Vec<(&'static str, String)>,
    /// More settings for the workers (after the run's own, so they win).
    pub worker_env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            workers: 3,
            concurrency: 8,
            request_timeout_secs: 30,
            cloudinary_timeout_secs: 3,
            job_max_attempts: 25,
            api_env: Vec::new(),
            worker_env: Vec::new(),
        }
    }
}

pub struct Harness {
    pub bins: Binaries,
    pub options: Options,
    redis: std::sync::Mutex<PrivateRedis>,
    redis_url: String,
    pub db: TestDatabase,
    pub pool: PgPool,
    pub pg_proxy: TcpProxy,
    pub cloudinary: FakeCloudinary,
    pub smtp: SmtpServer,
    pub client: reqwest::Client,
    pub api_addr: std::net::SocketAddr,
    staging: tempfile::TempDir,
    logs: PathBuf,
    api: Option<Child>,
    workers: std::sync::Mutex<Vec<Child>>,
}

/// What the api answered to one submission.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: bool,
    pub body: Value,
}

impl Answer {
    pub fn id(&self) -> Option<String> {
        self.body["id"].as_str().map(str::to_owned)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn log_file(path: &Path) -> anyhow::Result<Stdio> {
    Ok(Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("log file {}", path.display()))?,
    ))
}

impl Harness {
    /// Starts everything and waits until the api answers; `logs` is where the processes'
    /// logs go (kept after the run for the privacy check and for people).
    pub async fn start(bins: Binaries, options: Options, logs: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(logs)?;
        let redis = PrivateRedis::start_persistent();
        let redis_url = redis.url();
        let db = TestDatabase::create().await;
        let pool = PgPool::connect(&db.url).await.context("test database")?;
        let postgres: std::net::SocketAddr = "127.0.0.1:5432".parse()?;
        let pg_proxy = TcpProxy::start(postgres).await;
        let cloudinary = FakeCloudinary::start().await;
        let smtp = SmtpServer::start().await;
        let staging = tempfile::tempdir()?;
        let api_addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut harness = Self {
            api: None,
            bins,
            options,
            redis: std::sync::Mutex::new(redis),
            redis_url,
            db,
            pool,
            pg_proxy,
            cloudinary,
            smtp,
            client: intake_testkit::http_client_builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()?,
            api_addr,
            staging,
            logs: logs.to_path_buf(),
            workers: Default::default(),
        };
        harness.api = Some(harness.spawn_api()?);
        harness
            .wait_until("the api answers", Duration::from_secs(30), || async {
                harness
                    .client
                    .get(harness.url("/health/live"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            })
            .await?;
        for _ in 0..harness.options.workers {
            let worker = harness.spawn_worker()?;
            harness.lock_workers().push(worker);
        }
        if harness.options.workers > 0 {
            // The first worker applies the migrations; wait for the schema.
            harness
                .wait_until("the schema exists", Duration::from_secs(60), || async {
                    sqlx::query("SELECT 1 FROM teams LIMIT 1")
                        .fetch_optional(&harness.pool)
                        .await
                        .is_ok()
                })
                .await?;
        }
        Ok(harness)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api_addr)
    }

    pub fn redis_url(&self) -> String {
        self.redis_url.clone()
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_redis(&self) -> std::sync::MutexGuard<'_, PrivateRedis> {
        self.redis.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills the private Redis as a crash would (its append-only file stays).
    pub fn kill_redis(&self) {
        self.lock_redis().kill();
    }

    /// Starts the private Redis again from its append-only file.
    pub fn restart_redis(&self) {
        self.lock_redis().resume();
    }

    pub fn staging_dir(&self) -> &Path {
        self.staging.path()
    }

    pub fn logs_dir(&self) -> &Path {
        &self.logs
    }

    fn common_env(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INTAKE_REDIS_URL", &self.redis_url)
            .env("INTAKE_REDIS_PREFIX", PREFIX)
            .env("INTAKE_STAGING_DIR", self.staging.path())
            .env("INTAKE_LOG_FORMAT", "json")
            // The processes log at info unless the run asks for more (RUST_LOG).
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            );
    }

    fn spawn_api(&self) -> anyhow::Result<Child> {
        let mut command = Command::new(&self.bins.api);
        self.common_env(&mut command);
        command
            .env("INTAKE_API_ADDR", self.api_addr.to_string())
            .env("INTAKE_RATE_LIMIT_PER_MINUTE", "0")
            .env("INTAKE_RATE_LIMIT_PER_HOUR", "0")
            .env(
                "INTAKE_REQUEST_TIMEOUT_SECS",
                self.options.request_timeout_secs.to_string(),
            )
            .envs(self.options.api_env.iter().map(|(k, v)| (k, v)))
            .stdout(log_file(&self.logs.join("api.log"))?)
            .stderr(log_file(&self.logs.join("api.log"))?)
            .spawn()
            .context("intake-api starts")
    }

    fn spawn_worker(&self) -> anyhow::Result<Child> {
        let mut command = Command::new(&self.bins.worker);
        self.common_env(&mut command);
        command
            .arg("--concurrency")
            .arg(self.options.concurrency.to_string())
            .env(
                "INTAKE_DATABASE_URL",
                self.db.url_via(&self.pg_proxy.addr.to_string()),
            )
            .env("INTAKE_WORKER_ADDR", "127.0.0.1:0")
            .env("CLOUDINARY_URL", self.cloudinary.url())
            .env("INTAKE_CLOUDINARY_API_BASE", self.cloudinary.api_base())
            .env(
                "INTAKE_CLOUDINARY_TIMEOUT_SECS",
                self.options.cloudinary_timeout_secs.to_string(),
            )
            .env("INTAKE_SMTP_URL", self.smtp.url())
            .env("INTAKE_SMTP_TIMEOUT_SECS", "3")
            .env("INTAKE_MAIL_FROM", "Intake <registrations@intake.example>")
            .env("INTAKE_WORKER_HEARTBEAT_SECS", "1")
            .env("INTAKE_SHUTDOWN_DEADLINE_SECS", "5")
            .env(
                "INTAKE_JOB_MAX_ATTEMPTS",
                self.options.job_max_attempts.to_string(),
            )
            .envs(self.options.worker_env.iter().map(|(k, v)| (k, v)))
            .stdout(log_file(&self.logs.join("workers.log"))?)
            .stderr(log_file(&self.logs.join("workers.log"))?)
            .spawn()
            .context("intake-worker starts")
    }

    /// SIGKILLs worker `n` and starts a new one in its place.
    pub fn kill_and_restart_worker(&self, n: usize) -> anyhow::Result<()> {
        let replacement = self.spawn_worker()?;
        let mut workers = self.lock_workers();
        let n = n % workers.len().max(1);
        if let Some(victim) = workers.get_mut(n) {
            let _ = victim.kill();
            let _ = victim.wait();
            *victim = replacement;
        }
        Ok(())
    }

    /// SIGKILLs a worker and starts another in its place every `every`, round the workers,
    /// until `done` is set; how many were killed.
    pub async fn kill_workers_every(
        &self,
        every: Duration,
        done: &std::sync::atomic::AtomicBool,
    ) -> usize {
        use std::sync::atomic::Ordering;
        let mut kills = 0usize;
        while !done.load(Ordering::SeqCst) {
            tokio::time::sleep(every).await;
            if done.load(Ordering::SeqCst) {
                break;
            }
            if self.kill_and_restart_worker(kills).is_ok() {
                kills += 1;
            }
        }
        kills
    }

    /// Polls `check` until it holds, or fails after `timeout`.
    pub async fn wait_until<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !check().await {
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting until {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Submits a form with an idempotency key, once.
    pub async fn submit(&self, form: &TestForm, key: &str) -> anyhow::Result<Answer> {
        let response = self
            .client
            .post(self.url("/v1/registrations"))
            .header("Idempotency-Key", key)
            .multipart(form.to_form())
            .send()
            .await?;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    pub async fn status(&self, id: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get(self.url(&format!("/v1/registrations/{id}")))
            .send()
            .await?
            .json()
            .await?)
    }

    /// Polls every id until all are `completed` or `failed`, or fails after `timeout`;
    /// returns each one's last status.
    pub async fn wait_all_final(
        &self,
        ids: &[String],
        timeout: Duration,
    ) -> anyhow::Result<BTreeMap<String, Value>> {
        let deadline = Instant::now() + timeout;
        let mut finals = BTreeMap::new();
        let mut last: BTreeMap<String, Value> = BTreeMap::new();
        loop {
            let pending: Vec<&String> = ids.iter().filter(|id| !finals.contains_key(*id)).collect();
            if pending.is_empty() {
                return Ok(finals);
            }
            let polled: Vec<(String, Option<Value>)> = futures::stream::iter(pending)
                .map(|id| async move { (id.clone(), self.status(id).await.ok()) })
                .buffer_unordered(32)
                .collect()
                .await;
            for (id, status) in polled {
                match status {
                    Some(status)
                        if matches!(status["status"].as_str(), Some("completed" | "failed")) =>
                    {
                        finals.insert(id, status);
                    }
                    Some(status) => {
                        last.insert(id, status);
                    }
                    None => {}
                }
            }
            if finals.len() == ids.len() {
                return Ok(finals);
            }
            if Instant::now() > deadline {
                let stuck: Vec<String> = ids
                    .iter()
                    .filter(|id| !finals.contains_key(*id))
                    .take(5)
                    .map(|id| format!("{id}: {}", last.get(id).unwrap_or(&Value::Null)))
                    .collect();
                bail!(
                    "{} of {} registrations not final after {timeout:?}; last seen: {stuck:?}",
                    ids.len() - finals.len(),
                    ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(n)
    }

    /// Files left in the staging directory, at any depth.
    pub fn staged_files(&self) -> usize {
        intake_testkit::files_under(self.staging.path())
    }

    /// Uploads (top-level staging directories) last modified between `from` and `to`.
    pub fn uploads_begun_between(
        &self,
        from: std::time::SystemTime,
        to: std::time::SystemTime,
    ) -> usize {
        std::fs::read_dir(self.staging.path())
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok()?.modified().ok())
                    .filter(|modified| *modified >= from && *modified <= to)
                    .count()
            })
            .unwrap_or(0)
    }

    /// The api process' resident memory and its peak so far, in KiB (Linux' `VmRSS` and
    /// `VmHWM`).
    pub fn api_memory_kib(&self) -> Option<(u64, u64)> {
        let pid = self.api.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find(|l| l.starts_with(name))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Every Redis key of the run.
    pub fn redis_keys(&self) -> Vec<String> {
        intake_testkit::redis_keys::matching(&self.redis_url, "*")
    }

    /// The queue's figures as the support tools see them.
    pub async fn queue(&self) -> anyhow::Result<intake_shared::queue::QueueStats> {
        let keys = intake_shared::keys::RedisKeys::new(PREFIX);
        let client = redis::Client::open(self.redis_url.as_str())?;
        let mut conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(intake_shared::queue::stats(
            &mut conn,
            &intake_shared::queue::config(&keys, &Default::default()),
            &keys.failed_index(),
        )
        .await?)
    }

    /// SIGKILLs every worker, as a host losing power would.
    pub fn kill_workers(&self) {
        for mut child in std::mem::take(&mut *self.lock_workers()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Postgres sessions of workers (by their `application_name`) open on the run's database.
    pub async fn worker_sessions(&self) -> anyhow::Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(WORKER_APPLICATION_NAME)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Stops the api and the workers (SIGKILL: what they wrote is already in the logs).
    pub fn stop(&mut self) {
        self.kill_workers();
        if let Some(api) = self.api.as_mut() {
            let _ = api.kill();
            let _ = api.wait();
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registration `n` of a run: a distinct team, its captain's phone derived from `n`, and
/// every other one with a second document.
pub fn registration(n: usize) -> TestForm {
    let form = TestForm::valid_for_team(&format!("Chaos Team {n:05}"))
        .set("captain_phone", &phone(n))
        .set("captain_email", &email(n));
    if n.is_multiple_of(2) {
        form.file("pastor_letter", pdf(3000), "letter.pdf")
    } else {
        form
    }
}

/// Documents registration `n` carries.
pub fn documents(n: usize) -> usize {
    if n.is_multiple_of(2) { 2 } else { 1 }
}

pub fn phone(n: usize) -> String {
    format!("97{n:08}")
}

pub fn email(n: usize) -> String {
    format!("captain.{n:05}@chaos.example")
}
