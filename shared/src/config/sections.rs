//! The settings sections, one per concern. A field's serde name is its variable's name
//! without `INTAKE_` (`url` of [`RedisSettings`] is `INTAKE_REDIS_URL`); defaults are the
//! contract's (docs/contract.md §13).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, Section, at_least_one, comma_list, millis, secs};
use crate::keys::RedisKeys;

/// Where Redis is and the prefix of every key Intake writes there.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    #[serde(rename = "redis_url")]
    pub url: String,
    /// Several deployments (or parallel tests) can share one Redis under different prefixes.
    #[serde(rename = "redis_prefix")]
    pub prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "intake".into(),
        }
    }
}

impl Section for RedisSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|s| self.url.starts_with(s))
        {
            return Err(ConfigError::invalid(
                "INTAKE_REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        if self.prefix.is_empty()
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return Err(ConfigError::invalid(
                "INTAKE_REDIS_PREFIX",
                "must be non-empty letters, digits, '-', '_', '.' or ':'",
            ));
        }
        Ok(())
    }
}

impl RedisSettings {
    pub fn keys(&self) -> RedisKeys {
        RedisKeys::new(self.prefix.clone())
    }
}

/// The job queue, which every process that pushes or consumes must see alike (a difference
/// would strand jobs or hand live ones to a second worker).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct QueueSettings {
    /// Attempts a job gets before it is failed for good.
    #[serde(rename = "job_max_attempts")]
    pub max_attempts: u32,
    /// How long an `Idempotency-Key` (and the queue's own idempotency entry) is remembered.
    #[serde(rename = "idempotency_ttl_secs", deserialize_with = "secs")]
    pub idempotency_ttl: Duration,
    /// How often a worker proves it is alive; one silent for three beats is presumed dead
    /// and its in-flight jobs go back to the queue.
    #[serde(rename = "worker_heartbeat_secs", deserialize_with = "secs")]
    pub heartbeat: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            idempotency_ttl: Duration::from_secs(86_400),
            heartbeat: Duration::from_secs(2),
        }
    }
}

impl Section for QueueSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_JOB_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        at_least_one("INTAKE_IDEMPOTENCY_TTL_SECS", self.idempotency_ttl)?;
        at_least_one("INTAKE_WORKER_HEARTBEAT_SECS", self.heartbeat)
    }
}

/// Where uploads wait between the api and a worker: a directory, or an S3 bucket so the api
/// and the workers can run on different hosts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StagingSettings {
    #[serde(rename = "staging_dir")]
    pub dir: PathBuf,
    /// Stage in this S3 bucket instead of `dir`.
    #[serde(rename = "staging_s3_bucket")]
    pub s3_bucket: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, …); unset means AWS.
    #[serde(rename = "staging_s3_endpoint")]
    pub s3_endpoint: Option<String>,
    #[serde(rename = "staging_s3_region")]
    pub s3_region: String,
    /// S3 credentials; unset means `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    #[serde(rename = "staging_s3_access_key_id")]
    pub s3_access_key_id: Option<String>,
    #[serde(rename = "staging_s3_secret_access_key")]
    pub s3_secret_access_key: Option<SecretString>,
    /// Key prefix of staged uploads inside the bucket.
    #[serde(rename = "staging_s3_prefix")]
    pub s3_prefix: String,
    /// How long staged files of unfinished registrations are kept, and how long a
    /// registration's status record stays readable once it is final.
    #[serde(rename = "staging_retention_secs", deserialize_with = "secs")]
    pub retention: Duration,
    /// Whether the api answers `202` only once the staged object is on stable storage
    /// (`strict`) or as soon as it is written (`relaxed`, the default); docs/operations.md,
    /// "Durability".
    #[serde(rename = "durability")]
    pub durability: crate::staging::Durability,
}

impl Default for StagingSettings {
    fn default() -> Self {
        Self {
            dir: "./var/staging".into(),
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_prefix: "staging".into(),
            retention: Duration::from_secs(604_800),
            durability: crate::staging::Durability::Relaxed,
        }
    }
}

impl Section for StagingSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("INTAKE_STAGING_RETENTION_SECS", self.retention)
    }
}

