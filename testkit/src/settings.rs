//! A test deployment's settings: every section once, as one shared environment would hold
//! them, from which each binary takes its own (`api()`, `worker()`, `admin()`), so a test
//! changes a value in one place and every process that reads it sees the same.

use intake_shared::config::{
    AdminSection, AdminSettings, ApiSection, ApiSettings, CloudinarySettings, DatabaseSettings,
    LogFormat, MailSettings, QueueSettings, RedisSettings, ServeSettings, StagingSettings,
    TeamIdFormat, TelemetrySettings, WebhookSettings, WorkerSection, WorkerSettings,
};
use intake_shared::keys::RedisKeys;
use secrecy::ExposeSecret;

#[derive(Debug, Clone, Default)]
pub struct StackSettings {
    pub redis: RedisSettings,
    pub queue: QueueSettings,
    pub staging: StagingSettings,
    pub database: DatabaseSettings,
    pub cloudinary: CloudinarySettings,
    pub mail: MailSettings,
    pub team_ids: TeamIdFormat,
    pub webhooks: WebhookSettings,
    pub serve: ServeSettings,
    pub api: ApiSection,
    pub worker: WorkerSection,
    pub admin: AdminSection,
}

impl StackSettings {
    pub fn keys(&self) -> RedisKeys {
        self.redis.keys()
    }

    fn telemetry() -> TelemetrySettings {
        TelemetrySettings {
            log_format: LogFormat::Auto,
        }
    }

    pub fn api(&self) -> ApiSettings {
        ApiSettings {
            api: self.api.clone(),
            redis: self.redis.clone(),
            queue: self.queue.clone(),
            staging: self.staging.clone(),
            serve: self.serve.clone(),
            telemetry: Self::telemetry(),
        }
    }

    pub fn worker(&self) -> WorkerSettings {
        WorkerSettings {
            worker: self.worker.clone(),
            redis: self.redis.clone(),
            queue: self.queue.clone(),
            staging: self.staging.clone(),
            database: self.database.clone(),
            cloudinary: self.cloudinary.clone(),
            mail: self.mail.clone(),
            team_ids: self.team_ids.clone(),
            webhooks: self.webhooks.clone(),
            serve: self.serve.clone(),
            telemetry: Self::telemetry(),
        }
    }

    pub fn admin(&self) -> AdminSettings {
        AdminSettings {
            admin: self.admin.clone(),
            redis: self.redis.clone(),
            queue: self.queue.clone(),
            staging: self.staging.clone(),
            database: self.database.clone(),
            cloudinary: self.cloudinary.clone(),
            webhooks: self.webhooks.clone(),
            serve: self.serve.clone(),
            telemetry: Self::telemetry(),
        }
    }

    /// The environment an `intake-worker` process reads these settings from: the names
    /// operators set, each value in its variable's unit.
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("INTAKE_REDIS_URL", self.redis.url.clone()),
            ("INTAKE_REDIS_PREFIX", self.redis.prefix.clone()),
            (
                "INTAKE_DATABASE_URL",
                self.database.url.expose_secret().to_owned(),
            ),
            ("INTAKE_WORKER_ADDR", "127.0.0.1:0".to_owned()),
            (
                "INTAKE_STAGING_DIR",
                self.staging.dir.to_string_lossy().into_owned(),
            ),
            (
                "INTAKE_CLOUDINARY_API_BASE",
                self.cloudinary.api_base.clone(),
            ),
            (
                "INTAKE_CLOUDINARY_TIMEOUT_SECS",
                self.cloudinary.timeout.as_secs().to_string(),
            ),
            (
                "INTAKE_WORKER_HEARTBEAT_SECS",
                self.queue.heartbeat.as_secs().to_string(),
            ),
            (
                "INTAKE_SHUTDOWN_DEADLINE_SECS",
                self.serve.shutdown_deadline.as_secs().to_string(),
            ),
            (
                "INTAKE_JOB_MAX_ATTEMPTS",
                self.queue.max_attempts.to_string(),
            ),
            ("INTAKE_LOG_FORMAT", "json".to_owned()),
            (
                "INTAKE_WEBHOOK_ALLOW_PRIVATE",
                self.webhooks.allow_private.to_string(),
            ),
            (
                "INTAKE_WEBHOOK_TIMEOUT_MS",
                self.webhooks.timeout.as_millis().to_string(),
            ),
            (
                "INTAKE_WEBHOOK_RETRY_BASE_MS",
                self.webhooks.retry_base.as_millis().to_string(),
            ),
            (
                "INTAKE_WEBHOOK_RETRY_MAX_DELAY_SECS",
                self.webhooks.retry_max_delay.as_secs().to_string(),
            ),
            (
                "INTAKE_WEBHOOK_RETRY_HOURS",
                self.webhooks.retry_hours.to_string(),
            ),
            (
                "INTAKE_WEBHOOK_DISPATCH_INTERVAL_MS",
                self.webhooks.dispatch_interval.as_millis().to_string(),
            ),
            (
                "INTAKE_WEBHOOK_ENDPOINT_CONCURRENCY",
                self.webhooks.endpoint_concurrency.to_string(),
            ),
            (
                "INTAKE_WEBHOOK_SWEEP_GRACE_SECS",
                self.webhooks.sweep_grace.as_secs().to_string(),
            ),
        ];
        // Unset, not empty, when absent: an empty value is a value the worker refuses.
        if let Some(url) = &self.cloudinary.url {
            env.push(("CLOUDINARY_URL", url.expose_secret().to_owned()));
        }
        if let Some(url) = &self.mail.smtp_url {
            env.push(("INTAKE_SMTP_URL", url.expose_secret().to_owned()));
        }
        if let Some(from) = &self.mail.from {
            env.push(("INTAKE_MAIL_FROM", from.clone()));
        }
        env
    }
}
