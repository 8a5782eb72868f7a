//! The system a benchmark measures: release binaries as processes, a private Redis, a fresh
//! Postgres database, and the fakes in this process (instant, or with a set latency).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use intake_testkit::cloudinary::FakeCloudinary;
use intake_testkit::postgres::TestDatabase;
use intake_testkit::private_redis::PrivateRedis;
use intake_testkit::smtp::SmtpServer;
use sqlx::PgPool;

use crate::load::LoadResult;

pub const PREFIX: &str = "bench";
/// The organiser token the admin service is started with.
pub const ADMIN_TOKEN: &str = "bench-organiser-token-0123456789";

pub struct Binaries {
    pub api: PathBuf,
    pub worker: PathBuf,
    /// Needed by the export benchmark only.
    pub admin: PathBuf,
    /// This program, for the load generator and the ceilings.
    pub bench: PathBuf,
}

impl Binaries {
    /// The binaries in `dir`; `intake-admin` must be there too when `admin` (checked here,
    /// so a missing one fails the run before it has measured for minutes).
    pub fn in_dir(dir: &Path, admin: bool) -> anyhow::Result<Self> {
        let bins = Self {
            api: dir.join("intake-api"),
            worker: dir.join("intake-worker"),
            admin: dir.join("intake-admin"),
            bench: std::env::current_exe()?,
        };
        let mut needed = vec![&bins.api, &bins.worker];
        if admin {
            needed.push(&bins.admin);
        }
        for bin in needed {
            if !bin.is_file() {
                bail!("{} is missing: cargo build --release first", bin.display());
            }
        }
        Ok(bins)
    }
}

pub struct System {
    pub bins: Binaries,
    pub redis: PrivateRedis,
    pub db: TestDatabase,
    pub pool: PgPool,
    pub cloudinary: FakeCloudinary,
    pub smtp: SmtpServer,
    pub work: tempfile::TempDir,
    pub logs: PathBuf,
    pub client: reqwest::Client,
}

/// A process that is killed when dropped.
pub struct Process {
    pub child: Child,
    pub addr: Option<std::net::SocketAddr>,
}

impl Process {
    /// `path` on this process's HTTP address (an api or a ceiling, which always have one).
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{path}",
            self.addr.expect("a server process has an address")
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        rss_field(self.pid(), "VmHWM:")
    }

    /// CPU time the process has used so far (user and system), in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(self.pid())
    }

    /// Resident memory now (`VmRSS`), in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_field(self.pid(), "VmRSS:")
    }
}

/// `USER_HZ`, the unit of `/proc`'s CPU times: 100 on Linux for every architecture we run.
const CLOCK_TICKS: f64 = 100.0;

/// CPU time process `pid` has used so far (user and system), in seconds; this process's
/// own with `std::process::id()` (the fakes run here).
pub fn process_cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
            Some((ticks(11)? + ticks(12)?) / CLOCK_TICKS)
        })
        .unwrap_or(0.0)
}

/// CPU seconds of every live process whose command name is `name` (`postgres`,
/// `redis-server`), by pid: sampled before and after a run, the difference is what those
/// processes spent on it (a process that exited in between is left out).
pub fn processes_cpu_seconds(name: &str) -> std::collections::HashMap<u32, f64> {
    let mut cpu = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return cpu;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == name {
            cpu.insert(pid, process_cpu_seconds(pid));
        }
    }
    cpu
}

/// What the processes named in `before` and `after` spent between the two samples.
pub fn cpu_spent(
    before: &std::collections::HashMap<u32, f64>,
    after: &std::collections::HashMap<u32, f64>,
) -> f64 {
    after
        .iter()
        .map(|(pid, now)| now - before.get(pid).copied().unwrap_or(0.0))
        .filter(|spent| *spent > 0.0)
        .sum()
}

/// CPU time the whole machine has spent busy (everything but idle and I/O wait), in seconds.
pub fn machine_busy_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| {
            let cpu = stat.lines().find(|l| l.starts_with("cpu "))?;
            let ticks: Vec<f64> = cpu
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal ...: busy is all but idle, iowait.
            let total: f64 = ticks.iter().take(8).sum();
            let idle = ticks.get(3)? + ticks.get(4)?;
            Some((total - idle) / CLOCK_TICKS)
        })
        .unwrap_or(0.0)
}