/// Postgres: where it is and how long our sessions may wait on or hold its locks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    #[serde(rename = "database_url")]
    pub url: SecretString,
    /// Longest a statement of ours waits for a lock (Postgres' `lock_timeout`) before it
    /// fails and the attempt is retried, instead of hanging.
    #[serde(rename = "database_lock_timeout_ms", deserialize_with = "millis")]
    pub lock_timeout: Duration,
    /// Postgres ends a session of ours that sits inside a transaction this long without a
    /// statement (`idle_in_transaction_session_timeout`), releasing its locks: a worker on
    /// a host that vanished holds none for longer than this.
    #[serde(
        rename = "database_idle_in_transaction_timeout_secs",
        deserialize_with = "secs"
    )]
    pub idle_in_transaction_timeout: Duration,
    /// Postgres connections one process may hold; unset, a worker derives it from its
    /// concurrency ([`DatabaseSettings::worker_pool_size`]) and the admin service holds 5.
    #[serde(rename = "database_pool_size")]
    pub pool_size: Option<u32>,
}

impl DatabaseSettings {
    /// The connections a worker running `concurrency` jobs holds at most, unless
    /// `INTAKE_DATABASE_POOL_SIZE` says otherwise. A job holds a connection only for its
    /// few statements (milliseconds, among uploads and email that take far longer), and a
    /// process's saves take their turn one at a time, so an eighth of the jobs in flight
    /// plus two spare serve them: 6 at concurrency 32, and eight such workers hold at most
    /// 48, well under Postgres' default `max_connections` of 100. (A connection per job, as
    /// before, let four workers of 32 take 98 of the 100, and eight fail for want of one.)
    pub fn worker_pool_size(&self, concurrency: usize) -> u32 {
        self.pool_size
            .unwrap_or_else(|| u32::try_from(concurrency / 8 + 2).unwrap_or(u32::MAX))
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/intake"),
            lock_timeout: Duration::from_millis(5_000),
            idle_in_transaction_timeout: Duration::from_secs(30),
            pool_size: None,
        }
    }
}

impl Section for DatabaseSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        const NO_LIMIT: &str =
            "must be at least 1 (0 would let a statement or a silent session hold locks forever)";
        if self.lock_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "INTAKE_DATABASE_LOCK_TIMEOUT_MS",
                NO_LIMIT,
            ));
        }
        if self.pool_size == Some(0) {
            return Err(ConfigError::invalid(
                "INTAKE_DATABASE_POOL_SIZE",
                "must be at least 1",
            ));
        }
        if self.idle_in_transaction_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS",
                NO_LIMIT,
            ));
        }
        Ok(())
    }
}

/// Where documents go: Cloudinary when `CLOUDINARY_URL` is set, else `media_dir` (the local
/// media backend, for development).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CloudinarySettings {
    #[serde(rename = "cloudinary_url")]
    pub url: Option<SecretString>,
    #[serde(rename = "cloudinary_api_base")]
    pub api_base: String,
    #[serde(rename = "cloudinary_folder")]
    pub folder: String,
    /// Longest wait for one answer from Cloudinary.
    #[serde(rename = "cloudinary_timeout_secs", deserialize_with = "secs")]
    pub timeout: Duration,
    #[serde(rename = "media_dir")]
    pub media_dir: PathBuf,
}

impl Default for CloudinarySettings {
    fn default() -> Self {
        Self {
            url: None,
            api_base: "https://api.cloudinary.com".into(),
            folder: "intake".into(),
            timeout: Duration::from_secs(30),
            media_dir: "./var/media".into(),
        }
    }
}

impl Section for CloudinarySettings {
    fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("INTAKE_CLOUDINARY_TIMEOUT_SECS", self.timeout)
    }
}

/// Where confirmation emails go: SMTP when `INTAKE_SMTP_URL` is set, else files in
/// `outbox_dir` (for development).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    pub smtp_url: Option<SecretString>,
    /// The From mailbox (`Name <address>`); required with SMTP.
    #[serde(rename = "mail_from")]
    pub from: Option<String>,
    pub outbox_dir: PathBuf,
    /// Longest wait for one SMTP exchange.
    #[serde(rename = "smtp_timeout_secs", deserialize_with = "secs")]
    pub timeout: Duration,
    /// Confirmation and decision emails one recipient address may get per UTC day; past it
    /// a registration completes with `email_status: "suppressed"`. 0 turns the cap off.
    pub mail_cap_per_recipient_per_day: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: None,
            outbox_dir: "./var/outbox".into(),
            timeout: Duration::from_secs(10),
            mail_cap_per_recipient_per_day: 5,
        }
    }
}

