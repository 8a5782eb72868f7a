//! The one settings struct of Intake. Sources, later ones winning: built-in defaults, an
//! optional TOML file named by `INTAKE_CONFIG`, then `INTAKE_*` environment variables (and
//! the conventional `CLOUDINARY_URL`). Secrets are `SecretString`, so no log prints them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

use crate::keys::RedisKeys;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
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
pub struct Settings {
    pub redis_url: String,
    pub redis_prefix: String,
    pub database_url: SecretString,
    pub api_addr: SocketAddr,
    pub worker_addr: SocketAddr,
    /// The admin service's listen address; private (loopback) by default.
    pub admin_addr: SocketAddr,
    pub worker_concurrency: usize,
    pub staging_dir: PathBuf,
    /// Stage uploads in this S3 bucket instead of `staging_dir`, so the api and the workers
    /// can run on different hosts. Credentials come from `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    pub staging_s3_bucket: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, …); unset means AWS.
    pub staging_s3_endpoint: Option<String>,
    pub staging_s3_region: String,
    /// S3 credentials; unset means `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
    pub staging_s3_access_key_id: Option<String>,
    pub staging_s3_secret_access_key: Option<SecretString>,
    /// Key prefix of staged uploads inside the bucket.
    pub staging_s3_prefix: String,
    pub cloudinary_url: Option<SecretString>,
    pub cloudinary_api_base: String,
    pub cloudinary_folder: String,
    pub media_dir: PathBuf,
    pub smtp_url: Option<SecretString>,
    pub mail_from: Option<String>,
    pub outbox_dir: PathBuf,
    pub admin_tokens: Option<SecretString>,
    pub team_id_prefix: String,
    pub team_id_width: usize,
    pub rate_limit_per_minute: u64,
    pub rate_limit_per_hour: u64,
    pub idempotency_ttl_secs: u64,
    pub staging_retention_secs: u64,
    /// Cap on a whole submission's body.
    pub max_body_bytes: u64,
    /// How long one request may take before the api answers 408.
    pub request_timeout_secs: u64,
    /// Attempts a job gets before it is failed for good.
    pub job_max_attempts: u32,
    /// After SIGTERM, how long a worker lets in-flight jobs finish before it stops; jobs
    /// still running then are re-queued by the other workers' heartbeats.
    pub shutdown_deadline_secs: u64,
    /// How often a worker proves it is alive; one silent for three beats is presumed dead
    /// and its in-flight jobs go back to the queue.
    pub worker_heartbeat_secs: u64,
    /// How often an idle worker looks for due jobs, in milliseconds: the longest a newly
    /// accepted registration waits before a free worker takes it.
    pub worker_poll_interval_ms: u64,
    /// How often a worker sweeps the staging directory (one worker at a time does).
    pub janitor_interval_secs: u64,
    /// How old a staged upload that no job references must be before it is removed (an
    /// api that crashed mid-request leaves such uploads).
    pub staging_orphan_grace_secs: u64,
    /// Longest wait for one answer from Cloudinary.
    pub cloudinary_timeout_secs: u64,
    /// Longest wait for one SMTP exchange.
    pub smtp_timeout_secs: u64,
    /// Longest a Postgres statement of ours waits for a lock (Postgres' `lock_timeout`)
    /// before it fails and the job's attempt is retried, instead of hanging.
    pub database_lock_timeout_ms: u64,
    /// Postgres ends a session of ours that sits inside a transaction this long without a
    /// statement (`idle_in_transaction_session_timeout`), releasing its locks: a worker on
    /// a host that vanished holds none for longer than this.
    pub database_idle_in_transaction_timeout_secs: u64,
    /// Origins allowed to call the api from a browser (CORS); empty allows none.
    #[serde(deserialize_with = "comma_list")]
    pub cors_allowed_origins: Vec<String>,
    /// Header set by a trusted reverse proxy with the client's address (for example
    /// `x-forwarded-for`); unset means the peer address identifies the client.
    pub trusted_proxy_header: Option<String>,
    /// Send `Strict-Transport-Security` (only behind HTTPS).
    pub hsts: bool,
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: "intake".into(),
            database_url: SecretString::from("postgres://postgres@127.0.0.1:5432/intake"),
            api_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            worker_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 8081)),
            // Jobs spend their time waiting on Cloudinary and SMTP, not on the CPU.
            worker_concurrency: 32,
            staging_dir: "./var/staging".into(),
            staging_s3_bucket: None,
            staging_s3_endpoint: None,
            staging_s3_region: "us-east-1".into(),
            staging_s3_access_key_id: None,
            staging_s3_secret_access_key: None,
            staging_s3_prefix: "staging".into(),
            cloudinary_url: None,
            cloudinary_api_base: "https://api.cloudinary.com".into(),
            cloudinary_folder: "intake".into(),
            media_dir: "./var/media".into(),
            smtp_url: None,
            mail_from: None,
            outbox_dir: "./var/outbox".into(),
            admin_tokens: None,
            team_id_prefix: "ICCT".into(),
            team_id_width: 4,
            rate_limit_per_minute: 10,
            rate_limit_per_hour: 100,
            idempotency_ttl_secs: 86_400,
            staging_retention_secs: 604_800,
            max_body_bytes: 12 * 1024 * 1024,
            request_timeout_secs: 30,
            job_max_attempts: 10,
            shutdown_deadline_secs: 30,
            worker_heartbeat_secs: 2,
            worker_poll_interval_ms: 10,
            janitor_interval_secs: 300,
            staging_orphan_grace_secs: 3600,
            cloudinary_timeout_secs: 30,
            smtp_timeout_secs: 10,
            database_lock_timeout_ms: 5_000,
            database_idle_in_transaction_timeout_secs: 30,
            cors_allowed_origins: Vec::new(),
            trusted_proxy_header: None,
            hsts: false,
            log_format: LogFormat::Auto,
        }
    }
}