fn rss_field(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> anyhow::Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn log_to(path: &Path) -> anyhow::Result<Stdio> {
    Ok(Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    ))
}

impl System {
    pub async fn start(bins: Binaries, logs: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(logs)?;
        let redis = PrivateRedis::start();
        let db = TestDatabase::create().await;
        let pool = PgPool::connect(&db.url).await?;
        intake_store::pg::migrate(&pool).await?;
        Ok(Self {
            bins,
            redis,
            db,
            pool,
            cloudinary: FakeCloudinary::start().await,
            smtp: SmtpServer::start().await,
            work: tempfile::tempdir()?,
            logs: logs.to_path_buf(),
            client: intake_testkit::http_client_builder()
                .timeout(Duration::from_secs(120))
                .build()?,
        })
    }

    pub fn staging(&self) -> PathBuf {
        self.work.path().join("staging")
    }

    /// Where the staging ceiling writes: beside Intake's staging, on the same filesystem.
    pub fn ceiling_staging(&self) -> PathBuf {
        self.work.path().join("ceiling-staging")
    }

    fn env(&self, command: &mut Command) {
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("INTAKE_REDIS_URL", self.redis.url())
            .env("INTAKE_REDIS_PREFIX", PREFIX)
            .env("INTAKE_STAGING_DIR", self.staging())
            .env("INTAKE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info");
    }

    /// The api as deployed (logging at info), rate limits off, the staging quota out of reach.
    pub async fn api(&self) -> anyhow::Result<Process> {
        self.api_with(&[]).await
    }

    /// [`Self::api`] with more settings (`INTAKE_DURABILITY=strict`, say).
    pub async fn api_with(&self, settings: &[(&str, &str)]) -> anyhow::Result<Process> {
        let addr = free_addr()?;
        let mut command = Command::new(&self.bins.api);
        self.env(&mut command);
        command.envs(settings.iter().copied());
        command
            .env("INTAKE_API_ADDR", addr.to_string())
            .env("INTAKE_RATE_LIMIT_PER_MINUTE", "0")
            .env("INTAKE_RATE_LIMIT_PER_HOUR", "0")
            // The load generator is one client with tens of thousands of registrations
            // staged and no worker taking them: a quota that never refuses, so its cost is
            // measured and it refuses nothing.
            .env("INTAKE_STAGING_QUOTA_BYTES", (1u64 << 50).to_string())
            .stdout(log_to(&self.logs.join("api.log"))?)
            .stderr(log_to(&self.logs.join("api.log"))?);
        let process = Process {
            child: command.spawn().context("intake-api")?,
            addr: Some(addr),
        };
        self.wait_http(&format!("http://{addr}/health/live"))
            .await?;
        Ok(process)
    }

    /// A worker that sends email over SMTP to the test server.
    pub fn worker(&self, concurrency: usize) -> anyhow::Result<Process> {
        let mut command = Command::new(&self.bins.worker);
        self.env(&mut command);
        command
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .env("INTAKE_DATABASE_URL", &self.db.url)
            .env("INTAKE_WORKER_ADDR", "127.0.0.1:0")
            .env("CLOUDINARY_URL", self.cloudinary.url())
            .env("INTAKE_CLOUDINARY_API_BASE", self.cloudinary.api_base())
            .env("INTAKE_MAIL_FROM", "Intake <registrations@intake.example>")
            .env("INTAKE_SMTP_URL", self.smtp.url())
            .stdout(log_to(&self.logs.join("workers.log"))?)
            .stderr(log_to(&self.logs.join("workers.log"))?);
        Ok(Process {
            child: command.spawn().context("intake-worker")?,
            addr: None,
        })
    }