impl Section for MailSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("INTAKE_SMTP_TIMEOUT_SECS", self.timeout)?;
        if self.smtp_url.is_some() && self.from.is_none() {
            return Err(ConfigError::invalid(
                "INTAKE_MAIL_FROM",
                "is required when INTAKE_SMTP_URL is set",
            ));
        }
        Ok(())
    }
}

/// How team IDs are written: `ICCT-0042` is prefix `ICCT`, width 4.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TeamIdFormat {
    #[serde(rename = "team_id_prefix")]
    pub prefix: String,
    #[serde(rename = "team_id_width")]
    pub width: usize,
}

impl Default for TeamIdFormat {
    fn default() -> Self {
        Self {
            prefix: "ICCT".into(),
            width: 4,
        }
    }
}

impl Section for TeamIdFormat {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.prefix.is_empty() || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::invalid(
                "INTAKE_TEAM_ID_PREFIX",
                "must be non-empty letters and digits",
            ));
        }
        if !(1..=12).contains(&self.width) {
            return Err(ConfigError::invalid(
                "INTAKE_TEAM_ID_WIDTH",
                "must be between 1 and 12",
            ));
        }
        Ok(())
    }
}

/// The public api's own settings: where it listens and what it lets in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ApiSection {
    #[serde(rename = "api_addr")]
    pub addr: SocketAddr,
    /// Submissions per client address per minute and per hour; 0 turns a limit off.
    pub rate_limit_per_minute: u64,
    pub rate_limit_per_hour: u64,
    /// Cap on a whole submission's body.
    pub max_body_bytes: u64,
    /// How long one request may take before the api answers 408.
    #[serde(rename = "request_timeout_secs", deserialize_with = "secs")]
    pub request_timeout: Duration,
    /// Origins allowed to call the api from a browser (CORS); empty allows none.
    #[serde(deserialize_with = "comma_list")]
    pub cors_allowed_origins: Vec<String>,
    /// Header set by a trusted reverse proxy with the client's address (for example
    /// `x-forwarded-for`); unset means the peer address identifies the client.
    pub trusted_proxy_header: Option<String>,
    /// IPv6 clients are limited per network of this prefix length, not per address: one
    /// customer is usually handed a whole /64, which would otherwise be an endless supply of
    /// fresh limits. 1–128.
    pub rate_limit_ipv6_prefix: u8,
    /// Event streams one client (as the rate limit tells clients apart) may hold open at
    /// once on one api process; the next is refused with 429 and the client polls instead.
    pub event_streams_per_client: usize,
    /// How long an event stream stays open before the server ends it (with `event:
    /// timeout`), so a forgotten tab does not hold a connection for ever.
    #[serde(rename = "event_stream_max_age_secs", deserialize_with = "secs")]
    pub event_stream_max_age: Duration,
    /// Bytes one client may have staged that no worker has taken yet; over it is `429`.
    /// 0 turns the quota off.
    pub staging_quota_bytes: u64,
    /// A separate address for `/metrics` (a private network Prometheus reaches, say); when
    /// set, the public address answers `/metrics` with 404. Unset: `/metrics` is on `addr`.
    #[serde(rename = "api_metrics_addr")]
    pub metrics_addr: Option<SocketAddr>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_limit_per_minute: 10,
            rate_limit_per_hour: 100,
            max_body_bytes: 12 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            trusted_proxy_header: None,
            rate_limit_ipv6_prefix: 64,
            event_streams_per_client: 4,
            event_stream_max_age: Duration::from_secs(600),
            staging_quota_bytes: 50 * 1024 * 1024,
            metrics_addr: None,
        }
    }
}