impl Settings {
    /// Reads the process environment (and the file `INTAKE_CONFIG` names) and validates.
    pub fn load() -> Result<Self, ConfigError> {
        Self::from_figment(Self::figment())
    }

    /// The layered sources, exposed so tests can add their own on top.
    pub fn figment() -> Figment {
        let mut figment = Figment::new();
        if let Ok(path) = std::env::var("INTAKE_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment
            .merge(Env::prefixed("INTAKE_").ignore(&["config"]))
            .merge(Env::raw().only(&["CLOUDINARY_URL"]))
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(Box::new)?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, reason: &str| {
            Err(ConfigError::Invalid {
                setting,
                reason: reason.to_owned(),
            })
        };
        if !["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|s| self.redis_url.starts_with(s))
        {
            return invalid(
                "INTAKE_REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            );
        }
        if self.redis_prefix.is_empty()
            || !self
                .redis_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        {
            return invalid(
                "INTAKE_REDIS_PREFIX",
                "must be non-empty letters, digits, '-', '_', '.' or ':'",
            );
        }
        if self.worker_concurrency == 0 {
            return invalid("INTAKE_WORKER_CONCURRENCY", "must be at least 1");
        }
        if self.team_id_prefix.is_empty()
            || !self
                .team_id_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric())
        {
            return invalid(
                "INTAKE_TEAM_ID_PREFIX",
                "must be non-empty letters and digits",
            );
        }
        if !(1..=12).contains(&self.team_id_width) {
            return invalid("INTAKE_TEAM_ID_WIDTH", "must be between 1 and 12");
        }
        if self.idempotency_ttl_secs == 0 {
            return invalid("INTAKE_IDEMPOTENCY_TTL_SECS", "must be at least 1");
        }
        if self.max_body_bytes < crate::domain::DocumentType::MAX_BYTES {
            return invalid(
                "INTAKE_MAX_BODY_BYTES",
                "must be at least 5 MiB, the size of one document",
            );
        }
        if self.request_timeout_secs == 0 {
            return invalid("INTAKE_REQUEST_TIMEOUT_SECS", "must be at least 1");
        }
        if self.janitor_interval_secs == 0 {
            return invalid("INTAKE_JANITOR_INTERVAL_SECS", "must be at least 1");
        }
        if self.worker_poll_interval_ms == 0 {
            return invalid("INTAKE_WORKER_POLL_INTERVAL_MS", "must be at least 1");
        }
        if self.worker_heartbeat_secs == 0 {
            return invalid("INTAKE_WORKER_HEARTBEAT_SECS", "must be at least 1");
        }
        if self.cloudinary_timeout_secs == 0 || self.smtp_timeout_secs == 0 {
            return invalid(
                "INTAKE_CLOUDINARY_TIMEOUT_SECS / INTAKE_SMTP_TIMEOUT_SECS",
                "must be at least 1",
            );
        }
        if self.database_lock_timeout_ms == 0 || self.database_idle_in_transaction_timeout_secs == 0
        {
            return invalid(
                "INTAKE_DATABASE_LOCK_TIMEOUT_MS / INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS",
                "must be at least 1 (0 would let a statement or a silent session hold locks forever)",
            );
        }
        if self.job_max_attempts == 0 {
            return invalid("INTAKE_JOB_MAX_ATTEMPTS", "must be at least 1");
        }
        if let Some(header) = &self.trusted_proxy_header
            && axum_header_name_invalid(header)
        {
            return invalid(
                "INTAKE_TRUSTED_PROXY_HEADER",
                "must be a valid HTTP header name",
            );
        }
        Ok(())
    }

    pub fn keys(&self) -> RedisKeys {
        RedisKeys::new(self.redis_prefix.clone())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// How long staged files of unfinished registrations are kept, and how long a
    /// completed registration's status stays readable.
    pub fn staging_retention(&self) -> Duration {
        Duration::from_secs(self.staging_retention_secs)
    }

    pub fn idempotency_ttl(&self) -> Duration {
        Duration::from_secs(self.idempotency_ttl_secs)
    }

    /// How an HTTP service of ours serves: HSTS or not, and how long shutdown lets open
    /// connections finish.
    pub fn serve_options(&self) -> crate::http::serve::ServeOptions {
        crate::http::serve::ServeOptions {
            hsts: self.hsts,
            drain: Duration::from_secs(self.shutdown_deadline_secs),
        }
    }
}

fn axum_header_name_invalid(name: &str) -> bool {
    name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Accepts `"a, b"` (as environment variables give it) or a list (as TOML does).
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Either::Many(v) => v,
    })
}

#[cfg(test)]
// figment's Jail fixes the closure's error type; its size is not ours to choose.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_match_the_contract() {
        Jail::expect_with(|_| {
            let s = Settings::from_figment(Settings::figment()).map_err(|e| e.to_string())?;
            assert_eq!(s.redis_url, "redis://127.0.0.1:6379");
            assert_eq!(s.redis_prefix, "intake");
            assert_eq!(s.api_addr.to_string(), "127.0.0.1:8080");
            assert_eq!(s.rate_limit_per_minute, 10);
            assert_eq!(s.rate_limit_per_hour, 100);
            assert_eq!(s.idempotency_ttl_secs, 86_400);
            assert_eq!(s.team_id_prefix, "ICCT");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "intake.toml",
                "redis_prefix = \"fromfile\"\nrate_limit_per_minute = 3\n",
            )?;
            jail.set_env("INTAKE_CONFIG", "intake.toml");
            jail.set_env("INTAKE_RATE_LIMIT_PER_MINUTE", "7");
            jail.set_env(
                "INTAKE_CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            );
            jail.set_env("CLOUDINARY_URL", "cloudinary://k:s@c");
            let s = Settings::from_figment(Settings::figment()).map_err(|e| e.to_string())?;
            assert_eq!(s.redis_prefix, "fromfile");
            assert_eq!(s.rate_limit_per_minute, 7);
            assert_eq!(
                s.cors_allowed_origins,
                vec!["https://a.example", "https://b.example"]
            );
            assert!(s.cloudinary_url.is_some());
            Ok(())
        });
    }

    #[test]
    fn bad_setting_is_named() {
        Jail::expect_with(|jail| {
            jail.set_env("INTAKE_TEAM_ID_WIDTH", "0");
            let err = Settings::from_figment(Settings::figment()).expect_err("width 0 is refused");
            assert!(err.to_string().contains("INTAKE_TEAM_ID_WIDTH"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_database_timeout_of_zero_is_refused() {
        for name in [
            "INTAKE_DATABASE_LOCK_TIMEOUT_MS",
            "INTAKE_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECS",
        ] {
            Jail::expect_with(|jail| {
                jail.set_env(name, "0");
                let err = Settings::from_figment(Settings::figment())
                    .expect_err("0 would mean no limit in Postgres");
                assert!(err.to_string().contains(name), "{err}");
                Ok(())
            });
        }
    }

    #[test]
    fn secrets_do_not_reach_debug_output() {
        Jail::expect_with(|jail| {
            jail.set_env("INTAKE_SMTP_URL", "smtp://user:hunter2@mail.example");
            let s = Settings::from_figment(Settings::figment()).map_err(|e| e.to_string())?;
            assert!(!format!("{s:?}").contains("hunter2"));
            Ok(())
        });
    }
}