    /// The admin service as deployed (logging at info), with one organiser token.
    pub async fn admin(&self) -> anyhow::Result<Process> {
        let addr = free_addr()?;
        let mut command = Command::new(&self.bins.admin);
        self.env(&mut command);
        command
            .env("INTAKE_ADMIN_ADDR", addr.to_string())
            .env(
                "INTAKE_ADMIN_TOKENS",
                format!("bench:organiser:{ADMIN_TOKEN}"),
            )
            .env("INTAKE_DATABASE_URL", &self.db.url)
            .stdout(log_to(&self.logs.join("admin.log"))?)
            .stderr(log_to(&self.logs.join("admin.log"))?);
        let process = Process {
            child: command.spawn().context("intake-admin")?,
            addr: Some(addr),
        };
        self.wait_http(&format!("http://{addr}/health/live"))
            .await?;
        Ok(process)
    }

    /// A ceiling server (`intake-bench ceiling`).
    pub async fn ceiling(&self, mode: &str) -> anyhow::Result<Process> {
        let addr = free_addr()?;
        let child = Command::new(&self.bins.bench)
            .args(["ceiling", "--mode", mode, "--addr", &addr.to_string()])
            .args(["--redis-url", &self.redis.url(), "--redis-prefix", PREFIX])
            .arg("--staging-dir")
            .arg(self.ceiling_staging())
            .stdout(Stdio::null())
            .stderr(log_to(&self.logs.join("ceiling.log"))?)
            .spawn()
            .context("ceiling")?;
        let process = Process {
            child,
            addr: Some(addr),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if Instant::now() > deadline {
                bail!("the {mode} ceiling did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(process)
    }

    async fn wait_http(&self, url: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self
                .client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url} did not answer");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the load generator as its own process with these arguments.
    pub async fn load(&self, args: &[String]) -> anyhow::Result<LoadResult> {
        let output = tokio::process::Command::new(&self.bins.bench)
            .arg("load")
            .args(args)
            .output()
            .await
            .context("load generator")?;
        if !output.status.success() {
            bail!(
                "load generator failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(serde_json::from_slice(&output.stdout)?)
    }

    /// Empties Redis, the tables and staging between measurements.
    pub async fn reset(&self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.redis.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await?;
        sqlx::query(
            "TRUNCATE teams, players, documents, team_claims, team_id_counters, email_deliveries CASCADE",
        )
        .execute(&self.pool)
        .await?;
        let _ = std::fs::remove_dir_all(self.staging());
        let _ = std::fs::remove_dir_all(self.ceiling_staging());
        std::fs::create_dir_all(self.staging())?;
        // Each measurement starts with nothing left to write back from the one before.
        tokio::process::Command::new("sync").status().await?;
        Ok(())
    }

    /// The filesystem staging writes to, as `findmnt` names it (e.g. `/dev/loop0 ext4`).
    pub fn staging_filesystem(&self) -> String {
        Command::new("findmnt")
            .args(["-no", "SOURCE,FSTYPE", "--target"])
            .arg(self.work.path())
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "an unknown filesystem".to_owned())
    }

    /// Writes a file in the run's work directory and returns its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.work.path().join(name);
        std::fs::write(&path, bytes)?;
        Ok(path)
    }

    /// Registrations saved, and the time between the first and the last save.
    /// Postgres sessions the workers hold now (by their `application_name`).
    pub async fn worker_sessions(&self) -> anyhow::Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'intake-worker'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// What the workers' Postgres sessions are doing now: (`wait_event_type:wait_event`, or
    /// `running` / `idle`, count).
    pub async fn worker_waits(&self) -> anyhow::Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT CASE WHEN state = 'idle' THEN 'idle'
                         WHEN wait_event IS NULL THEN 'running'
                         ELSE wait_event_type || ':' || wait_event END, count(*)
             FROM pg_stat_activity WHERE application_name = 'intake-worker' GROUP BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Postgres' `max_connections`.
    pub async fn max_connections(&self) -> anyhow::Result<i64> {
        let (n,): (String,) = sqlx::query_as("SHOW max_connections")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.parse()?)
    }

    pub async fn saved(&self) -> anyhow::Result<(i64, f64)> {
        let (n, span): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM max(created_at) - min(created_at))::float8 FROM teams",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((n, span.unwrap_or(0.0)))
    }
}