impl Section for ApiSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < crate::domain::DocumentType::MAX_BYTES {
            return Err(ConfigError::invalid(
                "INTAKE_MAX_BODY_BYTES",
                "must be at least 5 MiB, the size of one document",
            ));
        }
        at_least_one("INTAKE_REQUEST_TIMEOUT_SECS", self.request_timeout)?;
        if let Some(header) = &self.trusted_proxy_header
            && !is_header_name(header)
        {
            return Err(ConfigError::invalid(
                "INTAKE_TRUSTED_PROXY_HEADER",
                "must be a valid HTTP header name",
            ));
        }
        if self.event_streams_per_client == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_EVENT_STREAMS_PER_CLIENT",
                "must be at least 1",
            ));
        }
        at_least_one(
            "INTAKE_EVENT_STREAM_MAX_AGE_SECS",
            self.event_stream_max_age,
        )?;
        if !(1..=128).contains(&self.rate_limit_ipv6_prefix) {
            return Err(ConfigError::invalid(
                "INTAKE_RATE_LIMIT_IPV6_PREFIX",
                "must be between 1 and 128",
            ));
        }
        // Port 0 is a fresh port for each listener, so only a fixed port can clash.
        if self.metrics_addr == Some(self.addr) && self.addr.port() != 0 {
            return Err(ConfigError::invalid(
                "INTAKE_API_METRICS_ADDR",
                "must differ from INTAKE_API_ADDR (unset it to serve /metrics there)",
            ));
        }
        Ok(())
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A worker process's own settings: its health server, how many jobs it runs, how it polls
/// and how its janitor sweeps staging.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WorkerSection {
    #[serde(rename = "worker_addr")]
    pub addr: SocketAddr,
    /// Jobs in flight in one process; they wait on Cloudinary and SMTP, not on the CPU.
    #[serde(rename = "worker_concurrency")]
    pub concurrency: usize,
    /// How often an idle worker looks for due jobs: the longest a newly accepted
    /// registration waits before a free worker takes it.
    #[serde(rename = "worker_poll_interval_ms", deserialize_with = "millis")]
    pub poll_interval: Duration,
    /// How often a worker sweeps staging (one worker at a time does).
    #[serde(rename = "janitor_interval_secs", deserialize_with = "secs")]
    pub janitor_interval: Duration,
    /// How old a staged upload that no job references must be before it is removed (an
    /// api that crashed mid-request leaves such uploads).
    #[serde(rename = "staging_orphan_grace_secs", deserialize_with = "secs")]
    pub orphan_grace: Duration,
}

impl Default for WorkerSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            concurrency: 32,
            poll_interval: Duration::from_millis(10),
            janitor_interval: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

impl Section for WorkerSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_WORKER_CONCURRENCY",
                "must be at least 1",
            ));
        }
        at_least_one("INTAKE_WORKER_POLL_INTERVAL_MS", self.poll_interval)?;
        at_least_one("INTAKE_JANITOR_INTERVAL_SECS", self.janitor_interval)
    }
}

/// The admin service's own settings: its (private) address, who may call it, how many wrong
/// tokens a client may try, and the certificate it serves HTTPS with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AdminSection {
    #[serde(rename = "admin_addr")]
    pub addr: SocketAddr,
    /// `name:token` pairs, comma-separated; unset means the admin api refuses everyone.
    #[serde(rename = "admin_tokens")]
    pub tokens: Option<SecretString>,
    /// Calls with a missing or wrong token one client (peer address) may make in a minute;
    /// after that every call of that client is refused until the minute is over, even with
    /// a good token, so guessing cannot go on. At least 1.
    #[serde(rename = "admin_auth_failures_per_minute")]
    pub auth_failures_per_minute: u64,
    /// PEM certificate chain; with `tls_key` the admin serves HTTPS itself.
    #[serde(rename = "admin_tls_cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(rename = "admin_tls_key")]
    pub tls_key: Option<PathBuf>,
}

impl Default for AdminSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            tokens: None,
            auth_failures_per_minute: 10,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Section for AdminSection {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.auth_failures_per_minute == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE",
                "must be at least 1 (the limit cannot be turned off)",
            ));
        }
        self.tls().map(|_| ())
    }
}

impl AdminSection {
    /// The certificate and key files (in that order) when both are set, `None` when neither
    /// is (plain HTTP). One without the other is refused: half a TLS setting would otherwise
    /// quietly serve plain HTTP.
    pub fn tls(&self) -> Result<Option<(&Path, &Path)>, ConfigError> {
        match (self.tls_cert.as_deref(), self.tls_key.as_deref()) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => {
                if cert.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "INTAKE_ADMIN_TLS_CERT",
                        "must be the path of a PEM certificate file",
                    ));
                }
                if key.as_os_str().is_empty() {
                    return Err(ConfigError::invalid(
                        "INTAKE_ADMIN_TLS_KEY",
                        "must be the path of a PEM private key file",
                    ));
                }
                Ok(Some((cert, key)))
            }
            (Some(_), None) => Err(ConfigError::invalid(
                "INTAKE_ADMIN_TLS_KEY",
                "is required when INTAKE_ADMIN_TLS_CERT is set (set both to serve HTTPS, or neither)",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "INTAKE_ADMIN_TLS_CERT",
                "is required when INTAKE_ADMIN_TLS_KEY is set (set both to serve HTTPS, or neither)",
            )),
        }
    }
}

/// How an HTTP service of ours serves, and how long a process lets work in flight finish
/// after SIGTERM (open connections; a worker's running jobs).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServeSettings {
    /// Send `Strict-Transport-Security` (only behind HTTPS).
    pub hsts: bool,
    #[serde(rename = "shutdown_deadline_secs", deserialize_with = "secs")]
    pub shutdown_deadline: Duration,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            hsts: false,
            shutdown_deadline: Duration::from_secs(30),
        }
    }
}

impl Section for ServeSettings {}

impl ServeSettings {
    pub fn options(&self) -> crate::http::serve::ServeOptions {
        crate::http::serve::ServeOptions {
            hsts: self.hsts,
            drain: self.shutdown_deadline,
        }
    }
}

/// How logs are written: JSON for machines, a readable format for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard output is not a terminal, readable text when it is.
    Auto,
    Json,
    Pretty,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
        }
    }
}

impl Section for TelemetrySettings {}

/// How the workers deliver webhooks (docs/contract.md §16): their own slots, so deliveries
/// never take a registration's, and the retry schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Deliveries in flight in one worker process, beside its registration jobs.
    #[serde(rename = "webhook_concurrency")]
    pub concurrency: usize,
    /// Sends in flight to one endpoint across all workers: a slow endpoint holds at most
    /// these, never every delivery slot.
    #[serde(rename = "webhook_endpoint_concurrency")]
    pub endpoint_concurrency: u32,
    /// How long an attempt may take, connecting included.
    #[serde(rename = "webhook_timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
    /// How long a delivery is retried after its first attempt before it is failed (hours,
    /// fractions allowed).
    #[serde(rename = "webhook_retry_hours")]
    pub retry_hours: f64,
    /// The wait before the second attempt; each later wait doubles, plus up to as much
    /// again at random.
    #[serde(rename = "webhook_retry_base_ms", deserialize_with = "millis")]
    pub retry_base: Duration,
    /// The longest wait between two attempts (before the random part).
    #[serde(rename = "webhook_retry_max_delay_secs", deserialize_with = "secs")]
    pub retry_max_delay: Duration,
    /// Deliver to loopback, private, link-local and metadata addresses too (tests, or an
    /// endpoint inside a private network on purpose).
    #[serde(rename = "webhook_allow_private")]
    pub allow_private: bool,
    /// How often a worker hands new outbox events on.
    #[serde(rename = "webhook_dispatch_interval_ms", deserialize_with = "millis")]
    pub dispatch_interval: Duration,
    /// How long a pending delivery may be overdue before the sweep gives it a new job.
    #[serde(rename = "webhook_sweep_grace_secs", deserialize_with = "secs")]
    pub sweep_grace: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            endpoint_concurrency: 4,
            timeout: Duration::from_secs(10),
            retry_hours: 24.0,
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(3600),
            allow_private: false,
            dispatch_interval: Duration::from_secs(1),
            sweep_grace: Duration::from_secs(120),
        }
    }
}

impl Section for WebhookSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.concurrency == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_WEBHOOK_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.endpoint_concurrency == 0 {
            return Err(ConfigError::invalid(
                "INTAKE_WEBHOOK_ENDPOINT_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if !(self.retry_hours > 0.0 && self.retry_hours <= 720.0) {
            return Err(ConfigError::invalid(
                "INTAKE_WEBHOOK_RETRY_HOURS",
                "must be more than 0 and at most 720",
            ));
        }
        at_least_one("INTAKE_WEBHOOK_TIMEOUT_MS", self.timeout)?;
        at_least_one("INTAKE_WEBHOOK_RETRY_BASE_MS", self.retry_base)?;
        at_least_one("INTAKE_WEBHOOK_RETRY_MAX_DELAY_SECS", self.retry_max_delay)?;
        at_least_one(
            "INTAKE_WEBHOOK_DISPATCH_INTERVAL_MS",
            self.dispatch_interval,
        )?;
        at_least_one("INTAKE_WEBHOOK_SWEEP_GRACE_SECS", self.sweep_grace)
    }
}

impl WebhookSettings {
    /// How long a delivery is retried for.
    pub fn retry_window(&self) -> Duration {
        Duration::from_secs_f64(self.retry_hours * 3600.0)
    }
}
